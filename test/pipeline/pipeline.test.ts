import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from '../../src/db/database.ts';
import { ActorIds } from '../../src/pipeline/actor-ids.ts';
import { parseRecord } from '../../src/pipeline/collections.ts';
import type { EventProcessor, SequencedFrame } from '../../src/pipeline/event-processor.ts';
import type { IndexEvent, RecordOp } from '../../src/pipeline/events.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { buildBatch } from '../../src/pipeline/batch.ts';
import { writeBatch } from '../../src/pipeline/batch-writer.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { until } from '../support/until.ts';

let database: MigratedDatabase;
beforeAll(async () => {
  database = await migratedDatabase('pipeline');
});
afterAll(() => database.close());

const NOW = '2026-11-27T10:00:00.000Z';
const CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
const did = (n: number) => `did:plc:pipeline${String(n).padStart(16, '0')}`;

/** A processor that turns frame seq N into a follow by account N (or the event `special` gives). */
function processorFor(special: Map<number, IndexEvent> = new Map()): EventProcessor {
  const follow = parseRecord('app.bsky.graph.follow', '3kaaaaaaaaa22', { $type: 'app.bsky.graph.follow', subject: did(0), createdAt: NOW });
  if (!follow?.ok) throw new Error('fixture');
  return {
    prefetch: () => {},
    process: async (frame: SequencedFrame): Promise<IndexEvent> =>
      special.get(frame.seq) ?? {
        kind: 'commit',
        seq: frame.seq,
        time: NOW,
        did: did(frame.seq),
        rev: '3kaaaaaaaaa22',
        ops: [{ action: 'create', collection: 'app.bsky.graph.follow', table: 'follows', rkey: '3kaaaaaaaaa22', cid: CID, row: follow.row }],
      },
  } as unknown as EventProcessor;
}

const frame = (seq: number): SequencedFrame => ({ kind: 'identity', seq, did: did(seq), time: NOW });

function pipeline(relayUrl: string, processor: EventProcessor, lingerMs?: number, db = database.db) {
  const stats = new IngestStats();
  const instance = new Pipeline({
    db,
    actorIds: new ActorIds(),
    relayUrl,
    processor,
    stats,
    log: process.env.DEBUG_PIPELINE ? createLogger('debug') : silentLogger,
    maxConcurrentOps: 80,
    committedSeq: null,
    lingerMs,
  });
  const controller = new AbortController();
  const done = instance.run(controller.signal);
  return { instance, stats, stop: async () => (controller.abort(), await done) };
}

/** Offers frames `first`..`last` in bursts of 50, 2 ms apart: a steady firehose for the writer. */
async function offerRange(instance: Pipeline, first: number, last: number): Promise<void> {
  for (let seq = first; seq <= last; ) {
    for (let burst = 0; burst < 50 && seq <= last; burst++) instance.offer(frame(seq++));
    await Bun.sleep(2);
  }
}


describe('Pipeline', () => {
  test('an event the database refuses is found by halving the batch, counted and skipped; the rest is written', async () => {
    // a date PostgreSQL cannot store: only this event's follow fails (22008 datetime overflow)
    const follow = parseRecord('app.bsky.graph.follow', '3kaaaaaaaaa22', { $type: 'app.bsky.graph.follow', subject: did(0), createdAt: NOW });
    if (!follow?.ok) throw new Error('fixture');
    const poison: IndexEvent = {
      kind: 'commit',
      seq: 37,
      time: NOW,
      did: did(37),
      rev: '3kaaaaaaaaa22',
      ops: [{ action: 'create', collection: 'app.bsky.graph.follow', table: 'follows', rkey: '3kaaaaaaaaa22', cid: CID, row: { ...follow.row, createdAt: '294277-01-01T00:00:00Z' } }],
    };
    // statements of later tables, sent after the failing one on the same connection, fail too
    // (the transaction is aborted): the bisection must still see the real error
    const like = parseRecord('app.bsky.feed.like', '3kaaaaaaaaa22', {
      $type: 'app.bsky.feed.like',
      subject: { uri: `at://${did(1)}/app.bsky.feed.post/3kaaaaaaaaa22`, cid: CID },
      createdAt: NOW,
    });
    if (!like?.ok) throw new Error('fixture');
    const liking: IndexEvent = {
      kind: 'commit',
      seq: 60,
      time: NOW,
      did: did(60),
      rev: '3kaaaaaaaaa22',
      ops: [{ action: 'create', collection: 'app.bsky.feed.like', table: 'likes', rkey: '3kaaaaaaaaa22', cid: CID, row: like.row }],
    };
    const deactivated: IndexEvent = { kind: 'account', seq: 61, time: NOW, did: did(61), status: 'deactivated' };
    const events = new Map<number, IndexEvent>([[37, poison], [60, liking], [61, deactivated]]);
    // a linger longer than the offers take: the first batch holds all 100 events
    const { instance, stats, stop } = pipeline('ws://poison.test', processorFor(events), 200);
    for (let seq = 1; seq <= 100; seq++) expect(instance.offer(frame(seq))).toBe('accepted');
    await until(() => instance.committedSeq === 100, { timeoutMs: 30_000, intervalMs: 5 });
    await stop();
    expect(stats.rejectedByReason.get('db-rejected')).toBe(1);
    const [row] = await database.db.run((sql) => sql`select count(*)::int as n from follows f join actors a on a.id = f.author_id where a.did like 'did:plc:pipeline%'`);
    expect(row?.n).toBe(97);
    const [likes] = await database.db.run((sql) => sql`select count(*)::int as n from likes l join actors a on a.id = l.author_id where a.did = ${did(60)}`);
    expect(likes?.n).toBe(1);
    const [cursor] = await database.db.run((sql) => sql`select seq from firehose_cursor where relay_url = 'ws://poison.test'`);
    expect(cursor?.seq).toBe(100);
  });

  test('under light traffic small batches wait to grow instead of costing a transaction each', async () => {
    const { instance, stats, stop } = pipeline('ws://linger.test', processorFor(), 200);
    for (let seq = 1; seq <= 40; seq++) {
      instance.offer(frame(seq));
      await Bun.sleep(2);
    }
    await until(() => instance.committedSeq === 40, { timeoutMs: 30_000, intervalMs: 5 });
    await stop();
    expect(stats.batchesCommitted).toBeLessThanOrEqual(5);
  });

  test("the writer's connection killed inside a transaction: the batch is written again, nothing is lost", async () => {
    const { instance, stats, stop } = pipeline('ws://killed.test', processorFor(), 0);
    const total = 3_000;
    const offering = offerRange(instance, 1, total);
    // twice: terminate this database's backend that is inside a transaction (only the writer's
    // is; this query's own is left out), as an administrator or the OOM killer might
    for (let kill = 0; kill < 2; kill++) {
      await until(
        async () => {
          const killed = await database.db.run(
            (sql) => sql`
              select pg_terminate_backend(pid) as done from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null
                and application_name = 'aqueduct'`,
          );
          return killed.some((row) => row.done === true);
        },
        { timeoutMs: 30_000, intervalMs: 1 },
      );
      await until(() => stats.batchWriteErrors > kill, { timeoutMs: 30_000, intervalMs: 5 });
    }
    await offering;
    await until(() => instance.committedSeq === total, { timeoutMs: 60_000, intervalMs: 10 });
    await stop();
    const [follows] = await database.db.run(
      (sql) => sql`select count(*)::int as n from follows f join actors a on a.id = f.author_id where a.did like 'did:plc:pipeline%'`,
    );
    const [cursor] = await database.db.run((sql) => sql`select seq from firehose_cursor where relay_url = 'ws://killed.test'`);
    expect({ follows: follows?.n, cursor: cursor?.seq, rejected: stats.rejectedByReason.size }).toEqual({ follows: total, cursor: total, rejected: 0 });
  }, 120_000);

  test('the database goes away for a while and comes back: the writer waits, retries and loses nothing', async () => {
    const proxy = startTcpProxy(database.url);
    const db = new Database({ url: proxy.url, poolSize: 4, connectTimeoutSeconds: 2 });
    const { instance, stats, stop } = pipeline('ws://outage.test', processorFor(), 0, db);
    // seqs (and so authors) of their own: did(100_001) .. did(103_000)
    const first = 100_001;
    const last = 103_000;
    try {
      const offering = offerRange(instance, first, last);
      await until(() => (instance.committedSeq ?? 0) >= first + 500, { timeoutMs: 30_000, intervalMs: 2 });
      proxy.down();
      await Bun.sleep(1_500);
      const committedWhileDown = instance.committedSeq;
      proxy.up();
      await offering;
      await until(() => instance.committedSeq === last, { timeoutMs: 60_000, intervalMs: 10 });
      expect(committedWhileDown).toBeLessThan(last);
      expect(stats.batchWriteErrors).toBeGreaterThan(0);
    } finally {
      await stop();
      await db.close(1);
      proxy.stop();
    }
    const [follows] = await database.db.run(
      (sql) => sql`
        select count(*)::int as n from follows f join actors a on a.id = f.author_id
        where a.did between ${did(first)} and ${did(last)}`,
    );
    const [cursor] = await database.db.run((sql) => sql`select seq from firehose_cursor where relay_url = 'ws://outage.test'`);
    expect({ follows: follows?.n, cursor: cursor?.seq, rejected: stats.rejectedByReason.size }).toEqual({
      follows: last - first + 1,
      cursor: last,
      rejected: 0,
    });
  }, 120_000);

  test('a replayed or duplicated seq is refused, and a full queue says so', async () => {
    const { instance, stop } = pipeline('ws://dup.test', processorFor(), 0);
    expect(instance.offer(frame(5))).toBe('accepted');
    expect(instance.offer(frame(5))).toBe('duplicate');
    expect(instance.offer(frame(3))).toBe('duplicate');
    await until(() => instance.committedSeq === 5, { timeoutMs: 30_000, intervalMs: 5 });
    await stop();
    const small = new Pipeline({
      db: database.db, actorIds: new ActorIds(), relayUrl: 'ws://full.test', processor: processorFor(), stats: new IngestStats(),
      log: silentLogger, maxConcurrentOps: 1, committedSeq: null, queueLimit: 2,
    });
    expect([small.offer(frame(1)), small.offer(frame(2)), small.offer(frame(3))]).toEqual(['accepted', 'accepted', 'full']);
  });

  test('sequence numbers the relay skipped are counted, not refused', () => {
    const stats = new IngestStats();
    const gappy = new Pipeline({
      db: database.db, actorIds: new ActorIds(), relayUrl: 'ws://gaps.test', processor: processorFor(), stats,
      log: silentLogger, maxConcurrentOps: 1, committedSeq: null, queueLimit: 100,
    });
    expect([1, 2, 5, 6, 10].map((seq) => gappy.offer(frame(seq)))).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
    expect(stats.seqGaps).toBe(2);
  });

  test('a held repo: its commits are set aside, those above the imported revision applied after it in order, the rest dropped', async () => {
    const author = 'did:plc:heldrepoaaaaaaaaaaaaaaaa';
    const followOf = (subject: number) => {
      const parsed = parseRecord('app.bsky.graph.follow', '3kaaaaaaaaa22', { $type: 'app.bsky.graph.follow', subject: did(subject), createdAt: NOW });
      if (!parsed?.ok) throw new Error('fixture');
      return parsed.row;
    };
    const commit = (seq: number, rev: string, ops: readonly RecordOp[]): IndexEvent => ({ kind: 'commit', seq, time: NOW, did: author, rev, ops });
    const create = (rkey: string) => [{ action: 'create' as const, collection: 'app.bsky.graph.follow', table: 'follows' as const, rkey, cid: CID, row: followOf(1) }];
    const remove = (rkey: string) => [{ action: 'delete' as const, collection: 'app.bsky.graph.follow', table: 'follows' as const, rkey, cid: null, row: null }];
    const special = new Map<number, IndexEvent>([
      [1, commit(1, '3kaaaaaaaaa23', create('3kaaaaaaaaaaa'))],
      [2, commit(2, '3kaaaaaaaaa25', remove('3kaaaaaaaaaaa'))],
      [3, commit(3, '3kaaaaaaaaa27', create('3kaaaaaaaaabb'))],
      // processed after the release, at or below the imported revision: a replay, dropped
      [4, commit(4, '3kaaaaaaaaa24', create('3kaaaaaaaaacc'))],
    ]);
    const { instance, stats, stop } = pipeline('wss://held.example', processorFor(special), 0);
    const follows = async () =>
      (await database.db.run((sql) => sql<{ rkey: string }[]>`select f.rkey from follows f join actors a on a.id = f.author_id where a.did = ${author} order by f.rkey`)).map((row) => row.rkey);
    try {
      await instance.hold(author);
      for (const seq of [1, 2, 3]) instance.offer(frame(seq));
      await until(() => instance.committedSeq === 3);
      expect(await follows()).toEqual([]); // set aside, though the cursor moved past them
      expect(stats.heldCommits).toBe(3);

      // the import: the repo at revision ...24 holds the first follow
      await writeBatch(database.db, new ActorIds(), null, buildBatch([commit(0, '3kaaaaaaaaa24', create('3kaaaaaaaaaaa'))]));
      expect(await follows()).toEqual(['3kaaaaaaaaaaa']);

      expect(await instance.release(author, '3kaaaaaaaaa24')).toBe(true);
      // seq 1 (..23) was in the import; seq 2 deleted the follow after it, seq 3 made another
      expect(await follows()).toEqual(['3kaaaaaaaaabb']);
      expect(stats.replayedCommits).toBe(2);
      instance.offer(frame(4));
      await until(() => instance.committedSeq === 4);
      expect(await follows()).toEqual(['3kaaaaaaaaabb']);
      expect(stats.rejectedByReason.get('stale-rev')).toBe(2);
    } finally {
      await stop();
    }
  });

  test('a held repo that writes more than can be kept: nothing is applied and the release says to fetch again', async () => {
    const author = 'did:plc:heldrepobbbbbbbbbbbbbbbb';
    const special = new Map<number, IndexEvent>();
    for (let seq = 1; seq <= 2_100; seq++) special.set(seq, { kind: 'commit', seq, time: NOW, did: author, rev: `3kaaaaaa${String(seq).padStart(5, '2').replace(/[01089]/g, '2')}`, ops: [] });
    const { instance, stats, stop } = pipeline('wss://overflow.example', processorFor(special), 0);
    try {
      await instance.hold(author);
      for (let seq = 1; seq <= 2_100; seq++) instance.offer(frame(seq));
      await until(() => instance.committedSeq === 2_100);
      expect(stats.heldCommits).toBe(2_100);
      expect(await instance.release(author, '')).toBe(false);
      expect(stats.replayedCommits).toBe(0);
    } finally {
      await stop();
    }
  });
});
