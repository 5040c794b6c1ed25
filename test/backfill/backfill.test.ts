/**
 * The backfill against the simulator and a real PostgreSQL: an empty index filled from the
 * relay's listing and each repo's getRepo ends exactly at the ground truth (records and
 * counters); beside a live firehose started after the history, the two together end there too,
 * with commits made during the imports neither lost nor applied twice; a second run changes
 * nothing; a repo found inactive is queued again when its account is active again.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { silentLogger } from '../../src/log.ts';
import { ActorIds } from '../../src/pipeline/actor-ids.ts';
import { buildBatch } from '../../src/pipeline/batch.ts';
import { writeBatch } from '../../src/pipeline/batch-writer.ts';
import { startIngester } from '../../src/pipeline/ingester.ts';
import { startSimulator } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { startTestBackfill } from './harness.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

const repoStates = async (db: import('../../src/db/database.ts').Database) =>
  Object.fromEntries(
    (await db.run((sql) => sql<{ state: string; n: number }[]>`select state, count(*)::int as n from backfill_repos group by state`)).map((row) => [row.state, row.n]),
  );

describe('backfill', () => {
  test('an empty index backfilled from the relay ends exactly at the ground truth; a second run changes nothing', async () => {
    const sim = await startSimulator({ seed: 41, accounts: 60, commits: 3000, pregenerate: true });
    cleanups.push(() => sim.stop());
    const database = await migratedDatabase('backfill', 6);
    cleanups.push(() => database.close());
    const run = await startTestBackfill({ db: database.db, simUrl: sim.url, allowPrivateHosts: LOOPBACK_HOSTS });
    cleanups.push(() => run.stop());

    await run.backfill.request({ all: true });
    const figures = await run.settled();
    const truth = sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    const withRepos = [...sim.network.directory.withRepos()].length;
    expect(await repoStates(database.db)).toEqual({ done: withRepos });
    expect(figures.outcomes.get('imported')).toBe(withRepos);
    const records = Object.values(truth.records).reduce((a, b) => a + b, 0);
    expect(figures.recordsImported).toBe(records);
    // the revision of every repo is stored
    const revs = await database.db.run((sql) => sql<{ did: string; rev: string }[]>`select did, rev from backfill_repos`);
    for (const { did, rev } of revs) expect(rev).toBe(sim.network.directory.byDid(did)!.repo.rev!);

    // again: every repo is imported, nothing changes (likes, follows and blocks keep no CID and
    // are written again, idempotently)
    await run.backfill.request({ dids: revs.map((row) => row.did) });
    const again = await run.settled();
    expect(again.outcomes.get('imported')).toBe(2 * withRepos);
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
  }, 120_000);

  test('beside a live firehose that missed the history: commits made during the imports are kept, in order, and counted once', async () => {
    // paced, so imports run while the relay still releases commits of the same repos; the PDS
    // answers getRepo 300 ms late, so every import holds live commits of its repo meanwhile
    const pds = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: async (request) => {
        const url = new URL(request.url);
        if (url.pathname.endsWith('.getRepo')) await Bun.sleep(300);
        const answer = await fetch(`${sim.url}${url.pathname}${url.search}`);
        return new Response(await answer.arrayBuffer(), { status: answer.status, headers: answer.headers });
      },
    });
    cleanups.push(async () => pds.stop(true));
    const sim = await startSimulator({ seed: 42, accounts: 12, commits: 4000, rate: 400, pdsUrl: `http://127.0.0.1:${pds.port}` });
    cleanups.push(() => sim.stop());
    const database = await migratedDatabase('backfill_live', 8);
    cleanups.push(() => database.close());
    await until(() => sim.lastSeq > 800, { timeoutMs: 30_000 });
    const ingester = await startIngester(
      {
        relayUrl: sim.url.replace(/^http/, 'ws'),
        firehoseStart: { kind: 'live' },
        plcUrl: sim.url,
        plcFollowExport: true,
        verifyCommits: true,
        maxConcurrentOps: 40,
        allowPrivateHosts: LOOPBACK_HOSTS,
      },
      database.db,
      silentLogger,
      { resyncIdleMs: 50 },
    );
    cleanups.push(() => ingester.stop());
    const run = await startTestBackfill({ db: database.db, simUrl: sim.url, allowPrivateHosts: LOOPBACK_HOSTS, ingester, concurrency: 4 });
    cleanups.push(() => run.stop());
    await run.backfill.request({ all: true });
    await run.settled();
    await until(() => sim.commitsGenerated === 4000 && ingester.pipeline.committedSeq === sim.lastSeq, { timeoutMs: 60_000 });
    await until(async () => (await repoStates(database.db)).queued === undefined, { timeoutMs: 30_000 });
    const truth = sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    expect(ingester.stats.heldCommits).toBeGreaterThan(0);
    // one import holds a repo at a time: a second (the resync worker meeting the backfill) is refused
    const did = Object.keys(truth.actors)[0]!;
    expect(await ingester.live.hold(did)).toBe(true);
    expect(await ingester.live.hold(did)).toBe(false);
    expect(await ingester.live.release(did, '')).toBe(true);
    expect(await ingester.live.hold(did)).toBe(true);
    expect(await ingester.live.release(did, '')).toBe(true);
  }, 180_000);

  test('a repo found inactive is queued again when its #account event says it is active', async () => {
    const database = await migratedDatabase('backfill_reactivate', 2);
    cleanups.push(() => database.close());
    const [sleeper, other] = ['did:plc:sleeperaaaaaaaaaaaaaaaaa', 'did:plc:otheraaaaaaaaaaaaaaaaaaaa'];
    await database.db.run((sql) => sql`
      insert into backfill_repos (did, state, last_error, not_before) values
        (${sleeper}, 'inactive', 'deactivated', now() + interval '1 hour'), (${other}, 'inactive', 'deactivated', now() + interval '1 hour')`);
    await writeBatch(database.db, new ActorIds(), null, buildBatch([
      { kind: 'account', seq: 1, time: null, did: sleeper, status: null },
      { kind: 'account', seq: 2, time: null, did: other, status: 'takendown' },
    ]));
    const rows = await database.db.run((sql) => sql<{ did: string; state: string; due: boolean }[]>`select did, state, not_before <= now() as due from backfill_repos order by did`);
    expect([...rows]).toEqual([
      { did: other, state: 'inactive', due: false },
      { did: sleeper, state: 'queued', due: true },
    ]);
  });
});
