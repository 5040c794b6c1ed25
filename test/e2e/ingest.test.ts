/**
 * End to end: the simulator's real signed commits through the real ingester into PostgreSQL,
 * compared with the simulator's ground truth.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { Database } from '../../src/db/database.ts';
import { startIngester, type Ingester } from '../../src/pipeline/ingester.ts';
import { silentLogger } from '../../src/log.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { startAqueductProcess } from '../support/process.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { until } from '../support/until.ts';

const cleanups: Array<() => Promise<unknown>> = [];
// generous: before the pool's reconnect delay was bounded (database.ts), stopping the process
// right after its outage took 10-15 s, past the default 5 s
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);


const relayOf = (sim: Simulator) => sim.url.replace(/^http/, 'ws');

async function simulate(options: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator({ pregenerate: true, ...options });
  cleanups.push(() => sim.stop());
  return sim;
}

async function database(prefix: string, poolSize = 4): Promise<MigratedDatabase> {
  const migrated = await migratedDatabase(prefix, poolSize);
  cleanups.push(() => migrated.close());
  return migrated;
}

async function ingest(sim: Simulator, db: Database, extra: { verifyCommits?: boolean } = {}): Promise<Ingester> {
  const ingester = await startIngester(
    { relayUrl: relayOf(sim), firehoseStart: { kind: 'seq', seq: 0 }, plcUrl: sim.url, plcFollowExport: true, verifyCommits: extra.verifyCommits ?? true, maxConcurrentOps: 80 },
    db,
    silentLogger,
  );
  cleanups.push(() => ingester.stop());
  return ingester;
}

describe('ingestion from the simulator', () => {
  test('every collection, verified, ends exactly at the ground truth', async () => {
    const sim = await simulate({ seed: 7, accounts: 80, commits: 4000, newAccountShare: 0.2 });
    const { db } = await database('ingest');
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });

    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    expect(Object.fromEntries(ingester.stats.rejectedByReason)).toEqual({});
    expect(ingester.stats.unprovenCommits).toBe(0); // every commit proven (Sync 1.1)
    // every commit followed the one before it: no repo needs a resync
    const [resync] = await db.run((sql) => sql`select count(*)::int as n from repo_resync`);
    expect(resync?.n).toBe(0);
    for (const [collection, count] of Object.entries(truth.records)) expect([collection, count > 0]).toEqual([collection, true]);
    const [cursor] = await db.run((sql) => sql`select seq from firehose_cursor`);
    expect(cursor?.seq).toBe(truth.lastSeq);
  }, 120_000);

  test('accounts in every key form, P-256 included, verify; bad signatures in each are rejected', async () => {
    const keyForms = { 'legacy-uncompressed': 0.2, 'legacy-compressed': 0.15, p256: 0.15, 'p256-legacy': 0.15 };
    const sim = await simulate({ seed: 13, accounts: 60, commits: 3000, keyForms, faults: { badSignature: 0.03 } });
    const forms = new Set(Array.from({ length: 60 }, (_, index) => sim.network.directory.at(index).keyForm));
    expect([...forms].sort()).toEqual(['legacy-compressed', 'legacy-uncompressed', 'multikey', 'p256', 'p256-legacy']);
    const { db } = await database('keyforms');
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });

    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    expect(sim.stats.faults.badSignature).toBeGreaterThan(0);
    expect(Object.fromEntries(ingester.stats.rejectedByReason)).toEqual({ 'bad-signature': sim.stats.faults.badSignature });
    expect(ingester.stats.unverifiedCommits).toBe(0);
    expect(Object.fromEntries(ingester.unusableSigningKeys)).toEqual({});
  }, 120_000);

  test('every fault is counted and survived, and the index still equals the ground truth', async () => {
    const sim = await simulate({
      seed: 11,
      accounts: 50,
      commits: 3000,
      faults: { malformed: 0.02, badSignature: 0.02, unknownCollection: 0.02, invalidRecord: 0.02, duplicate: 0.02, replay: 0.02 },
    });
    const { db } = await database('faults');
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });

    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    const rejected = Object.fromEntries(ingester.stats.rejectedByReason);
    const faults = sim.stats.faults;
    expect(rejected['bad-signature']).toBe(faults.badSignature);
    expect(rejected['invalid-record']).toBe(faults.invalidRecord);
    expect(rejected['unknown-collection']).toBe(faults.unknownCollection);
    // A replay may re-send a malformed frame, which is then counted as malformed, not as a replay.
    const malformed = Object.entries(rejected)
      .filter(([reason]) => reason.startsWith('frame-') || reason === 'bad-car')
      .reduce((sum, [, n]) => sum + n, 0);
    expect(rejected['duplicate-seq']).toBeLessThanOrEqual(faults.duplicate + faults.replay);
    expect(malformed).toBeGreaterThanOrEqual(faults.malformed);
    expect((rejected['duplicate-seq'] ?? 0) + malformed).toBe(faults.duplicate + faults.replay + faults.malformed);
  }, 120_000);

  test('identity, account and sync events: statuses applied, deleted accounts purged', async () => {
    const sim = await simulate({ seed: 13, accounts: 60, commits: 3000, identityShare: 0.02, accountShare: 0.02, syncShare: 0.01 });
    const { db } = await database('lifecycle');
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });

    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    for (const kind of ['identity', 'account', 'sync'] as const) expect(ingester.stats.eventsByType.get(kind)).toBe(sim.stats[kind]);
    // A deleted account's DID is tombstoned at the directory: replaying its earlier commits fails
    // key resolution, which is counted; its records are purged at the deletion anyway.
    const rejected = Object.fromEntries(ingester.stats.rejectedByReason);
    expect(Object.keys(rejected).filter((reason) => reason !== 'key-invalid')).toEqual([]);
    const statuses = await db.run((sql) => sql`select coalesce(status, 'active') as status, count(*)::int as n from actors group by 1 order by 1`);
    expect(statuses.some((row) => row.status === 'deactivated')).toBe(true);
    const [queued] = await db.run((sql) => sql`select count(*)::int as n from identity_queue where reason = 'identity'`);
    expect(queued?.n).toBeGreaterThan(0);
    // a #sync event marks its repo for a resync, durably, in the batch that saw it
    const resync = await db.run((sql) => sql`
      select r.reason, coalesce(a.status, 'active') as status, count(*)::int as n
      from repo_resync r join actors a on a.id = r.actor_id group by 1, 2 order by 1, 2`);
    const synced = resync.filter((row) => row.reason === 'sync-event').reduce((n, row) => n + row.n, 0);
    expect(synced).toBeGreaterThan(0);
    expect(synced).toBeLessThanOrEqual(sim.stats.sync);
    expect(resync.filter((row) => row.reason !== 'sync-event')).toEqual([]);
  }, 120_000);

  test('a new-user storm: every commit from a brand-new account, none dropped', async () => {
    const sim = await simulate({ seed: 3, accounts: 2000, commits: 2000, newAccountShare: 1 });
    const { db } = await database('storm');
    const ingester = await ingest(sim, db, { verifyCommits: false });
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });
    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    const [authors] = await db.run((sql) => sql`select count(*)::int as n from identity_queue where reason = 'new'`);
    expect(authors?.n).toBeGreaterThanOrEqual(sim.stats.newAccountCommits);
    expect(ingester.stats.rejectedByReason.size).toBe(0);
  }, 120_000);

  test('with the PLC directory down, every commit is still indexed, counted as unverified', async () => {
    const sim = await simulate({ seed: 17, accounts: 200, commits: 2000, plc: { errorRate: 1 } });
    const { db } = await database('plcdown');
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });
    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    expect(ingester.stats.unverifiedCommits).toBe(sim.stats.commits);
    expect(ingester.stats.rejectedByReason.size).toBe(0);
  }, 120_000);

  test('with DB_POOL_SIZE=2 it still completes', async () => {
    const sim = await simulate({ seed: 5, accounts: 100, commits: 2000 });
    const { db } = await database('smallpool', 2);
    const ingester = await ingest(sim, db);
    const truth = sim.groundTruth();
    await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 90_000 });
    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
    expect(db.stats().size).toBe(2);
  }, 120_000);

  test('killed in the middle and started again, it ends exactly at the ground truth', async () => {
    const sim = await simulate({ seed: 9, accounts: 300, commits: 8000, rate: 2000, pregenerate: true });
    const { db, url } = await database('restart');
    const env = { DATABASE_URL: url, RELAY_URL: relayOf(sim), PLC_URL: sim.url, FIREHOSE_ENABLED: 'true', FIREHOSE_START: '0', DB_POOL_SIZE: '4' };
    const cursor = async () => (await db.run((sql) => sql`select seq from firehose_cursor`))[0]?.seq ?? 0;

    const first = await startAqueductProcess(env);
    await until(async () => (await cursor()) > 1500, { timeoutMs: 90_000 });
    expect(await first.stop('SIGKILL')).not.toBe(0);
    const killedAt = await cursor();
    const truth = sim.groundTruth();
    expect(killedAt).toBeLessThan(truth.lastSeq);

    const second = await startAqueductProcess(env);
    cleanups.push(() => second.stop('SIGTERM'));
    await until(async () => (await cursor()) === sim.groundTruth().lastSeq, { timeoutMs: 90_000 });
    expect(second.log()).toContain(`cursor=${killedAt}`);
    expect(await readIndexedState(db, sim.groundTruth())).toEqual(expectedState(sim.groundTruth()));
  }, 180_000);

  test('the database away for 2 s in the middle: the process stays up and ends exactly at the ground truth', async () => {
    const sim = await simulate({ seed: 10, accounts: 300, commits: 8000, rate: 2000, pregenerate: true });
    const { db, url } = await database('outage');
    const proxy = startTcpProxy(url);
    cleanups.push(async () => proxy.stop());
    const env = { DATABASE_URL: proxy.url, RELAY_URL: relayOf(sim), PLC_URL: sim.url, FIREHOSE_ENABLED: 'true', FIREHOSE_START: '0', DB_POOL_SIZE: '4' };
    const cursor = async () => (await db.run((sql) => sql`select seq from firehose_cursor`))[0]?.seq ?? 0;

    const aqueduct = await startAqueductProcess(env);
    cleanups.push(() => aqueduct.stop('SIGTERM'));
    await until(async () => (await cursor()) > 1500, { timeoutMs: 90_000 });
    proxy.down();
    await Bun.sleep(2_000);
    proxy.up();
    const truth = sim.groundTruth();
    await until(async () => (await cursor()) === truth.lastSeq, { timeoutMs: 90_000 });
    expect(aqueduct.process.exitCode).toBeNull();
    expect(aqueduct.log()).toContain('writing a batch failed: retrying');
    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));
  }, 180_000);
});
