/**
 * `bun run backfill` (in the single binary, `aqueduct backfill`): queue a backfill and follow it.
 *
 * With an Aqueduct answering at --url (default http://127.0.0.1:$PORT), the request goes to its
 * `POST /api/backfill` (ADMIN_TOKEN, from the environment or .env, as a Bearer token) and the
 * progress is read from `/api/metrics/backfill`; stopping the command (Ctrl-C) stops following,
 * not the backfill. With none answering, this process runs Aqueduct itself (the same
 * configuration as `bun run start`: the firehose too, unless FIREHOSE_ENABLED=false), queues the
 * request and stops once nothing is queued, listed or being imported; the queue is durable, so a
 * stop part way (Ctrl-C, kill -9) goes on from where it was at the next start of either.
 *
 * The progress line: repos done / queued / failed / inactive, records/s, ETA, imports running,
 * hosts still to list; rewritten in place on a terminal, one line every 10 s otherwise.
 * `--status` prints it once (and the troubled hosts) and exits.
 */
import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { startAqueduct } from '../aqueduct.ts';
import { readCommandLine } from '../lib/command-line.ts';
import { isDid } from '../lib/syntax.ts';
import type { BackfillRequest } from './backfill.ts';

const USAGE = `usage: bun run backfill -- [--all] [--host HOST]... [--did DID]... [--retry-failed] [--status] [--url URL]
       (the single binary: aqueduct backfill [the same flags])
  --all            every repo of the network: the relay's listHosts (RELAY_URL), then each host's listRepos
  --host HOST      every repo of one PDS (host or host:port; repeatable)
  --did DID        one repo (repeatable)
  --retry-failed   queue the repos that failed their retries again
  --status         print the backfill's progress once and exit
  --url URL        the running Aqueduct (default http://127.0.0.1:$PORT); without one answering,
                   this command runs Aqueduct itself until the backfill is done
The configuration is the environment's, as for bun run start (ADMIN_TOKEN authorizes the request).`;

interface Progress {
  readonly repos: { readonly queued: number; readonly done: number; readonly inactive: number; readonly failed: number };
  readonly hostsToList: number;
  readonly activeImports: number;
  readonly recordsPerSecond: number;
  readonly etaSeconds: number | null;
  readonly recordsImported: number;
  readonly troubledHosts?: ReadonlyArray<{ readonly host: string; readonly pausedForMs: number; readonly reason: string | null }>;
}

/** Runs the command with `args` (the words after `backfill`); exits the process when done. */
export async function backfillCommand(args: readonly string[]): Promise<void> {
  const values = readCommandLine(
    USAGE,
    {
      all: { type: 'boolean' },
      host: { type: 'string', multiple: true },
      did: { type: 'string', multiple: true },
      'retry-failed': { type: 'boolean' },
      status: { type: 'boolean' },
      url: { type: 'string' },
    },
    args,
  );

  const request: BackfillRequest = {
    ...(values.all ? { all: true } : {}),
    ...(values.host?.length ? { hosts: values.host.map((host) => host.toLowerCase()) } : {}),
    ...(values.did?.length ? { dids: values.did } : {}),
    ...(values['retry-failed'] ? { retryFailed: true } : {}),
  };
  const bad = (message: string): never => {
    process.stderr.write(`${message}\n${USAGE}\n`);
    process.exit(2);
  };
  for (const did of request.dids ?? []) if (!isDid(did)) bad(`not a DID: ${did}`);
  for (const host of request.hosts ?? []) if (!/^[a-z0-9.-]{1,253}(:\d{1,5})?$/.test(host)) bad(`not a host name: ${host} (expected host or host:port)`);
  const asked = Object.keys(request).length > 0;
  if (!asked && !values.status) bad('nothing to do: say what to backfill (--all, --host, --did, --retry-failed) or ask for --status');

  let config;
  try {
    config = loadConfig(process.env).config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`backfill: configuration error: ${error.message}\n`);
    process.exit(1);
  }
  const base = (values.url ?? `http://127.0.0.1:${config.port}`).replace(/\/+$/, '');
  const headers: Record<string, string> = config.adminToken ? { authorization: `Bearer ${config.adminToken}` } : {};

  const remote = await fetch(`${base}/api/metrics/backfill`, { headers, signal: AbortSignal.timeout(3_000) }).catch(() => null);
  if (remote !== null) {
    if (remote.status === 401 || remote.status === 403) {
      process.stderr.write(`backfill: ${base} refused the request (${remote.status}): set ADMIN_TOKEN to the server's\n`);
      process.exit(1);
    }
    if (values.status) {
      printStatus((await remote.json()) as Progress);
      process.exit(0);
    }
    const queued = await fetch(`${base}/api/backfill`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(request) });
    if (queued.status !== 202) {
      process.stderr.write(`backfill: ${base} answered ${queued.status}: ${await queued.text()}\n`);
      process.exit(1);
    }
    const { queued: added } = (await queued.json()) as { queued: { repos: number; hosts: number } };
    console.log(`queued at ${base}: ${added.repos} repos, ${added.hosts} hosts to list (Ctrl-C stops following, not the backfill)`);
    await follow(async () => (await (await fetch(`${base}/api/metrics/backfill`, { headers })).json()) as Progress);
    process.exit(0);
  }

  if (values.status) {
    process.stderr.write(`backfill: no Aqueduct answers at ${base}: start it (bun run start), or pass --url\n`);
    process.exit(1);
  }
  // nothing running: run Aqueduct here until the backfill is done
  const log = createLogger(process.env.LOG_LEVEL ? config.logLevel : 'warn');
  const aqueduct = await startAqueduct(config, log).catch((error: unknown) => {
    process.stderr.write(`backfill: start-up failed: ${(error as Error).message}\n`);
    process.exit(1);
  });
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) process.exit(1);
    stopping = true;
    void aqueduct.stop().then(() => process.exit(code));
  };
  process.on('SIGINT', () => stop(130));
  process.on('SIGTERM', () => stop(143));
  const added = await aqueduct.backfill.request(request);
  console.log(`queued: ${added.repos} repos, ${added.hosts} hosts to list; running Aqueduct here (${aqueduct.url}) until done`);
  await follow(async () => {
    const f = aqueduct.backfill.figures;
    return { repos: f.repos, hostsToList: f.hostsToList, activeImports: f.active, recordsPerSecond: f.recordsPerSecond, etaSeconds: f.etaSeconds, recordsImported: f.recordsImported, troubledHosts: f.troubledHosts };
  });
  stopping = true;
  await aqueduct.stop();
  process.exit(0);
}

if (import.meta.main) await backfillCommand(Bun.argv.slice(2));

/** Prints the progress line until nothing is queued, listed or imported (three looks in a row). */
async function follow(read: () => Promise<Progress>): Promise<void> {
  const tty = process.stdout.isTTY === true;
  let idle = 0;
  let lastPrinted = 0;
  for (;;) {
    await Bun.sleep(1_000);
    const progress = await read().catch(() => null);
    if (progress === null) continue;
    const done = progress.repos.queued === 0 && progress.hostsToList === 0 && progress.activeImports === 0;
    idle = done ? idle + 1 : 0;
    if (tty) process.stdout.write(`\r\x1b[2K${line(progress)}`);
    else if (Date.now() - lastPrinted >= 10_000 || idle >= 3) {
      console.log(line(progress));
      lastPrinted = Date.now();
    }
    if (idle >= 3) break;
  }
  if (tty) process.stdout.write('\n');
}

function printStatus(progress: Progress): void {
  console.log(line(progress));
  for (const host of progress.troubledHosts ?? []) {
    console.log(`  ${host.host}: ${host.pausedForMs > 0 ? `paused ${Math.ceil(host.pausedForMs / 1000)} s` : 'failing'}${host.reason ? ` (${host.reason})` : ''}`);
  }
}

function line(p: Progress): string {
  const n = (value: number) => value.toLocaleString('en-US');
  const eta = p.etaSeconds === null ? '-' : duration(p.etaSeconds);
  return `repos ${n(p.repos.done)} done, ${n(p.repos.queued)} queued, ${n(p.repos.failed)} failed, ${n(p.repos.inactive)} inactive · ${n(Math.round(p.recordsPerSecond))} records/s · ETA ${eta} · ${p.activeImports} importing · ${p.hostsToList} hosts to list · ${n(p.recordsImported)} records imported`;
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
