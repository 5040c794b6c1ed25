/**
 * The fault scenarios: each one runs Aqueduct (`src/main.ts`, a real process) against the real
 * simulator (a real process, every frame generated up front, with its ground truth: creates,
 * updates and deletes of every collection, and the counters they imply), injects one kind of
 * fault, lets it finish and compares the database with the ground truth.
 *
 * Each returns a `Figure`: faults injected, what was lost or doubled (records and counter units
 * that differ from the ground truth), how long it took to recover, and two kinds of checks:
 * `checks` hold whatever does not depend on the machine's speed (nothing lost or doubled, every
 * fault counted, no crash; the smoke test asserts these), `timing` the bounds the issue sets
 * (exits within 15 s, reconnects after a 60 s stall...), which only the benchmark's verdict uses.
 * `ctx.full` runs the durations the issue names; by default the long waits are shorter (each
 * scenario's description says which), the logic the same. `ctx.smoke` is the reduced form the test
 * runs.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { embeddedPostgresSettings } from '../../src/db/postgres-settings.ts';
import { silentLogger } from '../../src/log.ts';
import { connectPostgres } from '../../src/db/database.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import {
  childrenOf,
  Cleanup,
  commandLine,
  compareWithTruth,
  embeddedUrl,
  firehoseFigures,
  isAlive,
  killLeftovers,
  logLines,
  memoryMb,
  postmasterPid,
  processesUnder,
  processorFigures,
  Random,
  readiness,
  seconds,
  simEnv,
  sleep,
  spawnAqueduct,
  startCursors,
  startDirectory,
  startSim,
  Store,
  tempDir,
  waitFor,
  withPort,
  type AqueductProcess,
  type PgServer,
  type SimProcess,
} from './harness.ts';

export interface Context {
  /** a server to create fresh databases on (scenarios that kill PostgreSQL start their own) */
  readonly pg: PgServer;
  /** the durations the issue names (60 s stall, 10-minute outage, a minute's lock) */
  readonly full: boolean;
  /** the reduced form for `bun test` */
  readonly smoke: boolean;
  readonly seed: number;
  /** memory bound for the slow-database scenario, MB */
  readonly memoryBoundMb: number;
  readonly progress: (line: string) => void;
}

export interface Figure {
  readonly scenario: string;
  /** faults injected */
  faults: number;
  /** null: not measured (nothing to compare, or the scenario was skipped) */
  lost: number | null;
  doubled: number | null;
  /** seconds; null: not measured */
  recoverySeconds: number | null;
  verdict: 'ok' | 'FAIL' | 'skipped';
  /** machine-independent checks (the smoke test asserts these) */
  readonly checks: Record<string, boolean>;
  /** the issue's time bounds (the benchmark's verdict only) */
  readonly timing: Record<string, boolean>;
  readonly notes: string[];
  details: Record<string, unknown>;
}

export interface Scenario {
  readonly description: string;
  run(ctx: Context): Promise<Figure>;
}

const newFigure = (scenario: string): Figure => ({
  scenario,
  faults: 0,
  lost: null,
  doubled: null,
  recoverySeconds: null,
  verdict: 'ok',
  checks: {},
  timing: {},
  notes: [],
  details: {},
});

function settle(figure: Figure): Figure {
  const failed = [...Object.entries(figure.checks), ...Object.entries(figure.timing)].filter(([, ok]) => !ok).map(([name]) => name);
  if (figure.verdict !== 'skipped') figure.verdict = failed.length === 0 ? 'ok' : 'FAIL';
  if (failed.length > 0) figure.notes.unshift(`failed: ${failed.join(', ')}`);
  return figure;
}

/** Runs `body` with a fresh `Cleanup`; an exception becomes a FAIL with its message. */
async function scenario(name: string, body: (figure: Figure, cleanup: Cleanup) => Promise<void>): Promise<Figure> {
  const figure = newFigure(name);
  const cleanup = new Cleanup();
  try {
    await body(figure, cleanup);
  } catch (error) {
    figure.checks['ran to the end'] = false;
    figure.notes.push(`error: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  } finally {
    await cleanup.run();
  }
  return settle(figure);
}

/** Waits until the stored cursor reaches the ground truth's last seq; false if it did not within `timeoutMs`. */
async function reachesEnd(store: Store, sim: SimProcess, proc: AqueductProcess, timeoutMs: number): Promise<boolean> {
  return waitFor(async () => (await store.cursor()) === sim.truth.lastSeq || proc.exitCode() !== null, timeoutMs, 200).then(
    async () => (await store.cursor()) === sim.truth.lastSeq,
  );
}

/**
 * Waits for the end of the stream, compares the database with the truth (while Aqueduct still
 * runs: an embedded server stops with it), then stops `proc` with SIGTERM; fills lost/doubled and
 * the usual checks.
 */
async function finish(figure: Figure, store: Store, sim: SimProcess, proc: AqueductProcess, timeoutMs = 180_000): Promise<void> {
  figure.checks['cursor ends at the last seq'] = await reachesEnd(store, sim, proc, timeoutMs);
  figure.checks['still running at the end'] = proc.exitCode() === null;
  const url = await store.url();
  if (url === null) throw new Error('the database is gone');
  const comparison = await compareWithTruth(url, sim.truth);
  figure.lost = comparison.lost;
  figure.doubled = comparison.doubled;
  figure.checks['nothing lost'] = comparison.lost === 0;
  figure.checks['nothing doubled'] = comparison.doubled === 0;
  if (comparison.differences.length > 0) figure.notes.push(`differences: ${comparison.differences.join(', ')}`);
  const code = await proc.stop();
  figure.checks['exits 0 on SIGTERM'] = code === 0;
  const fatal = logLines(proc.log(), /ingestion failed|identity worker failed|start-up failed|Unhandled|panic/i);
  if (fatal.length > 0) figure.notes.push(...fatal);
}

/** Collects the distinct non-empty `/ready` answers while `during` runs. */
async function watchReadiness(url: string, during: () => Promise<void>): Promise<{ reasons: string[]; notReady: number; unanswered: number }> {
  const reasons = new Set<string>();
  let notReady = 0;
  let unanswered = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const answer = await readiness(url);
      if (answer === null) unanswered++;
      else if (answer !== '') {
        notReady++;
        reasons.add(answer.replace(/\d+(\.\d+)?\s?ms|\(\d+\)|:\d{2,5}\b/g, ''));
      }
      await sleep(400);
    }
  })();
  try {
    await during();
  } finally {
    watching = false;
    await watcher;
  }
  return { reasons: [...reasons].slice(0, 4), notReady, unanswered };
}

/** Time (ms) until the stored cursor passes `seq`, or null after `timeoutMs`. */
async function untilPast(store: Store, seq: number, from: number, timeoutMs: number): Promise<number | null> {
  const ok = await waitFor(async () => ((await store.cursor()) ?? -1) > seq, timeoutMs, 100);
  return ok ? performance.now() - from : null;
}

const ms = (value: number | null): string => (value === null ? 'never' : `${seconds(value)} s`);

// ---- kill -9 ----------------------------------------------------------------------------------

async function kill9(ctx: Context): Promise<Figure> {
  return scenario('kill9', async (figure, cleanup) => {
    const kills = ctx.smoke ? 3 : 20;
    const rate = 800;
    const dir = await tempDir(cleanup, 'kill9');
    const sim = await startSim(cleanup, dir, {
      seed: ctx.seed,
      accounts: 400,
      commits: ctx.smoke ? 6000 : rate * 50,
      rate: ctx.smoke ? 1000 : rate,
      identityShare: 0.01,
      accountShare: 0.004,
    });
    const url = await ctx.pg.createDatabase(cleanup, 'kill9');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const env = { ...simEnv(sim), DATABASE_URL: url };
    const random = new Random(ctx.seed);
    const recoveries: number[] = [];
    const mismatches: string[] = [];
    let beforeServing = 0;
    for (let kill = 0; kill < kills; kill++) {
      const startCursor = (await store.cursor()) ?? 0;
      const proc = await spawnAqueduct(cleanup, env);
      // the smoke test's stream is short: kill it early enough that each kill lands mid-stream
      const killAfter = ctx.smoke ? random.between(300, 1800) : random.between(150, 4000);
      let resumedAt: number | null = null;
      const deadline = proc.startedAt + killAfter;
      while (performance.now() < deadline && proc.exitCode() === null) {
        await sleep(40);
        if (resumedAt === null && ((await store.cursor()) ?? -1) > startCursor) resumedAt = performance.now();
      }
      proc.kill('SIGKILL');
      await proc.exited;
      if (resumedAt !== null) recoveries.push(resumedAt - proc.startedAt);
      if (!/Aqueduct is serving/.test(proc.log())) beforeServing++;
      const said = startCursors(proc.log());
      if (said.length > 0 && said[0] !== startCursor) mismatches.push(`start ${kill + 1}: resumed from ${said[0]}, stored ${startCursor}`);
      figure.faults++;
    }
    const last = await spawnAqueduct(cleanup, env);
    const lastStart = (await store.cursor()) ?? 0;
    const lastResume = lastStart < sim.truth.lastSeq ? await untilPast(store, lastStart, last.startedAt, 60_000) : null;
    if (lastResume !== null) recoveries.push(lastResume);
    await finish(figure, store, sim, last);
    const said = startCursors(last.log());
    if (said.length > 0 && said[0] !== lastStart) mismatches.push(`last start: resumed from ${said[0]}, stored ${lastStart}`);
    figure.checks['every start resumes from the stored cursor'] = mismatches.length === 0;
    figure.recoverySeconds = recoveries.length ? seconds(Math.max(...recoveries)) : null;
    const sorted = [...recoveries].sort((a, b) => a - b);
    figure.notes.push(
      `${kills} kill -9 at random points (${beforeServing} before it served HTTP); restart to first new commit: median ${ms(sorted[sorted.length >> 1] ?? null)}, max ${ms(sorted.at(-1) ?? null)} (${recoveries.length} restarts committed before the next kill)`,
      ...mismatches.slice(0, 3),
    );
    figure.details = { kills, beforeServing, recoveriesMs: recoveries.map(Math.round), lastSeq: sim.truth.lastSeq, records: sim.truth.records };
  });
}

// ---- PostgreSQL killed ------------------------------------------------------------------------

/** The outage length for the database scenarios, ms. */
const dbOutageMs = (ctx: Context): number => (ctx.full ? 30_000 : 5_000);

/**
 * An external server of its own, killed (postmaster kill -9) and started again. `synchronousCommit`
 * 'on' is PostgreSQL's default (an operator's server); 'off' is how the embedded server runs: a
 * commit may then be lost with the server, and its cursor with it.
 */
async function pgExternal(ctx: Context, name: string, synchronousCommit: 'on' | 'off'): Promise<Figure> {
  return scenario(name, async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'pgext');
    const pgDir = join(dir, 'pg-server');
    await mkdir(pgDir, { mode: 0o755 });
    const settings = { ...embeddedPostgresSettings(100), synchronous_commit: synchronousCommit };
    const start = (): Promise<EmbeddedPostgres> => startEmbeddedPostgres({ dataDir: pgDir, log: silentLogger, settings });
    let server = await start();
    cleanup.defer(async () => {
      await server.stop();
      await killLeftovers(pgDir);
    });
    const proxy = startFaultProxy(server.port);
    cleanup.defer(() => proxy.stop());
    const url = withPort(server.url, proxy.port); // the address Aqueduct knows; the server moves behind it
    const rate = 1000;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 500, commits: rate * (ctx.full ? 60 : 30), rate });
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), DATABASE_URL: url });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    if (!(await waitFor(async () => ((await store.cursor()) ?? 0) > 3000, 60_000))) throw new Error('no progress before the fault');
    const before = (await store.cursor()) ?? 0;
    // what Aqueduct holds as committed (its metrics), read just before the kill
    const committedInMemory = (await firehoseFigures(http))?.cursor ?? null;
    const killedAt = performance.now();
    process.kill(server.pid, 'SIGKILL');
    proxy.setMode('refuse'); // until the cursor the restarted server recovered has been read
    figure.faults = 1;
    let recovered: number | null = null;
    const watched = await watchReadiness(http, async () => {
      await waitFor(() => !isAlive(server.pid), 10_000, 20);
      await sleep(dbOutageMs(ctx));
      // a killed postmaster's backends notice and exit by themselves; the next server waits for them
      await waitFor(async () => (await processesUnder(pgDir)).length === 0, 15_000, 100);
      server = await start();
      const direct = new Store(server.url);
      recovered = await direct.cursor();
      await direct.close();
      proxy.retarget(server.port);
      proxy.setMode('up');
    });
    const upAt = performance.now();
    const resumed = await untilPast(store, Math.max(before, recovered ?? 0), upAt, 120_000);
    figure.recoverySeconds = resumed === null ? null : seconds(resumed);
    figure.checks['alive during the outage'] = proc.exitCode() === null;
    figure.checks['/ready says why'] = watched.reasons.some((reason) => /database/i.test(reason));
    figure.checks['resumes by itself'] = resumed !== null;
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `synchronous_commit=${synchronousCommit}; postmaster kill -9, down ${seconds(upAt - killedAt)} s, restarted on another port behind the same address; first commit ${ms(resumed)} after it was back`,
      `/ready while down: ${watched.reasons.join(' | ') || '(always ready)'}`,
      `cursor: ${committedInMemory} committed as Aqueduct saw it before the kill, ${recovered} in the restarted server${
        committedInMemory !== null && recovered !== null && recovered < committedInMemory ? ` (${committedInMemory - recovered} events' commits lost with the server; Aqueduct must notice and follow again from the stored cursor)` : ''
      }`,
    );
    figure.details = { outageMs: Math.round(upAt - killedAt), readyReasons: watched.reasons, resumedMs: resumed, committedInMemory, recovered };
  });
}

/** Aqueduct in embedded mode (DATA_DIR) on a stream paced at `rate`, with progress made; its store. */
async function embeddedRun(cleanup: Cleanup, name: string, dataDir: string, sim: SimProcess) {
  const store = new Store(() => embeddedUrl(dataDir));
  cleanup.defer(() => store.close());
  cleanup.defer(() => killLeftovers(dataDir));
  const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), DATA_DIR: dataDir });
  const http = await proc.serving;
  if (http === null) throw new Error(`${name}: Aqueduct did not start: ${proc.log().slice(-500)}`);
  if (!(await waitFor(async () => ((await store.cursor()) ?? 0) > 3000, 60_000))) throw new Error('no progress before the fault');
  return { store, proc, http };
}

async function pgEmbeddedCrash(ctx: Context): Promise<Figure> {
  return scenario('pg-embedded-crash', async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'pgcrash');
    const dataDir = join(dir, 'data');
    const rate = 1000;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 500, commits: rate * 30, rate });
    const { store, proc, http } = await embeddedRun(cleanup, 'pg-embedded-crash', dataDir, sim);
    const recoveries: number[] = [];
    const reasons = new Set<string>();
    for (let round = 0; round < 2; round++) {
      const postmaster = await postmasterPid(dataDir);
      if (postmaster === null) throw new Error('no postmaster.pid');
      let victim: number | null = null;
      for (const pid of await childrenOf(postmaster)) if (/postgres: \S+ aqueduct /.test(await commandLine(pid))) victim ??= pid;
      if (victim === null) throw new Error('no backend of the aqueduct database to kill');
      const before = (await store.cursor()) ?? 0;
      const killedAt = performance.now();
      process.kill(victim, 'SIGKILL'); // the server then ends every backend and recovers from its WAL
      figure.faults++;
      let resumed: number | null = null;
      const watched = await watchReadiness(http, async () => {
        resumed = await untilPast(store, before, killedAt, 60_000);
      });
      for (const reason of watched.reasons) reasons.add(reason);
      if (resumed !== null) recoveries.push(resumed);
      figure.checks['resumes by itself'] = (figure.checks['resumes by itself'] ?? true) && resumed !== null;
      await sleep(2000);
    }
    figure.recoverySeconds = recoveries.length ? seconds(Math.max(...recoveries)) : null;
    figure.checks['alive through the crash'] = proc.exitCode() === null;
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `a backend kill -9, twice: the embedded server restarts its backends (crash recovery); first commit after: ${recoveries.map((value) => `${seconds(value)} s`).join(', ')}`,
      `/ready meanwhile: ${[...reasons].join(' | ') || '(ready at every look)'}`,
    );
  });
}

async function pgEmbeddedKill(ctx: Context): Promise<Figure> {
  return scenario('pg-embedded-kill', async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'pgkill');
    const dataDir = join(dir, 'data');
    const rate = 1000;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 500, commits: rate * 30, rate });
    const { store, proc, http } = await embeddedRun(cleanup, 'pg-embedded-kill', dataDir, sim);
    const postmaster = await postmasterPid(dataDir);
    if (postmaster === null) throw new Error('no postmaster.pid');
    const before = (await store.cursor()) ?? 0;
    const killedAt = performance.now();
    process.kill(postmaster, 'SIGKILL');
    figure.faults = 1;
    const waitMs = ctx.full ? 120_000 : 30_000;
    let resumed: number | null = null;
    const watched = await watchReadiness(http, async () => {
      resumed = await untilPast(store, before, killedAt, waitMs);
    });
    figure.recoverySeconds = resumed === null ? null : seconds(resumed);
    figure.checks['alive after the kill'] = proc.exitCode() === null;
    figure.checks['/ready says why'] = watched.reasons.some((reason) => /database/i.test(reason));
    figure.checks['resumes by itself'] = resumed !== null;
    figure.notes.push(
      resumed === null
        ? `postmaster kill -9: no commit in the ${seconds(waitMs)} s after (nothing restarts the embedded server); Aqueduct ${proc.exitCode() === null ? 'kept running' : `exited ${proc.exitCode()}`}`
        : `postmaster kill -9: first commit ${ms(resumed)} after`,
      `/ready after the kill: ${watched.reasons.join(' | ') || '(always ready)'}`,
    );
    if (resumed === null) {
      // what an operator (or a supervisor) would do: stop it and start it again; the data must be intact
      const stopAt = performance.now();
      const code = await proc.stop();
      figure.notes.push(`SIGTERM then took ${seconds(performance.now() - stopAt)} s (exit ${code}); started again by hand to check the data`);
      await waitFor(async () => (await processesUnder(dataDir)).length === 0, 15_000, 100);
      const again = await spawnAqueduct(cleanup, { ...simEnv(sim), DATA_DIR: dataDir });
      await finish(figure, store, sim, again);
    } else {
      await finish(figure, store, sim, proc);
    }
  });
}

// ---- the relay --------------------------------------------------------------------------------

/** Last seq Aqueduct has read from the relay (its metrics), or null. */
async function received(http: string): Promise<number | null> {
  return (await firehoseFigures(http))?.lastReceivedSeq ?? null;
}

async function relayStall(ctx: Context): Promise<Figure> {
  return scenario('relay-stall', async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'stall');
    const rate = 500;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 300, commits: rate * 72, rate });
    const proxy = startFaultProxy(sim.port);
    cleanup.defer(() => proxy.stop());
    const url = await ctx.pg.createDatabase(cleanup, 'stall');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), RELAY_URL: `ws://127.0.0.1:${proxy.port}`, DATABASE_URL: url });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    if (!(await waitFor(async () => ((await store.cursor()) ?? 0) > 1000, 60_000))) throw new Error('no progress before the fault');
    const accepted = proxy.accepted;
    const stalledAt = performance.now();
    proxy.freeze(); // the open connection stays open and silent: no frame, no close
    figure.faults = 1;
    const lastRead = (await received(http)) ?? 0;
    const reconnected = await waitFor(() => proxy.accepted > accepted, 150_000, 100);
    const reconnectMs = performance.now() - stalledAt;
    proxy.cutFrozen();
    const resumed = reconnected ? await untilPast(store, lastRead, stalledAt, 60_000) : null;
    figure.recoverySeconds = resumed === null ? null : seconds(resumed);
    figure.checks['reconnects by itself'] = reconnected;
    figure.timing['reconnects within 75 s of the last frame'] = reconnected && reconnectMs <= 75_000;
    const connects = [...proc.log().matchAll(/connected to the relay url=\S*cursor=(\d+)/g)].map((match) => Number(match[1]));
    const from = connects.at(-1) ?? null;
    figure.checks['reconnects from its cursor'] = from !== null && from >= lastRead - 1 && connects.length >= 2;
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `the relay's socket silent from ${lastRead}: a new connection after ${seconds(reconnectMs)} s, from cursor=${from}; first commit past it ${ms(resumed)} after the stall began`,
      'the stall lasts as long as Aqueduct waits: its idle limit is 60 s and not configurable, so the default run and --full are the same',
    );
    figure.details = { reconnectMs: Math.round(reconnectMs), resumeCursor: from, lastRead };
  });
}

async function relayClose(ctx: Context): Promise<Figure> {
  return scenario('relay-close', async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'close');
    const rate = 1000;
    const cuts = ctx.smoke ? 2 : 5;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 300, commits: rate * 15, rate });
    const proxy = startFaultProxy(sim.port);
    cleanup.defer(() => proxy.stop());
    const url = await ctx.pg.createDatabase(cleanup, 'close');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), RELAY_URL: `ws://127.0.0.1:${proxy.port}`, DATABASE_URL: url });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    if (!(await waitFor(async () => ((await store.cursor()) ?? 0) > 500, 60_000))) throw new Error('no progress before the fault');
    const random = new Random(ctx.seed + 1);
    const recoveries: number[] = [];
    for (let cut = 0; cut < cuts; cut++) {
      await sleep(random.between(500, 2500));
      const lastRead = (await received(http)) ?? 0;
      const cutAt = performance.now();
      proxy.cut();
      figure.faults++;
      const resumed = await untilPast(store, lastRead, cutAt, 60_000);
      if (resumed !== null) recoveries.push(resumed);
      else figure.checks['resumes after every close'] = false;
    }
    figure.checks['resumes after every close'] ??= true;
    const reconnects = (await firehoseFigures(http))?.reconnects ?? 0;
    figure.checks['every close counted as a reconnect'] = reconnects >= cuts;
    figure.recoverySeconds = recoveries.length ? seconds(Math.max(...recoveries)) : null;
    await finish(figure, store, sim, proc);
    figure.notes.push(`${cuts} closes by the relay: reconnects counted ${reconnects}; past the last frame read again after ${recoveries.map((value) => `${seconds(value)}`).join(', ')} s`);
  });
}

/** A flood with faults inside the stream; `counted` reads what Aqueduct counted of them from its metrics. */
async function streamFaults(
  ctx: Context,
  name: string,
  faults: string,
  counted: (figures: { rejected: Record<string, number>; errorFrames: Record<string, number> }, injected: Record<string, number>, figure: Figure) => void,
): Promise<Figure> {
  return scenario(name, async (figure, cleanup) => {
    const dir = await tempDir(cleanup, name);
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 200, commits: ctx.smoke ? 2000 : 6000, faults });
    const url = await ctx.pg.createDatabase(cleanup, name);
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), DATABASE_URL: url });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    const started = performance.now();
    const done = await reachesEnd(store, sim, proc, 120_000);
    if (done) figure.details.secondsToEnd = seconds(performance.now() - started);
    const processor = await processorFigures(http);
    const firehose = await firehoseFigures(http);
    counted({ rejected: processor?.rejectedByReason ?? {}, errorFrames: firehose?.errorFrames ?? {} }, sim.stats.stats.faults, figure);
    await finish(figure, store, sim, proc);
  });
}

const malformedCount = (rejected: Record<string, number>): number =>
  Object.entries(rejected)
    .filter(([reason]) => reason.startsWith('frame-') || reason === 'bad-car')
    .reduce((sum, [, n]) => sum + n, 0);

const relayGarbage = (ctx: Context) =>
  streamFaults(ctx, 'relay-garbage', 'malformed=0.03', ({ rejected }, injected, figure) => {
    figure.faults = injected.malformed ?? 0;
    const seen = malformedCount(rejected);
    figure.checks['every bad frame counted'] = seen === figure.faults && figure.faults > 0;
    figure.notes.push(`garbage bytes, truncated frames and garbled CAR slices: ${figure.faults} sent, ${seen} counted (${JSON.stringify(rejected)})`);
  });

const relayReplay = (ctx: Context) =>
  streamFaults(ctx, 'relay-replay', 'replay=0.03,duplicate=0.03', ({ rejected }, injected, figure) => {
    figure.faults = (injected.replay ?? 0) + (injected.duplicate ?? 0);
    const seen = rejected['duplicate-seq'] ?? 0;
    figure.checks['every old seq counted'] = seen === figure.faults && figure.faults > 0;
    figure.notes.push(`${injected.replay} old frames re-sent (2-500 back) and ${injected.duplicate} sent twice: ${seen} counted as duplicate-seq`);
  });

const relaySkip = (ctx: Context) =>
  streamFaults(ctx, 'relay-skip', 'seqGap=0.03', ({ rejected }, injected, figure) => {
    figure.faults = injected.seqGap ?? 0;
    figure.checks['gaps injected'] = figure.faults > 0;
    figure.checks['nothing rejected'] = Object.keys(rejected).length === 0;
    figure.notes.push(
      `${figure.faults} jumps of 1-50 in the relay's sequence numbers (no event missing): accepted as they are; Aqueduct keeps no count of sequence gaps (see the report), rejected: ${JSON.stringify(rejected)}`,
    );
  });

async function relayOutdated(ctx: Context): Promise<Figure> {
  const inStream = await streamFaults(ctx, 'relay-outdated-cursor', 'outdatedCursor=0.01', ({ errorFrames }, injected, figure) => {
    figure.faults = injected.outdatedCursor ?? 0;
    figure.checks['every #info counted'] = (errorFrames.OutdatedCursor ?? 0) === figure.faults && figure.faults > 0;
    figure.notes.push(`${figure.faults} #info OutdatedCursor frames mid-stream: ${errorFrames.OutdatedCursor ?? 0} counted (errorFrames)`);
  });
  if (ctx.smoke) return inStream;
  // and the real thing: a cursor older than everything the relay still holds
  const cleanup = new Cleanup();
  try {
    const dir = await tempDir(cleanup, 'outdated');
    const retain = 1000;
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 200, commits: 4000, retain });
    const url = await ctx.pg.createDatabase(cleanup, 'outdated');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), DATABASE_URL: url });
    const http = await proc.serving;
    const ended = http !== null && (await reachesEnd(store, sim, proc, 120_000));
    const counted = http === null ? 0 : ((await firehoseFigures(http))?.errorFrames.OutdatedCursor ?? 0);
    inStream.faults++;
    inStream.checks['a cursor the relay no longer holds: counted'] = counted === 1;
    inStream.checks['a cursor the relay no longer holds: continues to the end'] = ended && proc.exitCode() === null;
    inStream.notes.push(
      `FIREHOSE_START=0 against a relay holding only its last ${retain} frames: OutdatedCursor counted ${counted}, continued from the oldest frame held to ${ended ? 'the last seq' : 'NOT the last seq'} (the ${sim.truth.lastSeq - retain} events before it are gone at the relay: not compared)`,
    );
  } catch (error) {
    inStream.checks['a cursor the relay no longer holds: ran'] = false;
    inStream.notes.push(`error: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await cleanup.run();
  }
  return settle(inStream);
}

// ---- the PLC directory and every PDS unreachable ----------------------------------------------

async function plcOutage(ctx: Context): Promise<Figure> {
  return scenario('plc-outage', async (figure, cleanup) => {
    const dir = await tempDir(cleanup, 'plc');
    const outageMs = ctx.full ? 600_000 : 40_000;
    const rate = 200;
    const accounts = 700;
    const commits = Math.round(rate * (10 + outageMs / 1000 + 15));
    // DID documents name the PDS through a proxy (so that it can become unreachable), the relay behind it
    const pds = startFaultProxy(1); // retargeted below, once the relay's port is known
    cleanup.defer(() => pds.stop());
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts, commits, rate, newShare: 0.04, pdsUrl: pds.url });
    pds.retarget(sim.port);
    const directory = await startDirectory(cleanup, { seed: ctx.seed, accounts, pdsUrl: pds.url });
    const plc = startFaultProxy(directory.port);
    cleanup.defer(() => plc.stop());
    const url = await ctx.pg.createDatabase(cleanup, 'plc');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, {
      ...simEnv(sim),
      PLC_URL: plc.url,
      HANDLE_RESOLVER_URL: plc.url,
      PLC_RATE_LIMIT: '100',
      DATABASE_URL: url,
    });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    const pacing = sim.pacingStartedAt ?? Date.now();
    /** how far (s) the stored cursor is behind what the relay has released */
    const lag = async (): Promise<number | null> => {
      const cursor = await store.cursor();
      if (cursor === null) return null;
      const due = Math.min(sim.truth.lastSeq, ((Date.now() - pacing) / 1000) * rate);
      return Math.max(0, (due - cursor) / rate);
    };
    await sleep(10_000);
    const lagBefore: number[] = [];
    for (let i = 0; i < 5; i++) {
      lagBefore.push((await lag()) ?? 0);
      await sleep(200);
    }
    const pendingAtStart = (await store.query<{ n: number }>('select count(*)::int as n from identity_queue'))?.[0]?.n ?? null;
    const actorsAt = async () => (await store.query<{ n: number }>('select count(*)::int as n from actors'))?.[0]?.n ?? null;
    const actorsBefore = await actorsAt();
    const plcBefore = plc.accepted;
    const pdsBefore = pds.accepted;
    plc.setMode('blackhole');
    pds.setMode('blackhole');
    figure.faults = 2;
    const outageStart = performance.now();
    const lagDuring: number[] = [];
    let maxPending = 0;
    while (performance.now() - outageStart < outageMs) {
      lagDuring.push((await lag()) ?? 0);
      const pending = (await store.query<{ n: number }>('select count(*)::int as n from identity_queue'))?.[0]?.n ?? 0;
      maxPending = Math.max(maxPending, pending);
      await sleep(500);
    }
    const actorsAfter = await actorsAt();
    plc.setMode('up');
    pds.setMode('up');
    const outageEnd = performance.now();
    figure.checks['alive through the outage'] = proc.exitCode() === null;
    // identity work drains: every actor's DID resolved, nothing left in the queue
    const drained = async (): Promise<boolean> => {
      const rows = await store.query<{ queued: number; unresolved: number }>(
        `select (select count(*) from identity_queue)::int as queued,
                (select count(*) from actors where status is distinct from 'deleted' and did_status is distinct from 'ok')::int as unresolved`,
      );
      return rows !== null && rows[0]!.queued === 0 && rows[0]!.unresolved === 0;
    };
    const cursorDone = await reachesEnd(store, sim, proc, 120_000);
    const drainedOk = await waitFor(drained, ctx.full ? 1_200_000 : 300_000, 1000);
    const drainMs = performance.now() - outageEnd;
    const left = await store.query<{ queued: number; unresolved: number; parked: number }>(
      `select (select count(*) from identity_queue)::int as queued,
              (select count(*) from actors where did_status is distinct from 'ok')::int as unresolved,
              (select count(*) from actors where did_status = 'unresolvable')::int as parked`,
    );
    figure.recoverySeconds = drainedOk ? seconds(drainMs) : null;
    figure.checks['identity work drains afterwards'] = drainedOk;
    const maxLagDuring = Math.max(0, ...lagDuring);
    figure.timing['ingestion unaffected (lag under 5 s throughout)'] = maxLagDuring <= 5;
    figure.checks['cursor reaches the last seq'] = cursorDone;
    const processor = await processorFigures(http);
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `PLC directory and PDS blackholed (connections accepted, never answered) for ${seconds(outageMs)} s at ${rate} commits/s${ctx.full ? '' : ' (--full: 600 s)'}`,
      `lag behind the relay: before ${Math.max(...lagBefore).toFixed(1)} s, during the outage max ${maxLagDuring.toFixed(1)} s; unverified commits ${processor?.unverifiedCommits ?? '?'}`,
      `actors: ${actorsBefore} at the outage, ${actorsAfter} at its end; requests to the unreachable hosts during it: ${plc.accepted - plcBefore} PLC, ${pds.accepted - pdsBefore} PDS`,
      `identity queue: ${pendingAtStart} at the outage, up to ${maxPending} during it; ${drainedOk ? `drained ${seconds(drainMs)} s after it ended` : `not drained ${seconds(drainMs)} s after: ${JSON.stringify(left?.[0])}`}`,
    );
    figure.details = { outageMs, lagBefore, maxLagDuring, maxPending, drainMs: Math.round(drainMs), left: left?.[0] };
  });
}

// ---- the disk fills ---------------------------------------------------------------------------

/** Mounts a tmpfs of `sizeMb` at a new folder, or says why it cannot. */
async function mountTmpfs(cleanup: Cleanup, sizeMb: number): Promise<{ dir: string } | { skipped: string }> {
  if (process.platform !== 'linux') return { skipped: 'needs Linux (tmpfs)' };
  if (process.getuid?.() !== 0) return { skipped: 'needs root (mount -t tmpfs)' };
  const base = await tempDir(cleanup, 'disk');
  const dir = join(base, 'mnt');
  await mkdir(dir);
  const mounted = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'tmpfs', dir], { stderr: 'pipe' });
  if (mounted.exitCode !== 0) return { skipped: `needs a tmpfs mount (${mounted.stderr.toString().trim() || `exit ${mounted.exitCode}`})` };
  cleanup.defer(async () => {
    await killLeftovers(dir);
    for (let attempt = 0; attempt < 10; attempt++) {
      if (Bun.spawnSync(['umount', dir]).exitCode === 0) return;
      await sleep(500);
    }
    Bun.spawnSync(['umount', '-l', dir]);
  });
  return { dir };
}

function freeMb(dir: string): number {
  const out = Bun.spawnSync(['df', '--output=avail', '-m', dir], { stdout: 'pipe' }).stdout.toString().trim().split('\n');
  return Number(out.at(-1));
}

async function diskFull(ctx: Context): Promise<Figure> {
  return scenario('disk-full', async (figure, cleanup) => {
    const mount = await mountTmpfs(cleanup, 512);
    if ('skipped' in mount) {
      figure.verdict = 'skipped';
      figure.notes.push(`skipped: ${mount.skipped}`);
      return;
    }
    const dataDir = join(mount.dir, 'data');
    const dir = await tempDir(cleanup, 'disksim');
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 2000, commits: 60_000, rate: 2000 });
    const { store, proc, http } = await embeddedRun(cleanup, 'disk-full', dataDir, sim);
    // leave a little room, then let the stream fill it
    const ballast = join(mount.dir, 'ballast');
    const room = 24;
    const fill = Math.max(0, freeMb(mount.dir) - room);
    await writeFile(ballast, Buffer.alloc(fill * 1024 * 1024));
    figure.faults = 1;
    const filledAt = performance.now();
    // full: progress stops (or the process stops) while the relay still has events for it
    let last = (await store.cursor()) ?? 0;
    let stuckSince = performance.now();
    const stuck = await waitFor(async () => {
      const now = (await store.cursor()) ?? last;
      if (now !== last) {
        last = now;
        stuckSince = performance.now();
      }
      return proc.exitCode() !== null || (performance.now() - stuckSince > 5000 && now < sim.truth.lastSeq);
    }, 120_000, 250);
    figure.checks['the disk filled before the stream ended'] = stuck;
    const holdMs = ctx.full ? 60_000 : 10_000;
    const watched = await watchReadiness(http, () => sleep(holdMs));
    const exitedWhileFull = proc.exitCode();
    const diskLines = logLines(proc.log(), /No space|disk full|could not extend|could not write|ENOSPC|PANIC/i, 2);
    figure.checks['stops or pauses, nothing skipped'] = stuck;
    figure.checks['/ready (or the exit) gives the reason'] =
      exitedWhileFull !== null ? diskLines.length > 0 : watched.reasons.some((reason) => /space|disk|full/i.test(reason));
    const writeErrors = (await processorFigures(http))?.batchWriteErrors ?? null;
    await rm(ballast);
    const freedAt = performance.now();
    let runner: AqueductProcess = proc;
    let resumed: number | null = null;
    if (exitedWhileFull === null) {
      resumed = await untilPast(store, last, freedAt, ctx.full ? 300_000 : 60_000);
    } else {
      // it stopped: started again, as a supervisor would
      runner = await spawnAqueduct(cleanup, { ...simEnv(sim), DATA_DIR: dataDir });
      resumed = await untilPast(store, last, freedAt, 120_000);
    }
    figure.checks['resumes once space is freed'] = resumed !== null;
    figure.recoverySeconds = resumed === null ? null : seconds(resumed);
    if (resumed === null && runner.exitCode() === null) {
      // to check for corruption all the same: restart it by hand
      figure.notes.push('no commit after space was freed: restarted by hand to check the data');
      await runner.stop();
      await waitFor(async () => (await processesUnder(dataDir)).length === 0, 15_000, 100);
      runner = await spawnAqueduct(cleanup, { ...simEnv(sim), DATA_DIR: dataDir });
    }
    await finish(figure, store, sim, runner);
    figure.notes.push(
      `DATA_DIR on a 512 MB tmpfs filled to ${room} MB free ${seconds(performance.now() - filledAt)} s before the end; full for ${seconds(holdMs)} s (--full: 60 s); Aqueduct ${exitedWhileFull === null ? 'kept running' : `exited ${exitedWhileFull}`}`,
      `/ready while full: ${watched.reasons.join(' | ') || '(always ready)'}; batchWriteErrors ${writeErrors}`,
      ...diskLines.map((line) => `log: ${line}`),
    );
    figure.details = { readyReasons: watched.reasons, exitedWhileFull, resumedMs: resumed };
  });
}

// ---- a slow database --------------------------------------------------------------------------

async function slowDb(ctx: Context): Promise<Figure> {
  return scenario('slow-db', async (figure, cleanup) => {
    const lockMs = ctx.full ? 60_000 : 20_000;
    const dir = await tempDir(cleanup, 'slow');
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 3000, commits: 80_000 });
    const url = await ctx.pg.createDatabase(cleanup, 'slow');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const proc = await spawnAqueduct(cleanup, { ...simEnv(sim), DATABASE_URL: url });
    const http = await proc.serving;
    if (http === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
    if (!(await waitFor(async () => ((await store.cursor()) ?? 0) > 3000, 60_000, 50))) throw new Error('no progress before the fault');
    const rssBefore = (await memoryMb(proc.pid))?.rss ?? 0;
    const locker = connectPostgres(url, { max: 1, onnotice: () => {} });
    cleanup.defer(() => locker.end({ timeout: 2 }));
    const locked = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const holding = locker
      .begin(async (tx) => {
        await tx`lock table likes in access exclusive mode`;
        locked.resolve();
        await release.promise;
      })
      .catch((error: unknown) => locked.reject(error));
    await locked.promise;
    figure.faults = 1;
    const lockedAt = performance.now();
    let peakRss = rssBefore;
    let maxAhead = 0;
    let queueLimit = 0;
    let readWhileLocked = 0;
    let firstReceived: number | null = null;
    while (performance.now() - lockedAt < lockMs) {
      const memory = await memoryMb(proc.pid);
      if (memory) peakRss = Math.max(peakRss, memory.rss);
      const firehose = await firehoseFigures(http);
      const processor = await processorFigures(http);
      if (firehose && processor) {
        queueLimit = processor.queueLimit;
        const cursor = firehose.cursor ?? 0;
        maxAhead = Math.max(maxAhead, (firehose.lastReceivedSeq ?? 0) - cursor);
        firstReceived ??= firehose.lastReceivedSeq;
        readWhileLocked = (firehose.lastReceivedSeq ?? 0) - (firstReceived ?? 0);
      }
      await sleep(250);
    }
    const before = (await store.cursor()) ?? 0;
    release.resolve();
    await holding;
    const releasedAt = performance.now();
    const resumed = await untilPast(store, before, releasedAt, 120_000);
    figure.recoverySeconds = resumed === null ? null : seconds(resumed);
    figure.checks['resumes after the lock'] = resumed !== null;
    figure.checks['reads no further than its queue ahead of the database'] = maxAhead <= queueLimit + 1000;
    figure.timing[`memory under ${ctx.memoryBoundMb} MB`] = peakRss <= ctx.memoryBoundMb;
    figure.checks['alive through the lock'] = proc.exitCode() === null;
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `likes locked (access exclusive) for ${seconds(lockMs)} s${ctx.full ? '' : ' (--full: 60 s)'} during a flood of 80k commits: read at most ${maxAhead} events ahead of the cursor (queue limit ${queueLimit}), ${readWhileLocked} read in all while locked`,
      `RSS ${rssBefore} MB before, peak ${peakRss} MB during (bound ${ctx.memoryBoundMb} MB); first commit ${ms(resumed)} after the lock was released`,
    );
    figure.details = { lockMs, rssBefore, peakRss, maxAhead, queueLimit, readWhileLocked };
  });
}

// ---- SIGTERM during a flood -------------------------------------------------------------------

async function sigterm(ctx: Context): Promise<Figure> {
  return scenario('sigterm', async (figure, cleanup) => {
    const terms = ctx.smoke ? 1 : 3;
    const dir = await tempDir(cleanup, 'sigterm');
    const sim = await startSim(cleanup, dir, { seed: ctx.seed, accounts: 3000, commits: ctx.smoke ? 20_000 : 100_000 });
    const url = await ctx.pg.createDatabase(cleanup, 'sigterm');
    const store = new Store(url);
    cleanup.defer(() => store.close());
    const env = { ...simEnv(sim), DATABASE_URL: url };
    const random = new Random(ctx.seed + 2);
    const exits: number[] = [];
    const recoveries: number[] = [];
    const problems: string[] = [];
    let proc = await spawnAqueduct(cleanup, env);
    for (let term = 0; term < terms; term++) {
      if ((await proc.serving) === null) throw new Error(`Aqueduct did not start: ${proc.log().slice(-500)}`);
      const startCursor = (await store.cursor()) ?? 0;
      // mid-flood: once it has written something, at a random moment
      await waitFor(async () => ((await store.cursor()) ?? 0) > startCursor, 60_000, 20);
      await sleep(random.between(200, ctx.smoke ? 600 : 2000));
      const termAt = performance.now();
      proc.kill('SIGTERM');
      figure.faults++;
      const code = await proc.exited;
      const exitMs = performance.now() - termAt;
      exits.push(exitMs);
      if (code !== 0) problems.push(`SIGTERM ${term + 1}: exit ${code}`);
      const stored = (await store.cursor()) ?? 0;
      const said = /ingestion stopped cursor=(\d+)/.exec(proc.log())?.[1];
      if (said !== undefined && Number(said) !== stored) problems.push(`SIGTERM ${term + 1}: said it stopped at ${said}, stored ${stored}`);
      if (stored >= sim.truth.lastSeq) problems.push(`SIGTERM ${term + 1}: came after the flood had ended`);
      proc = await spawnAqueduct(cleanup, env);
      const resumed = await untilPast(store, stored, termAt, 60_000);
      if (resumed !== null) recoveries.push(resumed);
      const from = startCursors(proc.log());
      await waitFor(() => startCursors(proc.log()).length > 0 || proc.exitCode() !== null, 30_000, 50);
      const resumedFrom = startCursors(proc.log())[0] ?? from[0];
      if (resumedFrom !== stored) problems.push(`start ${term + 2}: resumed from ${resumedFrom}, stored ${stored}`);
    }
    figure.checks['exits 0 and resumes exactly'] = problems.length === 0;
    figure.timing['exits within 15 s'] = exits.every((value) => value <= 15_000);
    figure.recoverySeconds = recoveries.length ? seconds(Math.max(...recoveries)) : null;
    await finish(figure, store, sim, proc);
    figure.notes.push(
      `${terms} SIGTERM mid-flood (${sim.truth.lastSeq} events, as fast as it reads): exit after ${exits.map((value) => `${seconds(value)}`).join(', ')} s; SIGTERM to the next process's first commit ${recoveries.map((value) => `${seconds(value)}`).join(', ')} s`,
      ...problems.slice(0, 3),
    );
    figure.details = { exitsMs: exits.map(Math.round), recoveriesMs: recoveries.map(Math.round) };
  });
}

export const SCENARIOS: Record<string, Scenario> = {
  kill9: { description: 'kill -9 at 20 random points of one run (paced 800 commits/s), restarted each time', run: kill9 },
  'pg-external': {
    description: 'external PostgreSQL (synchronous_commit=on, its default): postmaster kill -9, back after 5 s (--full: 30 s) behind the same address',
    run: (ctx) => pgExternal(ctx, 'pg-external', 'on'),
  },
  'pg-external-async': {
    description: 'the same with synchronous_commit=off (as the embedded server runs)',
    run: (ctx) => pgExternal(ctx, 'pg-external-async', 'off'),
  },
  'pg-embedded-crash': { description: 'embedded PostgreSQL: a backend kill -9 (the server restarts itself), twice', run: pgEmbeddedCrash },
  'pg-embedded-kill': { description: 'embedded PostgreSQL: postmaster kill -9; waits 30 s (--full: 120 s) for Aqueduct to bring it back', run: pgEmbeddedKill },
  'relay-stall': { description: 'the relay socket goes silent (no frame, no close) until Aqueduct reconnects (its limit: 60 s)', run: relayStall },
  'relay-close': { description: 'the relay closes the connection 5 times at random moments', run: relayClose },
  'relay-garbage': { description: 'garbage, truncated frames and garbled CAR slices in the stream (3% of commits)', run: relayGarbage },
  'relay-outdated-cursor': { description: '#info OutdatedCursor mid-stream, and a cursor older than the relay holds', run: relayOutdated },
  'relay-replay': { description: 'old sequence numbers re-sent and frames sent twice (3% each)', run: relayReplay },
  'relay-skip': { description: 'the relay skips sequence numbers (3% of commits, jumps of 1-50)', run: relaySkip },
  'plc-outage': { description: 'PLC directory and every PDS unreachable for 40 s (--full: 10 min) at 200 commits/s', run: plcOutage },
  'disk-full': { description: 'DATA_DIR on a small tmpfs fills up, then space is freed (needs root)', run: diskFull },
  'slow-db': { description: 'a table locked for 20 s (--full: 60 s) during a flood: memory bound and back-pressure', run: slowDb },
  sigterm: { description: 'SIGTERM during a flood, 3 times: exit within 15 s, the next start resumes exactly', run: sigterm },
};
