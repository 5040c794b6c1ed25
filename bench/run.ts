/**
 * `bun run bench -- --scenario <name> [--commits N] [--json FILE]`: the ingestion benchmark.
 *
 * Starts a fresh database (an embedded PostgreSQL in a temporary folder, or a new database on
 * the server DATABASE_URL names), the simulator in two processes (the relay, with every frame
 * generated before the clock starts, and a PLC directory that only answers
 * identity lookups), and the real ingester as `bun run start` runs it (`src/main.ts`, in its own
 * process, with the variables the start script sets unless this environment sets them). The
 * clock runs from the ingester's start until the stored cursor reaches the simulator's last seq.
 * CPU is read from /proc for the ingester, for the embedded server's processes (with DATABASE_URL:
 * every PostgreSQL process on this box) and for both simulator processes; peak RSS is the
 * ingester's VmHWM; lag (paced scenarios) is commit time minus the time the simulator released
 * the event (its pace is known); `healthP99Ms` and
 * `healthMaxMs` are how long the ingester's `/health` (answered from memory) took, asked every
 * 200 ms during the run: how long the thread keeps others waiting; `plcExport` is what the ingester
 * read of the directory's export (operations, and new repos' waits answered by it or fetched after
 * it). Prints a table;
 * `--json` writes the same figures; `--profile DIR` writes the ingester's main-thread CPU profile.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, setPriority } from 'node:os';
import { join } from 'node:path';
import type postgres from 'postgres';
import { connectPostgres } from '../src/db/database.ts';
import { freePorts } from '../src/lib/free-port.ts';
import { percentile } from '../src/lib/percentile.ts';
import { startScriptEnv } from './start-env.ts';
import { cleanUpOnSignal, cpuSeconds, followLog, freshDatabase, peakRss, postgresPids, round } from './proc.ts';
import { readCommandLine } from '../src/lib/command-line.ts';
import { runApiLoadBench } from './api-load.ts';
import { runBackfillBench } from './backfill.ts';

interface Scenario {
  readonly description: string;
  readonly commits: number;
  readonly accounts: number;
  readonly newShare: number;
  /** commits per second; 0 = as fast as the ingester reads */
  readonly rate: number;
  readonly verify: boolean;
  readonly poolSize: number;
  /** synthetic records loaded before the run */
  readonly preloadRecords: number;
  /** the simulator's --key-forms (accounts' signing-key forms); absent: all secp256k1 Multikey */
  readonly keyForms?: string;
}

const FLOOD: Scenario = {
  description: '200k commits from 20k accounts, as fast as the ingester reads, verification on',
  commits: 200_000,
  accounts: 20_000,
  newShare: 0.1,
  rate: 0,
  verify: true,
  poolSize: 32,
  preloadRecords: 0,
};

const SCENARIOS: Record<string, Scenario> = {
  flood: FLOOD,
  'flood-noverify': { ...FLOOD, description: 'flood with VERIFY_COMMITS=false', verify: false },
  // every account signs with P-256 (ES256), its key written as the older EcdsaSecp256r1 form
  'flood-p256': { ...FLOOD, description: 'flood where every account signs with a P-256 key', keyForms: 'p256-legacy=1' },
  storm: { ...FLOOD, description: 'every commit from a brand-new account', commits: 100_000, accounts: 100_000, newShare: 1 },
  // the storm without the one DID document fetch per new account that verification needs: what
  // creating users costs the write path on its own
  'storm-noverify': {
    ...FLOOD,
    description: 'storm with VERIFY_COMMITS=false',
    commits: 100_000,
    accounts: 100_000,
    newShare: 1,
    verify: false,
  },
  live: { ...FLOOD, description: '450 commits/s for 2 minutes', commits: 450 * 120, rate: 450 },
  // a storm met live: each account appears in the directory's export just before its first commit
  wave: { ...FLOOD, description: '2,000 commits/s for 1 minute, each from a brand-new account', commits: 2000 * 60, accounts: 2000 * 60, newShare: 1, rate: 2000 },
  peak: { ...FLOOD, description: '2,000 commits/s for 10 minutes', commits: 2000 * 600, rate: 2000 },
  'small-pool': { ...FLOOD, description: 'flood with DB_POOL_SIZE=8', poolSize: 8 },
  'big-table': { ...FLOOD, description: 'flood after the database holds 10M records', preloadRecords: 10_000_000 },
};

const ROOT = join(import.meta.dir, '..');

const USAGE = `usage: bun run bench -- [--scenario NAME] [--commits N] [--records N] [--clients N] [--json FILE] [--keep-data] [--profile DIR]
scenarios: ${Object.entries(SCENARIOS).map(([name, s]) => `\n  ${name.padEnd(15)} ${s.description}`).join('')}
  ${'backfill'.padEnd(15)} an empty Aqueduct backfills --records preloaded records (default 1,000,000) on 20 hosts beside a live firehose of 450 commits/s
  ${'api-load'.padEnd(15)} --clients clients (default 200) for 30 s on the heaviest views beside the live firehose, after backfilling --records (default 200,000)`;

const values = readCommandLine(USAGE, {
  scenario: { type: 'string', default: 'flood' },
  commits: { type: 'string' },
  records: { type: 'string' },
  clients: { type: 'string' },
  json: { type: 'string' },
  'keep-data': { type: 'boolean', default: false },
  /** write the ingester's CPU profile (main thread, markdown and .cpuprofile) into this folder */
  profile: { type: 'string' },
});

const base = values.scenario === 'backfill' || values.scenario === 'api-load' ? FLOOD : SCENARIOS[values.scenario ?? 'flood'];
if (!base) {
  console.error(`unknown scenario ${values.scenario}; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const scenario: Scenario = values.commits ? scaled(base, Number(values.commits)) : base;

// Interrupted, it still stops the simulators, the ingester and its embedded PostgreSQL.
const { cleanups, cleanUp } = cleanUpOnSignal();
try {
  const keepData = values['keep-data'] === true;
  const result =
    values.scenario === 'backfill'
      ? await runBackfillBench(cleanups, { records: positive(values.records ?? '1000000', '--records'), keepData })
      : values.scenario === 'api-load'
        ? await runApiLoadBench(cleanups, { records: positive(values.records ?? '200000', '--records'), clients: positive(values.clients ?? '200', '--clients'), keepData })
        : await run(values.scenario ?? 'flood', scenario);
  printTable(result);
  if (values.json) await writeFile(values.json, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cleanUp();
}

function positive(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} expects a positive whole number, got ${text}`);
  return value;
}

function scaled(scenario: Scenario, commits: number): Scenario {
  if (!Number.isSafeInteger(commits) || commits < 1) throw new Error(`--commits expects a positive whole number, got ${commits}`);
  const ratio = commits / scenario.commits;
  return {
    ...scenario,
    commits,
    accounts: Math.max(10, Math.round(scenario.accounts * ratio)),
    preloadRecords: Math.round(scenario.preloadRecords * ratio),
  };
}

async function run(name: string, scenario: Scenario) {
  const { url: databaseUrl, serverPid } = await freshDatabase(cleanups, values['keep-data'] === true);
  if (scenario.preloadRecords) await preload(databaseUrl, scenario.preloadRecords);

  const sim = await startSim(scenario);
  const started = performance.now();
  const profileFlags = values.profile ? ['--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${values.profile}`] : [];
  const ingester = Bun.spawn([process.execPath, ...profileFlags, join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: {
      ...(await startScriptEnv(ROOT)),
      ...process.env,
      DATABASE_URL: databaseUrl,
      RELAY_URL: sim.relayUrl,
      PLC_URL: sim.httpUrl,
      // the simulated PDS listens on loopback: profiles are fetched from it as from a real one
      ALLOW_PRIVATE_HOSTS: '127.0.0.1',
      FIREHOSE_START: '0',
      VERIFY_COMMITS: String(scenario.verify),
      DB_POOL_SIZE: String(scenario.poolSize),
      PORT: '0',
      LOG_LEVEL: 'info',
    },
    stdout: 'inherit',
    stderr: 'pipe',
  });
  cleanups.push(async () => {
    ingester.kill('SIGTERM');
    await ingester.exited;
  });
  const ingesterUrl = followLog(ingester.stderr);
  // how long the ingester's HTTP server takes to answer /health (from memory) while it ingests:
  // the time an operator's dashboard or a client waits whenever the thread is busy
  const healthMs: number[] = [];
  let ingesting = true;
  const healthSampler = (async () => {
    const url = `${await ingesterUrl}/health`;
    while (ingesting) {
      const sent = performance.now();
      const answered = await fetch(url).then((response) => response.ok, () => false);
      if (answered) healthMs.push(performance.now() - sent);
      await Bun.sleep(200);
    }
  })();

  const sql = connectPostgres(databaseUrl, { max: 1, onnotice: () => {} });
  cleanups.push(() => sql.end({ timeout: 5 }));
  const cpuNow = async () => ({ ingester: await cpuSeconds([ingester.pid]), postgres: await cpuSeconds(await postgresPids(serverPid)), simulator: await cpuSeconds(sim.pids) });
  const cpuStart = await cpuNow();
  const lags: number[] = [];
  let cursor = 0;
  let lastProgress = performance.now();
  let lastCursor = -1;
  while (cursor < sim.lastSeq) {
    await Bun.sleep(scenario.rate ? 100 : 50);
    if (ingester.exitCode !== null) throw new Error(`the ingester exited with ${ingester.exitCode}`);
    const [row] = await sql<{ seq: number }[]>`select seq::int8 as seq from firehose_cursor`.catch(() => []);
    cursor = Number(row?.seq ?? 0);
    const now = performance.now();
    if (scenario.rate && cursor > 0) {
      // seq s is due at the relay's pacing start + (s / eventsPerCommit) / rate seconds
      lags.push(Math.max(0, Date.now() - sim.pacingStartedAt - (cursor / sim.eventsPerCommit / scenario.rate) * 1000));
    }
    if (cursor !== lastCursor) {
      lastCursor = cursor;
      lastProgress = now;
    } else if (now - lastProgress > 120_000) {
      throw new Error(`no progress for 2 minutes at seq ${cursor} of ${sim.lastSeq}`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuEnd = await cpuNow();
  ingesting = false;
  await healthSampler;
  const peakRssMb = await peakRss(ingester.pid);

  const [size] = await sql<{ bytes: number; commits: number }[]>`
    select sum(pg_total_relation_size(c.oid))::int8 as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'm')`;
  const metrics = await ingesterMetrics(sql, await ingesterUrl);

  return {
    scenario: name,
    description: scenario.description,
    commits: scenario.commits,
    ops: sim.ops,
    seconds: round(seconds, 2),
    commitsPerSec: Math.round(scenario.commits / seconds),
    opsPerSec: Math.round(sim.ops / seconds),
    lagP50Ms: scenario.rate ? Math.round(percentile(lags, 0.5)) : null,
    lagP99Ms: scenario.rate ? Math.round(percentile(lags, 0.99)) : null,
    healthP99Ms: round(percentile(healthMs, 0.99), 1),
    healthMaxMs: round(Math.max(0, ...healthMs), 1),
    cpuCoresIngester: round((cpuEnd.ingester - cpuStart.ingester) / seconds, 3),
    cpuCoresPostgres: round((cpuEnd.postgres - cpuStart.postgres) / seconds, 3),
    cpuCoresSimulator: round((cpuEnd.simulator - cpuStart.simulator) / seconds, 3),
    peakRssMb,
    dbBytesPerCommit: scenario.preloadRecords ? null : Math.round(Number(size?.bytes ?? 0) / scenario.commits),
    dropped: Math.max(0, sim.lastSeq - cursor),
    rejected: metrics.rejected,
    plcExport: metrics.plcExport,
    verify: scenario.verify,
    poolSize: scenario.poolSize,
    preloadRecords: scenario.preloadRecords,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', runtime: `bun ${Bun.version}`, postgres: metrics.postgresVersion },
    date: new Date().toISOString(),
  };
}

async function preload(url: string, records: number): Promise<void> {
  // The schema first: let the real migrator create it by starting the app once with no firehose.
  const app = Bun.spawn([process.execPath, join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, FIREHOSE_ENABLED: 'false', PORT: '0', LOG_LEVEL: 'warn' },
  });
  const sql = connectPostgres(url, { max: 1, onnotice: () => {} });
  while (!(await sql`select to_regclass('likes') is not null as ok`.then(([row]) => row?.ok).catch(() => false))) await Bun.sleep(100);
  app.kill('SIGTERM');
  await app.exited;
  const started = performance.now();
  const actors = Math.max(1000, Math.round(records / 50));
  await sql.unsafe(`set statement_timeout = 0`);
  await sql.unsafe(`insert into actors (did) select 'did:plc:preload' || lpad(g::text, 17, '0') from generate_series(1, ${actors}) g`);
  const likes = Math.round(records * 0.6);
  const follows = Math.round(records * 0.2);
  const posts = records - likes - follows;
  await sql.unsafe(`
    insert into posts (author_id, rkey, cid, created_at, text)
    select 1 + g % ${actors}, lpad(to_hex(g), 13, '2'), 'bafyreipreload', now(), 'preloaded post ' || g
    from generate_series(1, ${posts}) g`);
  await sql.unsafe(`
    insert into likes (author_id, rkey, subject_actor_id, subject_collection, subject_rkey, created_at)
    select 1 + g % ${actors}, lpad(to_hex(g), 13, '3'), 1 + (g * 7) % ${actors}, 1, lpad(to_hex(g % ${posts} + 1), 13, '2'), now()
    from generate_series(1, ${likes}) g`);
  await sql.unsafe(`
    insert into follows (author_id, rkey, subject_actor_id, created_at)
    select 1 + g % ${actors}, lpad(to_hex(g), 13, '4'), 1 + (g * 13) % ${actors}, now()
    from generate_series(1, ${follows}) g`);
  await sql.unsafe('vacuum analyze');
  await sql.end();
  console.error(`preloaded ${records} records in ${Math.round((performance.now() - started) / 1000)} s`);
}

/**
 * Two simulator processes with the same seed: the relay (which is also the PDS holding the repos)
 * and the PLC directory, `--directory-only`, which generates no events, only the same accounts and
 * keys (derived from the seed). In the real network the directory is not the relay; one process
 * doing both would make directory answers wait behind the relay's sending loop and measure the
 * simulator, not the ingester.
 */
async function startSim(scenario: Scenario) {
  // Every frame is generated before the clock starts, paced runs included (their pacing starts
  // once generation is done): generating commits as they go cost the relay ~0.5 core beside the
  // ingester and PostgreSQL, and it fell up to 1,300 commits behind its own schedule for seconds
  // at a time, which read as ingester lag. A real relay runs on another machine.
  const [relayPort, directoryPort] = (await freePorts(2)) as [number, number];
  const keyForms = scenario.keyForms ? ['--key-forms', scenario.keyForms] : [];
  const relayArgs = ['--commits', String(scenario.commits), '--new-share', String(scenario.newShare), '--rate', String(scenario.rate), '--pregenerate', ...keyForms];
  const [relay, directory] = await Promise.all([
    startSimProcess(scenario, relayPort, relayArgs),
    // paced, the directory's export lists an account just before its first commit (the relay's)
    startSimProcess(scenario, directoryPort, [
      '--directory-only',
      ...keyForms,
      '--pds-url',
      `http://127.0.0.1:${relayPort}`,
      ...(scenario.rate ? ['--export-from', `http://127.0.0.1:${relayPort}`] : []),
    ]),
  ]);
  // Without faults or lifecycle events every event is a commit: seq N is the N-th commit.
  return {
    pids: [relay.pid, directory.pid],
    // the relay counts its paced releases from this wall-clock time (it starts before the ingester)
    pacingStartedAt: scenario.rate ? pacingStart(relay.banner) : 0,
    httpUrl: directory.url,
    relayUrl: relay.url.replace(/^http/, 'ws'),
    lastSeq: scenario.commits,
    eventsPerCommit: 1,
    ops: scenario.commits,
  };
}

function pacingStart(banner: string): number {
  const printed = /paced .* from (\d+)/.exec(banner)?.[1];
  if (printed === undefined) throw new Error(`the relay did not say when its pacing started: ${banner}`);
  return Number(printed);
}

async function startSimProcess(scenario: Scenario, port: number, extra: string[]): Promise<{ url: string; pid: number; banner: string }> {
  const args = [
    process.execPath, join(ROOT, 'src/sim/cli.ts'),
    '--port', String(port), '--seed', '1', '--accounts', String(scenario.accounts), ...extra,
  ];
  const child = Bun.spawn(args, { cwd: ROOT, stdout: 'pipe', stderr: 'inherit' });
  // Paced, the simulator runs at the lowest priority. It keeps every account's repo in its heap
  // (2.3M objects at 100,000 commits), and each full collection of it took 1-2 s at more than a
  // core every ~12 s of a 2,000/s run: the ingester fell behind for those seconds, which read as
  // ingester lag (session 6, docs/performance.md). A real relay runs on another machine.
  if (scenario.rate) setPriority(child.pid, 19);
  cleanups.push(async () => {
    child.kill('SIGTERM');
    await child.exited;
  });
  const reader = child.stdout.getReader();
  let text = '';
  while (!text.includes('pds')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the simulator exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // drain
    }
  })();
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, banner: text };
}

async function ingesterMetrics(sql: postgres.Sql, url: string) {
  const [version] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
  const processor = (await (await fetch(`${url}/api/metrics/event-processor`)).json()) as {
    rejected: { total: number };
    plcExport: { operations: number; waitsAnswered: number; waitsMissed: number } | null;
  };
  const plc = processor.plcExport;
  return {
    postgresVersion: version?.v ?? 'unknown',
    rejected: processor.rejected.total,
    plcExport: plc && { operations: plc.operations, waitsAnswered: plc.waitsAnswered, waitsMissed: plc.waitsMissed },
  };
}

function printTable(result: Record<string, unknown>): void {
  const rows = Object.entries(result).filter(([key]) => key !== 'machine');
  const width = Math.max(...rows.map(([key]) => key.length));
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${typeof value === 'object' && value !== null ? JSON.stringify(value) : value}`);
  console.log(`${'machine'.padEnd(width)}  ${JSON.stringify(result.machine)}`);
}
