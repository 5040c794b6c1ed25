/**
 * The metrics surface: `/api/metrics/*` field by field, `/metrics` through a strict parser of the
 * Prometheus text format, first with hand-made services over a real database, then end to end:
 * the simulator's signed commits through a real ingester, read back over real HTTP and compared
 * with the simulator's ground truth.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createApp } from '../../src/api/app.ts';
import {
  MetricsService,
  summarizeRejects,
  type IdentityWorkerSource,
  type IngestSource,
  type PipelineFigures,
  type SubscriptionFigures,
} from '../../src/api/metrics/metrics-service.ts';
import type { IdentityWorker } from '../../src/identity/identity-worker.ts';
import { PrometheusWriter, escapeLabelValue, formatValue } from '../../src/api/prometheus.ts';
import { RecentErrors, recordingLogger } from '../../src/lib/recent-errors.ts';
import { silentLogger } from '../../src/log.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { startIngester, type Ingester } from '../../src/pipeline/ingester.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { until } from '../support/until.ts';
import { parsePrometheus, sampleValue } from './prometheus-text.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const get = (app: { handle(request: Request): Promise<Response> }, path: string) => app.handle(new Request(`http://aqueduct.test${path}`));

async function json(app: { handle(request: Request): Promise<Response> }, path: string): Promise<Record<string, unknown>> {
  const response = await get(app, path);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('application/json');
  expect(response.headers.get('cache-control')).toBe('no-store');
  return (await response.json()) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------

describe('the Prometheus writer', () => {
  test('escapes label values and help text, formats special values, and parses back', () => {
    const nasty = 'a\\b"c\nd}{,=';
    const text = new PrometheusWriter()
      .family('x_total', 'counter', 'help with \\ and\nnewline', [{ labels: { k: nasty }, value: 3 }])
      .family('y', 'gauge', 'specials', [
        { labels: { v: 'nan' }, value: Number.NaN },
        { labels: { v: 'inf' }, value: Infinity },
        { labels: { v: 'ninf' }, value: -Infinity },
        { labels: { v: 'small' }, value: 0.001 },
        { labels: { v: 'big' }, value: 1e21 },
      ])
      .family('z', 'gauge', 'empty family', [])
      .text();
    const parsed = parsePrometheus(text);
    expect(parsed.get('x_total')?.samples[0]?.labels.k).toBe(nasty);
    expect(parsed.get('x_total')?.help).toBe('help with \\ and\nnewline');
    expect(sampleValue(parsed, 'y', { v: 'nan' })).toBeNaN();
    expect(sampleValue(parsed, 'y', { v: 'inf' })).toBe(Infinity);
    expect(sampleValue(parsed, 'y', { v: 'ninf' })).toBe(-Infinity);
    expect(sampleValue(parsed, 'y', { v: 'big' })).toBe(1e21);
    expect(parsed.get('z')?.samples).toEqual([]);
    expect(escapeLabelValue('"\\\n')).toBe('\\"\\\\\\n');
    expect(formatValue(-0.5)).toBe('-0.5');
  });

  test('refuses what a scraper would refuse', () => {
    expect(() => new PrometheusWriter().family('bad-name', 'gauge', 'h', 1)).toThrow('invalid metric name');
    expect(() => new PrometheusWriter().family('requests', 'counter', 'h', 1)).toThrow('must end with _total');
    expect(() => new PrometheusWriter().family('a', 'gauge', 'h', [{ labels: { 'bad-label': 'x' }, value: 1 }])).toThrow('invalid label name');
    expect(() => new PrometheusWriter().family('a', 'gauge', 'h', [{ labels: { __reserved: 'x' }, value: 1 }])).toThrow('invalid label name');
    expect(() => new PrometheusWriter().family('a', 'gauge', 'h', 1).family('a', 'gauge', 'h', 2)).toThrow('written twice');
  });

  test('the strict test parser itself rejects malformed expositions', () => {
    for (const bad of [
      'x 1\n', // no TYPE
      '# TYPE x gauge\nx{a="1} 1\n', // unterminated
      '# TYPE x gauge\nx{a="\\t"} 1\n', // bad escape
      '# TYPE x gauge\nx 1\nx 2\n', // duplicate series
      '# TYPE x counter\nx 1\n', // counter name
      '# TYPE x gauge\nx one\n', // value
      '# TYPE x gauge\nx 1', // final newline
    ]) {
      expect(() => parsePrometheus(bad)).toThrow();
    }
  });
});

describe('reject categories', () => {
  test('each reason lands in exactly one category', () => {
    const reasons = new Map<string, number>([
      ['frame-bad-cbor', 1],
      ['frame-bad-header', 2],
      ['frame-undecodable', 3],
      ['bad-car', 4],
      ['block-hash-mismatch', 5],
      ['bad-signature', 6],
      ['key-invalid', 7],
      ['invalid-record', 8],
      ['unknown-collection', 9],
      ['duplicate-seq', 10],
      ['too-big', 11],
      ['db-rejected', 12],
    ]);
    expect(summarizeRejects(reasons)).toEqual({ badFrame: 15, badSignature: 13, invalidRecord: 8, unknownCollection: 9, other: 33, total: 78 });
    expect(summarizeRejects(undefined)).toEqual({ badFrame: 0, badSignature: 0, invalidRecord: 0, unknownCollection: 0, other: 0, total: 0 });
  });
});

describe('metrics with hand-made services over a real database', () => {
  let migrated: MigratedDatabase;
  let clock = Date.UTC(2026, 0, 1, 12, 0, 0);
  const now = () => clock;

  beforeAll(async () => {
    migrated = await migratedDatabase('metrics_unit', 2);
    cleanups.push(() => migrated.close());
  });

  const PLC_EXPORT = { following: true, position: '2026-12-04T12:00:00.000Z', pages: 3, operations: 2500, badLines: 1, failures: 2, waitsAnswered: 5, waitsMissed: 1 };
  function source(overrides: { pipeline?: Partial<PipelineFigures>; subscription?: Partial<SubscriptionFigures> } = {}): IngestSource & { stats: IngestStats } {
    const stats = new IngestStats(now);
    return {
      stats,
      plcExport: PLC_EXPORT,
      unusableSigningKeys: new Map([['legacy-secp256k1:bad-point', 2]]),
      resync: { figures: { outcomes: new Map([['resynced', 3], ['fetch-failed', 1]]), recordsChanged: 40, unverified: 0 } },
      pipeline: {
        queueDepth: 12,
        queueLimit: 1000,
        inFlight: 5,
        maxConcurrentOps: 80,
        lastAcceptedSeq: 120,
        committedSeq: 100,
        committedTime: new Date(clock - 2500).toISOString(),
        ...overrides.pipeline,
      },
      subscription: {
        connected: true,
        reconnects: 2,
        lastReceivedSeq: 121,
        lastFrameAt: clock - 10,
        relayUrl: 'wss://relay.example',
        errorFrames: new Map([['ConsumerTooSlow', 1]]),
        ...overrides.subscription,
      },
    };
  }

  test('/api/metrics/event-processor: the guide fields, the pipeline, rates, counts and percentiles', async () => {
    const ingest = source();
    const stats = ingest.stats;
    stats.event('commit');
    stats.event('commit');
    stats.event('identity');
    stats.op('app.bsky.feed.post');
    stats.op('app.bsky.feed.like');
    stats.op('app.bsky.feed.like');
    stats.reject('frame-bad-cbor');
    stats.reject('bad-signature');
    stats.reject('invalid-record', 'app.bsky.feed.post');
    stats.unknownCollection('com.example.thing');
    stats.unverifiedCommits = 4;
    for (let second = 0; second < 70; second++) {
      stats.batchCommitted(10, 1, 4);
      clock += 1000;
    }
    stats.batchWriteErrors = 1;
    stats.batchesRewritten = 2;

    const metrics = new MetricsService({
      db: migrated.db,
      ingest,
      identityWorker: { stats: { active: 3, limit: 4 } },
      config: { relayUrl: 'wss://configured.example', maxConcurrentUserCreations: 50 },
      now,
    });
    const app = createApp({ log: silentLogger, readiness: {}, metrics });
    const body = await json(app, '/api/metrics/event-processor');
    expect(body).toEqual({
      firehoseEnabled: true,
      activeUserCreations: 3,
      maxConcurrentUserCreations: 4,
      userCreationUtilization: 75,
      pendingUserCreationOpsCount: 0,
      eventsInFlight: 5,
      maxConcurrentOps: 80,
      opsUtilization: 6.3,
      queueDepth: 12,
      queueLimit: 1000,
      eventsPerSecond: { last1s: 10, last1m: 10, last5m: 2.3 },
      eventsCommitted: 700,
      batchesCommitted: 70,
      newActors: 70,
      unverifiedCommits: 4,
      unprovenCommits: 0,
      reposAwaitingResync: {},
      resyncOutcomes: { resynced: 3, 'fetch-failed': 1 },
      resyncRecordsChanged: 40,
      plcExport: PLC_EXPORT,
      unusableSigningKeys: { 'legacy-secp256k1:bad-point': 2 },
      batchWriteErrors: 1,
      batchesRewritten: 2,
      cursorRegressions: 0,
      seqGaps: 0,
      eventsByType: { commit: 2, identity: 1 },
      opsByCollection: { 'app.bsky.feed.post': 1, 'app.bsky.feed.like': 2 },
      rejected: { badFrame: 1, badSignature: 1, invalidRecord: 1, unknownCollection: 1, other: 0, total: 4 },
      rejectedByReason: { 'frame-bad-cbor': 1, 'bad-signature': 1, 'invalid-record': 1, 'unknown-collection': 1 },
      invalidRecordsByCollection: { 'app.bsky.feed.post': 1 },
      unknownCollections: { 'com.example.thing': 1 },
      batchSize: { p50: 10, p99: 10 },
      flushMs: { p50: 4, p99: 4 },
    });
  });

  test('the identity worker is read live on every request (the real IdentityWorker fits)', async () => {
    const realWorkerFits: IdentityWorker extends IdentityWorkerSource ? true : false = true;
    expect(realWorkerFits).toBe(true);
    let active = 1;
    const worker: IdentityWorkerSource = {
      get stats() {
        return { active, limit: 8 };
      },
    };
    const metrics = new MetricsService({ db: migrated.db, ingest: source(), identityWorker: worker, config: { relayUrl: 'x', maxConcurrentUserCreations: 50 }, now });
    expect((await metrics.eventProcessor()).userCreationUtilization).toBe(12.5);
    active = 8;
    expect(await metrics.eventProcessor()).toMatchObject({ activeUserCreations: 8, maxConcurrentUserCreations: 8, userCreationUtilization: 100 });
  });

  test('without an identity worker, the limit is MAX_CONCURRENT_USER_CREATIONS and nothing is active', async () => {
    const metrics = new MetricsService({ db: migrated.db, ingest: source(), config: { relayUrl: 'wss://r.example', maxConcurrentUserCreations: 35 }, now });
    const body = await metrics.eventProcessor();
    expect([body.activeUserCreations, body.maxConcurrentUserCreations, body.userCreationUtilization]).toEqual([0, 35, 0]);
  });

  test('/api/metrics/firehose: names the tools read, lag from the last committed event time', async () => {
    const metrics = new MetricsService({ db: migrated.db, ingest: source(), config: { relayUrl: 'wss://configured.example', maxConcurrentUserCreations: 50 }, now });
    const app = createApp({ log: silentLogger, readiness: {}, metrics });
    expect(await json(app, '/api/metrics/firehose')).toEqual({
      enabled: true,
      relayUrl: 'wss://relay.example',
      connected: true,
      reconnects: 2,
      cursor: 100,
      cursorTime: new Date(clock - 2500).toISOString(),
      lastReceivedSeq: 121,
      lagSeconds: 2.5,
      queueDepth: 12,
      lastFrameAt: new Date(clock - 10).toISOString(),
      errorFrames: { ConsumerTooSlow: 1 },
    });
    // A relay clock ahead of ours is no lag, not negative lag; no commit yet is null.
    const ahead = new MetricsService({ db: migrated.db, ingest: source({ pipeline: { committedTime: new Date(clock + 5000).toISOString() } }), config: { relayUrl: 'x', maxConcurrentUserCreations: 1 }, now });
    expect(ahead.firehose().lagSeconds).toBe(0);
    const fresh = new MetricsService({ db: migrated.db, ingest: source({ pipeline: { committedSeq: null, committedTime: null } }), config: { relayUrl: 'x', maxConcurrentUserCreations: 1 }, now });
    expect([fresh.firehose().cursor, fresh.firehose().lagSeconds]).toEqual([null, null]);
  });

  test('with the firehose disabled every endpoint still answers, with zeros and nulls', async () => {
    const metrics = new MetricsService({ db: migrated.db, ingest: null, config: { relayUrl: 'wss://configured.example', maxConcurrentUserCreations: 50 }, now });
    const app = createApp({ log: silentLogger, readiness: {}, metrics });
    expect(await json(app, '/api/metrics/firehose')).toEqual({
      enabled: false,
      relayUrl: 'wss://configured.example',
      connected: false,
      reconnects: 0,
      cursor: null,
      cursorTime: null,
      lastReceivedSeq: null,
      lagSeconds: null,
      queueDepth: 0,
      lastFrameAt: null,
      errorFrames: {},
    });
    const ep = await json(app, '/api/metrics/event-processor');
    expect(ep).toMatchObject({ firehoseEnabled: false, eventsInFlight: 0, maxConcurrentOps: 0, queueDepth: 0, eventsCommitted: 0, maxConcurrentUserCreations: 50 });
    const scrape = await get(app, '/metrics');
    const parsed = parsePrometheus(await scrape.text());
    expect(sampleValue(parsed, 'aqueduct_firehose_connected')).toBe(0);
    expect(parsed.get('aqueduct_firehose_lag_seconds')?.samples).toEqual([]);
  });

  test('/api/metrics/database: pool, size on disk, and exact counts from record_counts, cached for a second', async () => {
    const { db } = migrated;
    await db.run(async (sql) => {
      await sql`insert into record_counts (collection, count) values ('app.bsky.feed.post', 41), ('actors', 7)
                on conflict (collection) do update set count = excluded.count`;
      await sql`insert into identity_queue (actor_id, reason) values (1, 'new'), (2, 'new'), (3, 'identity')`;
    });
    const metrics = new MetricsService({ db, ingest: source(), config: { relayUrl: 'x', maxConcurrentUserCreations: 5 }, now });
    const app = createApp({ log: silentLogger, readiness: {}, metrics });
    const body = await json(app, '/api/metrics/database');
    const [size] = await db.run((sql) => sql<{ bytes: number }[]>`select pg_database_size(current_database()) as bytes`);
    expect(body).toMatchObject({ size: 2, active: 0, idle: 2, waiting: 0, utilization: 0, connectionErrors: 0, timeouts: 0 });
    expect(body.records).toEqual({ actors: 7, 'app.bsky.feed.post': 41 });
    expect(typeof body.databaseSizeBytes).toBe('number');
    expect(Math.abs((body.databaseSizeBytes as number) - (size?.bytes ?? 0))).toBeLessThan(1024 * 1024);
    expect(body.sampledAt).toBe(new Date(clock).toISOString());
    expect((await metrics.eventProcessor()).pendingUserCreationOpsCount).toBe(3);

    // Within the second: the cached figures. After it: read again.
    await db.run((sql) => sql`update record_counts set count = 42 where collection = 'app.bsky.feed.post'`);
    expect((await metrics.database()).records['app.bsky.feed.post']).toBe(41);
    clock += 1001;
    expect((await metrics.database()).records['app.bsky.feed.post']).toBe(42);
    await db.run((sql) => sql`delete from identity_queue`);
  });

  test('a saturated pool does not block the metrics: last known figures, with their age', async () => {
    const { db } = migrated;
    const metrics = new MetricsService({ db, ingest: source(), config: { relayUrl: 'x', maxConcurrentUserCreations: 5 }, now, dbWaitMs: 50 });
    const first = await metrics.database();
    expect(first.sampledAt).not.toBeNull();

    const release = Promise.withResolvers<void>();
    const holders = [db.run(() => release.promise), db.run(() => release.promise)];
    clock += 5000;
    const started = performance.now();
    const during = await metrics.database();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(during).toMatchObject({ active: 2, utilization: 100, sampledAt: first.sampledAt });
    const ep = await metrics.eventProcessor();
    expect(ep.pendingUserCreationOpsCount).toBe(0);
    release.resolve();
    await Promise.all(holders);
    await until(async () => (await metrics.database()).sampledAt !== first.sampledAt, { timeoutMs: 5000 });
  });

  test('/metrics: the same figures, conventional names and units, hostile label values escaped', async () => {
    const ingest = source({ subscription: { errorFrames: new Map([['Evil"}\n# TYPE x counter', 3]]) } });
    ingest.stats.event('commit');
    ingest.stats.unknownCollection('com.example.<script>');
    ingest.stats.batchCommitted(1, 0, 250);
    const metrics = new MetricsService({ db: migrated.db, ingest, identityWorker: { stats: { active: 1, limit: 4 } }, config: { relayUrl: 'x', maxConcurrentUserCreations: 4 }, now });
    const app = createApp({ log: silentLogger, readiness: {}, metrics });
    const response = await get(app, '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const parsed = parsePrometheus(await response.text());
    expect(sampleValue(parsed, 'aqueduct_events_total', { type: 'commit' })).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_rejected_total', { reason: 'unknown-collection' })).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_firehose_error_frames_total', { name: 'Evil"}\n# TYPE x counter' })).toBe(3);
    expect(sampleValue(parsed, 'aqueduct_firehose_lag_seconds')).toBe(2.5);
    expect(sampleValue(parsed, 'aqueduct_firehose_cursor')).toBe(100);
    expect(sampleValue(parsed, 'aqueduct_user_creation_utilization_ratio')).toBe(0.25);
    expect(sampleValue(parsed, 'aqueduct_batch_flush_seconds', { quantile: '0.99' })).toBe(0.25);
    expect(sampleValue(parsed, 'aqueduct_plc_export_operations_total')).toBe(2500);
    expect(sampleValue(parsed, 'aqueduct_unusable_signing_keys_total', { reason: 'legacy-secp256k1:bad-point' })).toBe(2);
    expect(sampleValue(parsed, 'aqueduct_plc_export_waits_total', { outcome: 'fetched' })).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_db_pool_connections', { state: 'idle' })).toBe(2);
    expect(sampleValue(parsed, 'aqueduct_db_pool_connections', { state: 'active' })).toBe(0);
    expect(sampleValue(parsed, 'aqueduct_database_size_bytes')).toBeGreaterThan(0);
    expect(sampleValue(parsed, 'aqueduct_records', { collection: 'actors' })).toBe(7);
    expect(sampleValue(parsed, 'aqueduct_process_resident_memory_bytes')).toBeGreaterThan(0);
    for (const [name, family] of parsed) {
      expect(name.startsWith('aqueduct_')).toBe(true);
      expect(family.help.length).toBeGreaterThan(0);
    }
  });

  test('history keeps one sample a second, bounded', () => {
    const ingest = source();
    const metrics = new MetricsService({ db: migrated.db, ingest, config: { relayUrl: 'x', maxConcurrentUserCreations: 1 }, now, historySeconds: 5 });
    for (let i = 0; i < 8; i++) {
      ingest.stats.batchCommitted(i, 0, 1);
      clock += 1000;
      metrics.sample();
    }
    const samples = metrics.history.samples();
    expect(samples.map((s) => s.eventsPerSecond)).toEqual([3, 4, 5, 6, 7]);
    expect(samples.every((s) => typeof s.lagSeconds === 'number')).toBe(true);
  });
});

describe('recent errors', () => {
  test('bounded, newest first, repeats folded, long text cut; the logger wrapper passes everything through', () => {
    let t = 0;
    const recent = new RecentErrors(3, () => ++t);
    const lines: string[] = [];
    const inner = { debug: () => lines.push('debug'), info: () => lines.push('info'), warn: () => lines.push('warn'), error: () => lines.push('error') };
    const log = recordingLogger(inner, recent);
    log.debug('d');
    log.info('i');
    log.warn('reconnecting', { inMs: 5 });
    log.warn('reconnecting', { inMs: 5 });
    log.error('x'.repeat(1000), { error: new Error('outer', { cause: new Error('inner') }), skipped: undefined });
    log.error('second');
    log.error('third');
    expect(lines).toEqual(['debug', 'info', 'warn', 'warn', 'error', 'error', 'error']);
    expect(recent.total).toBe(5);
    const latest = recent.latest();
    expect(latest.map((e) => e.message.slice(0, 6))).toEqual(['third', 'second', 'xxxxxx']);
    expect(latest[2]?.message.length).toBeLessThanOrEqual(203);
    expect(latest[2]?.detail).toBe('error=outer (cause: inner)');
    const folded = new RecentErrors(3, () => ++t);
    folded.record('warn', 'again', { n: 1 });
    folded.record('warn', 'again', { n: 1 });
    expect(folded.latest()).toHaveLength(1);
    expect(folded.latest()[0]).toMatchObject({ count: 2, detail: 'n=1' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('end to end: the simulator through a real ingester, read over HTTP', () => {
  let sim: Simulator;
  let migrated: MigratedDatabase;
  let ingester: Ingester;
  let base: string;
  let metrics: MetricsService;
  const recent = new RecentErrors();

  beforeAll(async () => {
    sim = await startSimulator({
      seed: 'metrics-e2e',
      accounts: 120,
      commits: 1500,
      newAccountShare: 0.2,
      faults: { malformed: 0.02, badSignature: 0.02, unknownCollection: 0.02, invalidRecord: 0.02, duplicate: 0.01, replay: 0.01 },
      identityShare: 0.02,
      syncShare: 0.01,
      pregenerate: true,
      epochMs: Date.now() - 60_000,
    });
    cleanups.push(() => sim.stop());
    migrated = await migratedDatabase('metrics_e2e', 6);
    cleanups.push(() => migrated.close());
    const log = recordingLogger(silentLogger, recent);
    ingester = await startIngester(
      { relayUrl: sim.url.replace(/^http/, 'ws'), firehoseStart: { kind: 'seq', seq: 0 }, plcUrl: sim.url, plcFollowExport: true, verifyCommits: true, maxConcurrentOps: 40 },
      migrated.db,
      log,
    );
    cleanups.push(() => ingester.stop());
    metrics = new MetricsService({ db: migrated.db, ingest: ingester, config: { relayUrl: 'unused', maxConcurrentUserCreations: 7 }, recentErrors: recent, dbMaxAgeMs: 0 });
    metrics.start();
    cleanups.push(async () => metrics.stop());
    const app = createApp({ log, readiness: {}, metrics });
    app.listen({ port: 0, hostname: '127.0.0.1' });
    cleanups.push(() => app.stop(true));
    base = `http://127.0.0.1:${app.server?.port}`;
    await until(() => ingester.pipeline.committedSeq === sim.groundTruth().lastSeq, { timeoutMs: 60_000 });
  }, 90_000);

  const fetchJson = async (path: string) => {
    const response = await fetch(`${base}${path}`);
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };

  test('/api/metrics/firehose: cursor is the stored cursor, lag from its event time', async () => {
    const truth = sim.groundTruth();
    const body = await fetchJson('/api/metrics/firehose');
    const [stored] = await migrated.db.run((sql) => sql<{ seq: number; eventTime: Date }[]>`select seq, event_time from firehose_cursor`);
    expect(body).toMatchObject({
      enabled: true,
      relayUrl: sim.url.replace(/^http/, 'ws'),
      connected: true,
      reconnects: 0,
      cursor: truth.lastSeq,
      queueDepth: 0,
      errorFrames: {},
    });
    expect(stored?.seq).toBe(truth.lastSeq);
    expect(Date.parse(body.cursorTime as string)).toBe(stored?.eventTime.getTime() ?? -1);
    expect(body.lastReceivedSeq).toBe(truth.lastSeq);
    const expectedLag = (Date.now() - Date.parse(body.cursorTime as string)) / 1000;
    expect(Math.abs((body.lagSeconds as number) - expectedLag)).toBeLessThan(2);
    expect(body.lagSeconds as number).toBeGreaterThan(0);
    expect(typeof body.lastFrameAt).toBe('string');
  });

  test('/api/metrics/event-processor: events by type and rejects by reason match what the simulator sent', async () => {
    // Rates count complete seconds only.
    await until(() => ingester.stats.eventsPerSecond(300) > 0, { timeoutMs: 3000 });
    const body = await fetchJson('/api/metrics/event-processor');
    const faults = sim.stats.faults;
    const byType = body.eventsByType as Record<string, number>;
    expect(byType.commit).toBe(sim.stats.commits);
    expect(byType.identity).toBe(sim.stats.identity);
    expect(byType.sync).toBe(sim.stats.sync);
    const rejected = body.rejected as Record<string, number>;
    expect(rejected.badSignature).toBe(faults.badSignature);
    expect(rejected.invalidRecord).toBe(faults.invalidRecord);
    expect(rejected.unknownCollection).toBe(faults.unknownCollection);
    expect(rejected.badFrame).toBe(faults.malformed);
    expect(rejected.other).toBe(faults.duplicate + faults.replay);
    expect(rejected.total).toBe(Object.values(body.rejectedByReason as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(body).toMatchObject({
      firehoseEnabled: true,
      activeUserCreations: 0,
      maxConcurrentUserCreations: 7,
      userCreationUtilization: 0,
      eventsInFlight: 0,
      maxConcurrentOps: 40,
      queueDepth: 0,
      eventsCommitted: sim.groundTruth().lastSeq,
    });
    const [queued] = await migrated.db.run((sql) => sql<{ n: number }[]>`select count(*)::int as n from identity_queue`);
    expect(body.pendingUserCreationOpsCount).toBe(queued?.n ?? -1);
    expect(body.pendingUserCreationOpsCount as number).toBeGreaterThan(0);
    const rates = body.eventsPerSecond as Record<string, number>;
    expect(Object.keys(rates).sort()).toEqual(['last1m', 'last1s', 'last5m']);
    expect(rates.last5m).toBeGreaterThan(0);
    const ops = body.opsByCollection as Record<string, number>;
    expect(ops['app.bsky.feed.post']).toBeGreaterThan(0);
    expect((body.batchSize as { p50: number }).p50).toBeGreaterThan(0);
    expect((body.flushMs as { p99: number }).p99).toBeGreaterThan(0);
    expect(body.batchesCommitted as number).toBeGreaterThan(0);
    expect(body.newActors as number).toBeGreaterThan(0);
  });

  test('/api/metrics/database: records equal the ground truth, per collection and actors', async () => {
    const truth = sim.groundTruth();
    const body = await fetchJson('/api/metrics/database');
    const records = body.records as Record<string, number>;
    for (const [collection, count] of Object.entries(truth.records)) expect([collection, records[collection] ?? 0]).toEqual([collection, count]);
    expect(records.actors).toBe(truth.actorCount);
    expect(body).toMatchObject({ size: 6, waiting: 0, connectionErrors: 0, timeouts: 0 });
    expect((body.active as number) + (body.idle as number)).toBe(6);
    expect(body.databaseSizeBytes as number).toBeGreaterThan(1_000_000);
  });

  test('/metrics parses and agrees with the JSON', async () => {
    const [ep, fh, db] = await Promise.all([fetchJson('/api/metrics/event-processor'), fetchJson('/api/metrics/firehose'), fetchJson('/api/metrics/database')]);
    const parsed = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    expect(sampleValue(parsed, 'aqueduct_events_total', { type: 'commit' })).toBe((ep.eventsByType as Record<string, number>).commit);
    expect(sampleValue(parsed, 'aqueduct_events_committed_total')).toBe(ep.eventsCommitted as number);
    expect(sampleValue(parsed, 'aqueduct_rejected_total', { reason: 'bad-signature' })).toBe(sim.stats.faults.badSignature);
    expect(sampleValue(parsed, 'aqueduct_firehose_cursor')).toBe(fh.cursor as number);
    expect(sampleValue(parsed, 'aqueduct_firehose_connected')).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_firehose_lag_seconds')).toBeGreaterThan(0);
    expect(sampleValue(parsed, 'aqueduct_user_creations_pending')).toBe(ep.pendingUserCreationOpsCount as number);
    expect(sampleValue(parsed, 'aqueduct_db_pool_size')).toBe(6);
    for (const [collection, count] of Object.entries(db.records as Record<string, number>)) {
      expect(sampleValue(parsed, 'aqueduct_records', { collection })).toBe(count);
    }
    for (const [collection, count] of Object.entries(ep.opsByCollection as Record<string, number>)) {
      expect(sampleValue(parsed, 'aqueduct_ops_total', { collection })).toBe(count);
    }
  });

  test('the history samples the run once a second', async () => {
    await until(() => metrics.history.samples().some((s) => s.lagSeconds !== null), { timeoutMs: 3000 });
    expect(metrics.history.samples().length).toBeGreaterThan(0);
  });
});
