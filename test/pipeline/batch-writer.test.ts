import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ActorIds } from '../../src/pipeline/actor-ids.ts';
import { buildBatch } from '../../src/pipeline/batch.ts';
import { CursorRegressed, writeBatch } from '../../src/pipeline/batch-writer.ts';
import { parseRecord, tableOf } from '../../src/pipeline/collections.ts';
import type { IndexEvent, RecordOp } from '../../src/pipeline/events.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';

let database: MigratedDatabase;
beforeAll(async () => {
  database = await migratedDatabase('writer');
});
afterAll(() => database.close());

const RELAY = 'ws://relay.test';
const ALICE = 'did:plc:alice000000000000000000';
const BOB = 'did:plc:bob00000000000000000000';
const CAROL = 'did:plc:carol0000000000000000000';
const CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
const NOW = '2026-11-27T10:00:00.000Z';

let seq = 0;
function op(action: RecordOp['action'], collection: string, rkey: string, record?: Record<string, unknown>): RecordOp {
  const table = tableOf(collection);
  if (!table) throw new Error(collection);
  if (!record) return { action, collection, table, rkey, cid: null, row: null };
  const parsed = parseRecord(collection, rkey, { $type: collection, ...record });
  if (!parsed?.ok) throw new Error(`invalid test record: ${JSON.stringify(parsed)}`);
  return { action, collection, table, rkey, cid: CID, row: parsed.row };
}
const commit = (did: string, ...ops: RecordOp[]): IndexEvent => ({ kind: 'commit', seq: ++seq, time: NOW, did, rev: String(seq), ops });
const post = (text: string, extra: Record<string, unknown> = {}) => ({ text, createdAt: NOW, ...extra });
const ref = (did: string, rkey: string) => ({ uri: `at://${did}/app.bsky.feed.post/${rkey}`, cid: CID });
const like = (did: string, rkey: string) => ({ subject: ref(did, rkey), createdAt: NOW });
const follow = (did: string) => ({ subject: did, createdAt: NOW });

const actorIds = new ActorIds();
// the pipeline's part: each batch says where the previous committed one left the cursor
let committedSeq: number | null = null;
const write = async (...events: IndexEvent[]) => {
  const result = await writeBatch(database.db, actorIds, { relayUrl: RELAY, previousSeq: committedSeq }, buildBatch(events));
  committedSeq = events.at(-1)!.seq;
  return result;
};

async function counts() {
  return database.db.run(async (sql) => {
    const posts = await sql`select a.did, c.rkey, c.like_count, c.repost_count, c.reply_count, c.quote_count
      from post_counts c join actors a on a.id = c.actor_id order by a.did, c.rkey`;
    const actors = await sql`select a.did, c.followers_count, c.follows_count, c.posts_count
      from actor_counts c join actors a on a.id = c.actor_id order by a.did`;
    const records = await sql`select collection, count from record_counts where count <> 0 order by collection`;
    const cursor = await sql`select seq from firehose_cursor where relay_url = ${RELAY}`;
    return { posts: [...posts], actors: [...actors], records: Object.fromEntries(records.map((r) => [r.collection, r.count])), cursor: cursor[0]?.seq };
  });
}

describe('writeBatch', () => {
  test('creates authors and referenced actors in bulk, queues them for identity, and counts', async () => {
    const result = await write(
      commit(ALICE, op('create', 'app.bsky.feed.post', '3kaaaaaaaaa22', post('hello'))),
      commit(BOB, op('create', 'app.bsky.feed.like', '3kbbbbbbbbb22', like(ALICE, '3kaaaaaaaaa22')), op('create', 'app.bsky.graph.follow', '3kbbbbbbbbc22', follow(ALICE))),
      commit(CAROL, op('create', 'app.bsky.feed.post', '3kccccccccc22', post('re', { reply: { root: ref(ALICE, '3kaaaaaaaaa22'), parent: ref(ALICE, '3kaaaaaaaaa22') } }))),
    );
    expect(result).toEqual({ newActors: 3, rewritten: false });
    const state = await counts();
    expect(state.posts).toEqual([{ did: ALICE, rkey: '3kaaaaaaaaa22', likeCount: 1, repostCount: 0, replyCount: 1, quoteCount: 0 }]);
    expect(state.actors).toEqual([
      { did: ALICE, followersCount: 1, followsCount: 0, postsCount: 1 },
      { did: BOB, followersCount: 0, followsCount: 1, postsCount: 0 },
      { did: CAROL, followersCount: 0, followsCount: 0, postsCount: 1 },
    ]);
    expect(state.records).toEqual({ actors: 3, 'app.bsky.feed.like': 1, 'app.bsky.feed.post': 2, 'app.bsky.graph.follow': 1 });
    expect(state.cursor).toBe(seq);
    const queued = await database.db.run((sql) => sql`select reason, count(*)::int as n from identity_queue group by reason`);
    expect([...queued]).toEqual([{ reason: 'new', n: 3 }]);
  });

  test('replaying the same events changes nothing (the batch meets its keys and is written again, absorbing them)', async () => {
    const before = await counts();
    seq -= 3;
    const result = await write(
      commit(ALICE, op('create', 'app.bsky.feed.post', '3kaaaaaaaaa22', post('hello'))),
      commit(BOB, op('create', 'app.bsky.feed.like', '3kbbbbbbbbb22', like(ALICE, '3kaaaaaaaaa22')), op('create', 'app.bsky.graph.follow', '3kbbbbbbbbc22', follow(ALICE))),
      commit(CAROL, op('create', 'app.bsky.feed.post', '3kccccccccc22', post('re', { reply: { root: ref(ALICE, '3kaaaaaaaaa22'), parent: ref(ALICE, '3kaaaaaaaaa22') } }))),
    );
    expect(result.rewritten).toBe(true);
    expect(await counts()).toEqual(before);
  });

  test('create then delete in one batch leaves nothing; delete then re-create leaves the new record', async () => {
    await write(
      commit(CAROL, op('create', 'app.bsky.feed.like', '3kccccccccd22', like(ALICE, '3kaaaaaaaaa22'))),
      commit(CAROL, op('delete', 'app.bsky.feed.like', '3kccccccccd22')),
      commit(BOB, op('delete', 'app.bsky.feed.like', '3kbbbbbbbbb22')),
      commit(BOB, op('create', 'app.bsky.feed.like', '3kbbbbbbbbb22', like(CAROL, '3kccccccccc22'))),
    );
    const state = await counts();
    expect(state.posts).toEqual([
      { did: ALICE, rkey: '3kaaaaaaaaa22', likeCount: 0, repostCount: 0, replyCount: 1, quoteCount: 0 },
      { did: CAROL, rkey: '3kccccccccc22', likeCount: 1, repostCount: 0, replyCount: 0, quoteCount: 0 },
    ]);
    expect(state.records['app.bsky.feed.like']).toBe(1);
  });

  test('an update replaces the record and moves its counts', async () => {
    await write(commit(BOB, op('update', 'app.bsky.feed.like', '3kbbbbbbbbb22', like(ALICE, '3kaaaaaaaaa22'))));
    const state = await counts();
    expect(state.posts.map((row) => [row.rkey, row.likeCount])).toEqual([['3kaaaaaaaaa22', 1], ['3kccccccccc22', 0]]);
  });

  test('profiles and other documents are stored as JSON with their references', async () => {
    await write(
      commit(ALICE, op('create', 'app.bsky.actor.profile', 'self', { displayName: 'Alice <script>' })),
      commit(ALICE, op('create', 'app.bsky.graph.list', '3klllllllll22', { name: 'friends', purpose: 'app.bsky.graph.defs#curatelist', createdAt: NOW })),
      commit(ALICE, op('create', 'app.bsky.graph.listitem', '3kllllllllm22', { subject: BOB, list: `at://${ALICE}/app.bsky.graph.list/3klllllllll22`, createdAt: NOW })),
    );
    const [profile] = await database.db.run((sql) => sql`select record->>'displayName' as name from profiles`);
    expect(profile?.name).toBe('Alice <script>');
    const [item] = await database.db.run(
      (sql) => sql`select l.ref_rkey, s.did as subject from list_items l join actors s on s.id = l.subject_actor_id`,
    );
    expect(item).toEqual({ refRkey: '3klllllllll22', subject: BOB });
  });

  test('repos found to need a resync are written in the batch, keeping the first reason and seq', async () => {
    const first = ++seq;
    await write(
      { kind: 'sync', seq: first, time: NOW, did: CAROL, resync: { did: CAROL, reason: 'sync-event' } },
      { kind: 'skipped', seq: ++seq, time: NOW, resync: { did: CAROL, reason: 'too-big' } },
    );
    await write({ kind: 'skipped', seq: ++seq, time: NOW, resync: { did: CAROL, reason: 'bad-proof' } });
    const rows = await database.db.run((sql) => sql`select a.did, r.reason, r.seq from repo_resync r join actors a on a.id = r.actor_id`);
    expect(rows.map((row) => ({ did: row.did, reason: row.reason, seq: Number(row.seq) }))).toEqual([{ did: CAROL, reason: 'sync-event', seq: first }]);
    await database.db.run((sql) => sql`delete from repo_resync`);
  });

  test('account status is applied, and a deleted account loses its records and what they counted', async () => {
    await write({ kind: 'account', seq: ++seq, time: NOW, did: CAROL, status: 'deactivated' });
    const [status] = await database.db.run((sql) => sql`select status from actors where did = ${CAROL}`);
    expect(status?.status).toBe('deactivated');

    await database.db.run((sql) => sql`update actors set handle = 'bob.test' where did = ${BOB}`);
    await write({ kind: 'account', seq: ++seq, time: NOW, did: BOB, status: 'deleted' });
    // a deleted account's handle is free for another account: it no longer names this one
    const [bob] = await database.db.run((sql) => sql`select status, handle from actors where did = ${BOB}`);
    expect(bob).toEqual({ status: 'deleted', handle: null });
    const state = await counts();
    expect(state.posts.find((row) => row.rkey === '3kaaaaaaaaa22')?.likeCount).toBe(0);
    expect(state.actors.find((row) => row.did === ALICE)?.followersCount).toBe(0);
    expect(state.records['app.bsky.graph.follow']).toBeUndefined();
  });

  test('a cursor the database lost is noticed at the next batch, not carried over; a batch committed twice is accepted', async () => {
    const did = 'did:plc:dave0000000000000000000';
    await write(commit(did, op('create', 'app.bsky.feed.post', '3kddddddddd22', post('one'))));
    const again = commit(did, op('create', 'app.bsky.feed.post', '3kdddddddde22', post('two')));
    await write(again);
    // the same batch again, as after a commit whose acknowledgement was lost with the connection
    committedSeq = again.seq - 1;
    await write(again);
    // the database forgets the last batch's cursor (a crash with synchronous_commit=off)
    await database.db.run((sql) => sql`update firehose_cursor set seq = seq - 1 where relay_url = ${RELAY}`);
    const before = await counts();
    await expect(write(commit(did, op('create', 'app.bsky.feed.post', '3kddddddddf22', post('three'))))).rejects.toBeInstanceOf(CursorRegressed);
    expect(await counts()).toEqual(before); // nothing of the refused batch stayed
  });
});
