/**
 * Command line for the firehose simulator ("a network in a box").
 *
 *   bun run src/sim/cli.ts [--port 2470] [--seed 1] [--accounts 1000] [--commits 100000] [--rate 0]
 *     [--new-share 0.1] [--faults malformed=0.01,badSignature=0.01,...] [--identity-share 0]
 *     [--account-share 0] [--sync-share 0] [--key-forms p256=0.05,legacy-uncompressed=0.1,...]
 *     [--retain N] [--pregenerate] [--expect FILE] [--stats FILE] [--pds-url URL]
 *     [--hosts N] [--host-fault i=kind,...] [--rate-limit-every N]
 *     [--preload-records N] [--preload-accounts N] [--preload-giants N] [--preload-tail X]
 *   bun run src/sim/cli.ts --directory-only [--port 2470] [--seed 1] [--accounts 1000] [--key-forms ...]
 *     [--pds-url URL] [--export-from URL]
 *
 * Owns: argument parsing and the process lifecycle; the only reader of process.env here (SIM_PORT).
 * Promises: prints where it listens; keeps the ground truth only with --expect, and writes it as JSON
 * once every commit has been generated (--stats FILE: the network's counters, faults included, and
 * the last seq, at the same moment); --directory-only serves the PLC directory alone (see
 * `startDirectory`), --pds-url is what DID documents name as the PDS, --export-from the (paced)
 * simulator whose /export it passes on; stops cleanly on SIGINT/SIGTERM; bad arguments exit with
 * status 2.
 */
import { parseArgs } from 'node:util';
import { startDirectory, startSimulator, type SimulatorOptions } from './server.ts';
import { FAULT_KINDS, type FaultRates } from './workload.ts';
import { SIM_KEY_FORMS, type KeyFormShares } from './keys.ts';
import { HOST_FAULTS, type HostFault } from './hosts.ts';
import type { PreloadOptions } from './preload.ts';

const USAGE = `usage: bun run src/sim/cli.ts [--port N] [--seed S] [--accounts N] [--commits N] [--rate N]
  [--new-share X] [--faults kind=rate,...] [--identity-share X] [--account-share X] [--sync-share X]
  [--key-forms form=share,...] [--retain N] [--pregenerate] [--expect FILE] [--stats FILE] [--pds-url URL]
  [--hosts N] [--host-fault i=kind,...] [--rate-limit-every N]
  [--preload-records N] [--preload-accounts N] [--preload-giants N] [--preload-tail X]
       bun run src/sim/cli.ts --directory-only [--port N] [--seed S] [--accounts N] [--key-forms form=share,...]
  [--pds-url URL] [--export-from URL]
fault kinds: ${FAULT_KINDS.join(', ')}
key forms (the rest are multikey): ${SIM_KEY_FORMS.join(', ')}
--hosts N: PDS hosts on 127.0.0.2.. (one per loopback address, on --port); --host-fault 3=garbage,4=trickle
  makes host 3's and 4's getRepo hostile; host faults: ${HOST_FAULTS.join(', ')}
--preload-records N: repos of N records in all exist before the simulation (no frames for them);
  --preload-accounts (default 90% of --accounts), --preload-giants (repos over 100,000 records,
  default N / 500,000), --preload-tail (Pareto exponent of the others' sizes, default 1.2)`;

/** `index=kind,...` of host faults. */
export const parseHostFaults = (text: string): Record<number, HostFault> => {
  const out: Record<number, HostFault> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [left, kind, extra] = part.split('=').map((x) => x.trim());
    const index = Number(left);
    if (extra !== undefined || left === undefined || left === '' || !Number.isInteger(index) || index < 0 || !(HOST_FAULTS as readonly string[]).includes(kind ?? '')) {
      throw new RangeError(`bad host fault "${part}" (expected index=kind, kinds: ${HOST_FAULTS.join(', ')})`);
    }
    out[index] = kind as HostFault;
  }
  return out;
};

/** `name=number,...` with names from `names` (`what` names them in the error). */
const parseNamed = <Name extends string>(text: string, names: readonly Name[], what: string): Partial<Record<Name, number>> => {
  const out: Partial<Record<Name, number>> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [left, value, extra] = part.split('=');
    const name = left?.trim() ?? '';
    const number = Number(value);
    if (extra !== undefined || !(names as readonly string[]).includes(name) || value === undefined || value.trim() === '' || !Number.isFinite(number)) {
      throw new RangeError(`bad ${what} "${part}" (expected ${what}=share, ${what}s: ${names.join(', ')})`);
    }
    out[name as Name] = number;
  }
  return out;
};

export const parseFaults = (text: string): Partial<FaultRates> => parseNamed(text, FAULT_KINDS, 'fault');
export const parseKeyForms = (text: string): KeyFormShares => parseNamed(text, SIM_KEY_FORMS, 'key form');

const num = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new RangeError(`--${name} expects a number, got "${text}"`);
  return n;
};

export const parseCli = (
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { options: SimulatorOptions; expect: string | null; stats: string | null; directoryOnly: boolean } => {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      accounts: { type: 'string' },
      commits: { type: 'string' },
      rate: { type: 'string' },
      'new-share': { type: 'string' },
      faults: { type: 'string' },
      'identity-share': { type: 'string' },
      'account-share': { type: 'string' },
      'sync-share': { type: 'string' },
      'key-forms': { type: 'string' },
      retain: { type: 'string' },
      pregenerate: { type: 'boolean' },
      expect: { type: 'string' },
      stats: { type: 'string' },
      'pds-url': { type: 'string' },
      'export-from': { type: 'string' },
      'directory-only': { type: 'boolean' },
      hosts: { type: 'string' },
      'host-fault': { type: 'string', multiple: true },
      'rate-limit-every': { type: 'string' },
      'preload-records': { type: 'string' },
      'preload-accounts': { type: 'string' },
      'preload-giants': { type: 'string' },
      'preload-tail': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) throw new RangeError(USAGE);
  const options: SimulatorOptions = {
    port: num('port', values.port ?? env.SIM_PORT ?? '2470'),
    hostname: values.host ?? '127.0.0.1',
    seed: values.seed ?? '1',
    accounts: num('accounts', values.accounts),
    commits: num('commits', values.commits ?? '100000'),
    rate: num('rate', values.rate),
    newAccountShare: num('new-share', values['new-share']),
    faults: values.faults === undefined ? {} : parseFaults(values.faults),
    identityShare: num('identity-share', values['identity-share']),
    accountShare: num('account-share', values['account-share']),
    syncShare: num('sync-share', values['sync-share']),
    keyForms: values['key-forms'] === undefined ? {} : parseKeyForms(values['key-forms']),
    retain: num('retain', values.retain),
    pregenerate: values.pregenerate === true,
    groundTruth: values.expect !== undefined,
  };
  if (values['pds-url'] !== undefined) options.pdsUrl = values['pds-url'];
  const hosts = num('hosts', values.hosts);
  if (hosts !== undefined) options.hosts = hosts;
  if (values['host-fault'] !== undefined) options.hostFaults = Object.assign({}, ...values['host-fault'].map(parseHostFaults));
  const rateLimitEvery = num('rate-limit-every', values['rate-limit-every']);
  if (rateLimitEvery !== undefined) options.rateLimitEvery = rateLimitEvery;
  const records = num('preload-records', values['preload-records']);
  const preloadAccounts = num('preload-accounts', values['preload-accounts']);
  const giants = num('preload-giants', values['preload-giants']);
  const tailExponent = num('preload-tail', values['preload-tail']);
  if (records !== undefined) {
    const preload: { -readonly [K in keyof PreloadOptions]: PreloadOptions[K] } = { records };
    if (preloadAccounts !== undefined) preload.accounts = preloadAccounts;
    if (giants !== undefined) preload.giants = giants;
    if (tailExponent !== undefined) preload.tailExponent = tailExponent;
    options.preload = preload;
  } else if (preloadAccounts !== undefined || giants !== undefined || tailExponent !== undefined) {
    throw new RangeError('--preload-accounts, --preload-giants and --preload-tail go with --preload-records');
  }
  const directoryOnly = values['directory-only'] === true;
  if (values['export-from'] !== undefined) {
    if (!directoryOnly) throw new RangeError('--export-from is for --directory-only');
    options.exportFrom = values['export-from'];
  }
  if (directoryOnly && (values.expect !== undefined || values.stats !== undefined)) throw new RangeError('--directory-only generates nothing to --expect or --stats');
  if (directoryOnly && (options.hosts !== undefined || options.preload !== undefined || options.hostFaults !== undefined)) {
    throw new RangeError('--directory-only serves no hosts and no repos: --hosts, --host-fault and --preload-* are for the simulator');
  }
  return { options, expect: values.expect ?? null, stats: values.stats ?? null, directoryOnly };
};

const main = async (): Promise<void> => {
  let parsed: ReturnType<typeof parseCli>;
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  try {
    parsed = parseCli(argv, process.env);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    if (!(err instanceof Error && err.message === USAGE)) console.error(USAGE);
    process.exit(2);
  }
  const { options, expect, stats, directoryOnly } = parsed;
  if (directoryOnly) {
    const directory = await startDirectory(options);
    console.log(`PLC directory of the firehose simulator (seed ${options.seed}, ${directory.directory.size} accounts) listening:`);
    console.log(`  plc    ${directory.url}/{did}`);
    console.log(`  pds    ${options.pdsUrl ?? directory.url}/xrpc/...`);
    const stop = (): void => {
      directory.stop().then(() => process.exit(0), (err: unknown) => {
        console.error('simulator: shutdown failed', err);
        process.exit(1);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return;
  }
  const started = performance.now();
  const sim = await startSimulator(options);
  console.log(`firehose simulator (seed ${options.seed}, ${options.commits} commits) listening:`);
  console.log(`  relay  ${sim.wsUrl}`);
  console.log(`  plc    ${sim.url}/{did}`);
  if ((options.rate ?? 0) > 0) console.log(`  paced  ${options.rate} commits/s from ${sim.pacingStartedAt} (ms since the epoch)`);
  if (sim.hosts.length > 1) {
    console.log(`  relay  ${sim.url}/xrpc/com.atproto.sync.listHosts (${sim.hosts.length} hosts)`);
    for (const host of sim.hosts) console.log(`  pds    ${host.url}/xrpc/... (${host.accounts.length} accounts${host.fault === null ? '' : `, ${host.fault}`})`);
    console.log(`  allow  ALLOW_PRIVATE_HOSTS=127.0.0.1,${sim.hostAddresses.join(',')}`);
  } else {
    console.log(`  pds    ${sim.url}/xrpc/...`);
  }
  if (sim.network.preloaded !== null) {
    const { sizes, ms } = sim.network.preloaded;
    console.log(`  preloaded ${sim.network.preloaded.records} records in ${sizes.length} repos in ${(ms / 1000).toFixed(1)} s`);
  }
  if (options.pregenerate === true) {
    console.log(`  generated ${sim.commitsGenerated} commits in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  const finished = sim.generated().then(async () => {
    if (stats !== null) await Bun.write(stats, `${JSON.stringify({ lastSeq: sim.network.lastSeq, commits: sim.commitsGenerated, stats: sim.stats }, null, 1)}\n`);
    if (expect !== null) {
      await Bun.write(expect, `${JSON.stringify(sim.groundTruth(), null, 1)}\n`);
      console.log(`all ${sim.commitsGenerated} commits generated; ground truth written to ${expect}`);
    } else {
      console.log(`all ${sim.commitsGenerated} commits generated; idling`);
    }
  });

  const shutdown = async (): Promise<void> => {
    await sim.stop();
    console.log(`stopped after sending ${sim.eventsSent} frames (last seq ${sim.lastSeq})`);
    process.exit(0);
  };
  const onSignal = (): void => {
    shutdown().catch((err: unknown) => {
      console.error('simulator: shutdown failed', err);
      process.exit(1);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await finished;
  } catch (err) {
    console.error('simulator failed:', err);
    await sim.stop();
    process.exit(1);
  }
};

if (import.meta.main) await main();
