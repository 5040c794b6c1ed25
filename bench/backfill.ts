/**
 * The backfill benchmark (`bun run bench -- --scenario backfill [--records N]`): an empty
 * Aqueduct backfills a simulated network while following its live firehose.
 *
 * The simulator (one process: relay, PLC directory and HOSTS PDSes on 127.0.0.2...) preloads
 * `records` records into repos of a realistic spread (most under 100 records, a long tail, a
 * few over 100,000: src/sim/preload.ts) and releases LIVE_RATE commits a second. Aqueduct runs as
 * `bun run start` runs it (src/main.ts, its own process) with BACKFILL=all, FIREHOSE_START=live
 * and verification on; the hosts' and the PLC directory's rate limits are lifted (they are this
 * machine). The clock runs from Aqueduct's start until nothing is queued, listed or imported.
 * Reported: records/s into PostgreSQL (records the imported repos hold, over the run), the live
 * firehose's lag meanwhile (p50/p99: commit time minus release time), Aqueduct's peak RSS, bytes
 * on disk per record, where the CPU went (Aqueduct, PostgreSQL, the simulator) and the import
 * seconds by phase.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import type postgres from 'postgres';
import { connectPostgres } from '../src/db/database.ts';
import { freePorts } from '../src/lib/free-port.ts';
import { percentile } from '../src/lib/percentile.ts';
import { cpuSeconds, followLog, freshDatabase, peakRss, postgresPids, round } from './proc.ts';
import { startScriptEnv } from './start-env.ts';

const HOSTS = 20;
const LIVE_RATE = 450;
const ROOT = join(import.meta.dir, '..');

interface Figures {
  readonly repos: { readonly queued: number; readonly done: number; readonly inactive: number; readonly failed: number };
  readonly hostsToList: number;
  readonly activeImports: number;
  readonly recordsImported: number;
  readonly bytesFetched: number;
  readonly outcomes: Record<string, number>;
  readonly unverified: number;
  readonly phaseSeconds: Record<string, number>;
}

/** A simulated network with `records` preloaded records, and an empty Aqueduct backfilling it beside its live firehose. */
export async function startBackfillingNetwork(cleanups: Array<() => Promise<unknown>>, options: { records: number; keepData: boolean; env?: Record<string, string> }) {
  const { url: databaseUrl, serverPid } = await freshDatabase(cleanups, options.keepData);
  const accounts = Math.max(100, Math.round(options.records / 60));
  // enough live commits to outlast the backfill
  const liveCommits = LIVE_RATE * 3600;
  const [port] = (await freePorts(1)) as [number];
  const simArgs = ['--port', String(port), '--seed', '1', '--accounts', String(accounts), '--hosts', String(HOSTS), '--preload-records', String(options.records), '--rate', String(LIVE_RATE), '--commits', String(liveCommits)];
  const sim = Bun.spawn([process.execPath, join(ROOT, 'src/sim/cli.ts'), ...simArgs], { cwd: ROOT, stdout: 'pipe', stderr: 'inherit' });
  cleanups.push(async () => {
    sim.kill('SIGTERM');
    await sim.exited;
  });
  const banner = await readUntil(sim.stdout, /preloaded .*\n/);
  const allow = /ALLOW_PRIVATE_HOSTS=(\S+)/.exec(banner)?.[1] ?? '127.0.0.1';
  const pacingStartedAt = Number(/paced .* from (\d+)/.exec(banner)?.[1] ?? Date.now());
  console.error(banner.trim());

  const started = performance.now();
  const aqueduct = Bun.spawn([process.execPath, join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: {
      ...(await startScriptEnv(ROOT)),
      ...process.env,
      DATABASE_URL: databaseUrl,
      RELAY_URL: `ws://127.0.0.1:${port}`,
      PLC_URL: `http://127.0.0.1:${port}`,
      ALLOW_PRIVATE_HOSTS: allow,
      FIREHOSE_START: 'live',
      BACKFILL: 'all',
      BACKFILL_HOST_RATE: '100000',
      BACKFILL_BIG_HOST_RATE: '100000',
      PLC_RATE_LIMIT: '10000',
      PORT: '0',
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdout: 'inherit',
    stderr: 'pipe',
  });
  cleanups.push(async () => {
    aqueduct.kill('SIGTERM');
    await aqueduct.exited;
  });
  const sql = connectPostgres(databaseUrl, { max: 1, onnotice: () => {} });
  cleanups.push(() => sql.end({ timeout: 5 }));
  const url = await followLog(aqueduct.stderr);
  return { databaseUrl, serverPid, sim, aqueduct, sql, url, started, pacingStartedAt };
}

/** Live lag now (ms): the time since the stored cursor's commit was released; null before the first batch. */
export async function liveLagMs(sql: postgres.Sql, pacingStartedAt: number): Promise<number | null> {
  const [row] = await sql<{ seq: number }[]>`select seq::int8 as seq from firehose_cursor`.catch(() => []);
  return row ? Math.max(0, Date.now() - pacingStartedAt - (Number(row.seq) / LIVE_RATE) * 1000) : null;
}

/** Resolves with the backfill's figures once nothing is queued, listed or imported (three looks in a row). */
export async function backfilled(url: string, aqueduct: { exitCode: number | null }, onLook: (figures: Figures) => Promise<void> = async () => {}): Promise<Figures> {
  let idle = 0;
  for (;;) {
    await Bun.sleep(500);
    if (aqueduct.exitCode !== null) throw new Error(`Aqueduct exited with ${aqueduct.exitCode}`);
    const figures = (await (await fetch(`${url}/api/metrics/backfill`)).json()) as Figures;
    await onLook(figures);
    const listed = figures.repos.done + figures.repos.queued + figures.repos.failed + figures.repos.inactive > 0;
    idle = listed && figures.repos.queued === 0 && figures.hostsToList === 0 && figures.activeImports === 0 ? idle + 1 : 0;
    if (idle >= 3) return figures;
  }
}

export async function runBackfillBench(cleanups: Array<() => Promise<unknown>>, options: { records: number; keepData: boolean }) {
  const { serverPid, sim, aqueduct, sql, url, started, pacingStartedAt } = await startBackfillingNetwork(cleanups, options);
  const cpuNow = async () => ({ aqueduct: await cpuSeconds([aqueduct.pid]), postgres: await cpuSeconds(await postgresPids(serverPid)), simulator: await cpuSeconds([sim.pid]) });
  const cpuStart = await cpuNow();
  const lags: number[] = [];
  let lastLine = 0;
  const figures = await backfilled(url, aqueduct, async (look) => {
    const lag = await liveLagMs(sql, pacingStartedAt);
    if (lag !== null) lags.push(lag);
    if (performance.now() - lastLine > 10_000) {
      lastLine = performance.now();
      console.error(`${Math.round((performance.now() - started) / 1000)} s: ${look.repos.done} repos done, ${look.repos.queued} queued, ${look.activeImports} importing, ${look.recordsImported} records`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const cpuEnd = await cpuNow();
  const peakRssMb = await peakRss(aqueduct.pid);
  const [size] = await sql<{ bytes: number }[]>`
    select sum(pg_total_relation_size(c.oid))::int8 as bytes from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'm')`;
  const [version] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
  const records = figures.recordsImported ?? 0;
  return {
    scenario: 'backfill',
    description: `${options.records} preloaded records on ${HOSTS} hosts backfilled beside a live firehose of ${LIVE_RATE} commits/s, verification on`,
    repos: figures.repos,
    recordsImported: records,
    seconds: round(seconds, 1),
    recordsPerSec: Math.round(records / seconds),
    bytesPerRecordOnDisk: records ? Math.round(Number(size?.bytes ?? 0) / records) : null,
    carBytesPerRecord: records ? Math.round(figures.bytesFetched / records) : null,
    liveLagP50Ms: Math.round(percentile(lags, 0.5)),
    liveLagP99Ms: Math.round(percentile(lags, 0.99)),
    peakRssMb,
    cpuCoresAqueduct: round((cpuEnd.aqueduct - cpuStart.aqueduct) / seconds, 2),
    cpuCoresPostgres: round((cpuEnd.postgres - cpuStart.postgres) / seconds, 2),
    cpuCoresSimulator: round((cpuEnd.simulator - cpuStart.simulator) / seconds, 2),
    outcomes: figures.outcomes,
    importSecondsByPhase: figures.phaseSeconds,
    unverified: figures.unverified,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', runtime: `bun ${Bun.version}`, postgres: version?.v ?? 'unknown' },
    date: new Date().toISOString(),
  };
}

async function readUntil(stream: ReadableStream<Uint8Array>, pattern: RegExp): Promise<string> {
  const reader = stream.getReader();
  let text = '';
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the simulator exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // drain
    }
  })();
  return text;
}
