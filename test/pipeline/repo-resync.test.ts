/**
 * The resync worker against the simulator's PDS (getRepo) and a real PostgreSQL: an index that
 * lost, gained and changed records for some repos is put back exactly at the ground truth, counters
 * included, once those repos are marked; a repo whose DID no longer resolves is dropped; the
 * simulator's tooBig commits and dropped commits (rev gaps) end repaired.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { silentLogger } from '../../src/log.ts';
import { ActorIds } from '../../src/pipeline/actor-ids.ts';
import { buildBatch } from '../../src/pipeline/batch.ts';
import { writeBatch } from '../../src/pipeline/batch-writer.ts';
import { parseRecord } from '../../src/pipeline/collections.ts';
import type { IndexEvent, RecordOp } from '../../src/pipeline/events.ts';
import { startIngester, type Ingester } from '../../src/pipeline/ingester.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

async function setUp(faults: SimulatorOptions['faults'] = {}): Promise<{ sim: Simulator; database: MigratedDatabase; ingester: Ingester }> {
  const sim = await startSimulator({ seed: 31, accounts: 40, commits: 2500, pregenerate: true, faults });
  cleanups.push(() => sim.stop());
  const database = await migratedDatabase('resync', 4);
  cleanups.push(() => database.close());
  const ingester = await startIngester(
    {
      relayUrl: sim.url.replace(/^http/, 'ws'),
      firehoseStart: { kind: 'seq', seq: 0 },
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
  await until(() => ingester.pipeline.committedSeq === sim.groundTruth().lastSeq, { timeoutMs: 90_000 });
  return { sim, database, ingester };
}

const mark = (database: MigratedDatabase, dids: string[]) =>
  database.db.run((sql) => sql`
    insert into repo_resync (actor_id, reason, seq) select id, 'rev-gap', 1 from actors where did = any(${dids}::text[])`);

const waiting = async (database: MigratedDatabase): Promise<number> => {
  const [row] = await database.db.run((sql) => sql`select count(*)::int as n from repo_resync`);
  return row?.n ?? -1;
};

describe('repo resync', () => {
  test('damaged repos are fetched whole and the index ends exactly at the ground truth', async () => {
    const { sim, database, ingester } = await setUp();
    const truth = sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));

    // Damage the index through the writer itself, so its counters stay consistent with it: the
    // busiest repos lose records of every kind, and one gains a post its repo never held.
    const busiest = [...sim.network.directory.withRepos()].sort((a, b) => b.repo.recordCount - a.repo.recordCount).slice(0, 3);
    const damaged = busiest.map((account) => account.did);
    const lost = await database.db.run((sql) => sql<{ did: string; table: string; rkey: string }[]>`
      select a.did, t.table, t.rkey from actors a cross join lateral (
        (select 'posts' as table, rkey from posts where author_id = a.id order by rkey limit 5)
        union all (select 'likes', rkey from likes where author_id = a.id order by rkey limit 5)
        union all (select 'follows', rkey from follows where author_id = a.id order by rkey limit 5)
        union all (select 'profiles', rkey from profiles where author_id = a.id limit 1)) t
      where a.did = any(${damaged}::text[])`);
    expect(lost.length).toBeGreaterThan(10);
    const collectionOf: Record<string, string> = { posts: 'app.bsky.feed.post', likes: 'app.bsky.feed.like', follows: 'app.bsky.graph.follow', profiles: 'app.bsky.actor.profile' };
    const events: IndexEvent[] = damaged.map((did) => ({
      kind: 'commit',
      seq: 1,
      time: null,
      did,
      rev: '2222222222222',
      ops: lost
        .filter((row) => row.did === did)
        .map((row): RecordOp => ({ action: 'delete', collection: collectionOf[row.table]!, table: row.table as RecordOp['table'], rkey: row.rkey, cid: null, row: null })),
    }));
    const bogus = parseRecord('app.bsky.feed.post', '3kzzzzzzzzz22', { $type: 'app.bsky.feed.post', text: 'never in the repo', createdAt: '2026-01-01T00:00:00.000Z' });
    if (!bogus?.ok) throw new Error('the bogus post does not parse');
    const bogusCid = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
    events.push({ kind: 'commit', seq: 2, time: null, did: damaged[0]!, rev: '2222222222223', ops: [{ action: 'create', collection: 'app.bsky.feed.post', table: 'posts', rkey: '3kzzzzzzzzz22', cid: bogusCid, row: bogus.row }] });
    await writeBatch(database.db, new ActorIds(), null, buildBatch(events));
    expect(await readIndexedState(database.db, truth)).not.toEqual(expectedState(truth));

    await mark(database, damaged);
    await until(async () => (await waiting(database)) === 0, { timeoutMs: 30_000 });
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    const figures = ingester.resync.figures;
    expect(Object.fromEntries(figures.outcomes)).toEqual({ resynced: 3 });
    // what was lost, and the bogus post, and no more: unchanged records are not written again
    // (likes, follows and blocks keep no CID and are always rewritten)
    const alwaysWritten = await database.db.run((sql) => sql<{ n: number }[]>`
      select (select count(*) from likes l join actors a on a.id = l.author_id where a.did = any(${damaged}::text[]))
        + (select count(*) from follows f join actors a on a.id = f.author_id where a.did = any(${damaged}::text[]))
        + (select count(*) from blocks b join actors a on a.id = b.author_id where a.did = any(${damaged}::text[])) as n`);
    expect(figures.recordsChanged).toBe(lost.filter((row) => row.table === 'posts' || row.table === 'profiles').length + 1 + Number(alwaysWritten[0]!.n));
    // the cursor did not move
    const [cursor] = await database.db.run((sql) => sql`select seq from firehose_cursor`);
    expect(cursor?.seq).toBe(truth.lastSeq);
  }, 180_000);

  test('a repo whose DID does not resolve is dropped and counted', async () => {
    const { database, ingester } = await setUp();
    const ghost = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
    await database.db.run((sql) => sql`insert into actors (did) values (${ghost})`);
    await mark(database, [ghost]);
    await until(async () => (await waiting(database)) === 0, { timeoutMs: 30_000 });
    expect(ingester.resync.figures.outcomes.get('repo-gone')).toBe(1);

  }, 180_000);

  test('tooBig commits and commits the relay never sent: the repos are resynced and the index ends at the ground truth', async () => {
    const { sim, database, ingester } = await setUp({ tooBig: 0.02, dropCommit: 0.02 });
    const truth = sim.groundTruth();
    expect(sim.stats.faults.tooBig).toBeGreaterThan(0);
    expect(sim.stats.faults.dropCommit).toBeGreaterThan(0);
    await until(async () => (await waiting(database)) === 0 && (ingester.resync.figures.outcomes.get('resynced') ?? 0) > 0, { timeoutMs: 60_000 });
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    expect(ingester.stats.rejectedByReason.get('too-big')).toBe(sim.stats.faults.tooBig);
  }, 180_000);
});
