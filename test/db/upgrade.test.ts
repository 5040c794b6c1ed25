/**
 * Upgrades: a database created by an earlier Aqueduct migrates forward with nothing lost.
 *
 * `fixtures/schema-00002.sql` is a pg_dump of a database made by the build that had only
 * migrations 00001 and 00002, filled by that build's own simulator and ingester (its header says
 * how). Each case loads it into a fresh database, runs the current migrations over it and checks
 * that every row is still there, the aggregates still agree with the rows they count, and the
 * current read API serves the upgraded data.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { AppBskyActorGetProfile, AppBskyFeedGetAuthorFeed, AppBskyFeedGetPosts } from '@atcute/bluesky';
import { connectPostgres, Database } from '../../src/db/database.ts';
import { loadMigrations, migrate, pendingMigrations, type Migration } from '../../src/db/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/until.ts';
import { expectValid, get, query, xrpcApp } from '../xrpc/fixture.ts';

/** ADVISORY_LOCK_KEY in src/db/migrator.ts (not exported). */
const MIGRATOR_LOCK_KEY = 7_310_422_001;
const FIXTURE = join(import.meta.dir, 'fixtures/schema-00002.sql');
const SQL_DIR = join(import.meta.dir, '../../sql');

/** What record_counts counts, per sql/00002_index.sql (and src/pipeline/collections.ts). */
const COUNTED_TABLES: Readonly<Record<string, string>> = {
  actors: 'actors',
  'app.bsky.actor.profile': 'profiles',
  'app.bsky.feed.generator': 'feed_generators',
  'app.bsky.feed.like': 'likes',
  'app.bsky.feed.post': 'posts',
  'app.bsky.feed.postgate': 'postgates',
  'app.bsky.feed.repost': 'reposts',
  'app.bsky.feed.threadgate': 'threadgates',
  'app.bsky.graph.block': 'blocks',
  'app.bsky.graph.follow': 'follows',
  'app.bsky.graph.list': 'lists',
  'app.bsky.graph.listblock': 'list_blocks',
  'app.bsky.graph.listitem': 'list_items',
  'app.bsky.graph.starterpack': 'starter_packs',
  'app.bsky.labeler.service': 'labelers',
};

const opened: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of opened.reverse()) await close();
  opened.length = 0;
});

let fixtureText: string | undefined;
async function fixture(): Promise<string> {
  fixtureText ??= await Bun.file(FIXTURE).text();
  return fixtureText;
}

/** The rows the dump inserts, per table (pg_dump --inserts writes one INSERT per row). */
async function dumpedRows(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const match of (await fixture()).matchAll(/^INSERT INTO public\.([a-z_]+) VALUES /gm)) {
    const table = match[1]!;
    counts[table] = (counts[table] ?? 0) + 1;
  }
  return counts;
}

/** A fresh test database holding the dump, loaded as plain SQL on a connection of its own. */
async function restoredDump(): Promise<TestDatabase> {
  const test = await createTestDatabase('upgrade');
  opened.push(() => test.drop());
  // its own connection: pg_dump empties search_path for the session it runs in
  const sql = connectPostgres(test.url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(await fixture());
  } finally {
    await sql.end({ timeout: 5 });
  }
  return test;
}

function open(url: string, poolSize = 4): Database {
  const db = new Database({ url, poolSize });
  opened.push(() => db.close());
  return db;
}

async function tableCounts(db: Database): Promise<Record<string, number>> {
  const tables = await db.run((sql) => sql`select tablename from pg_tables where schemaname = 'public' order by tablename`);
  const counts: Record<string, number> = {};
  for (const { tablename } of tables) {
    const [row] = await db.run((sql) => sql`select count(*)::int as n from ${sql(tablename as string)}`);
    counts[tablename as string] = row!.n as number;
  }
  return counts;
}

async function appliedIds(db: Database): Promise<number[]> {
  const rows = await db.run((sql) => sql`select id from aqueduct_migrations order by id`);
  return rows.map((row) => Number(row.id));
}

const names = (migrations: readonly Migration[]) => migrations.map((m) => `${String(m.id).padStart(5, '0')}_${m.name}`);

/** Rows where a kept aggregate differs from count(*) over the rows it counts (a missing counter row is 0). */
async function aggregateMismatches(db: Database) {
  const actors = await db.run(
    (sql) => sql`
      with truth as (
        select a.id as actor_id,
          (select count(*) from follows f where f.subject_actor_id = a.id)::int as followers,
          (select count(*) from follows f where f.author_id = a.id)::int as follows,
          (select count(*) from posts p where p.author_id = a.id)::int as posts
        from actors a
      )
      select coalesce(t.actor_id, c.actor_id) as actor_id, t.followers, c.followers_count, t.follows, c.follows_count, t.posts, c.posts_count
      from truth t full join actor_counts c on c.actor_id = t.actor_id
      where coalesce(t.followers, 0) <> coalesce(c.followers_count, 0)
         or coalesce(t.follows, 0) <> coalesce(c.follows_count, 0)
         or coalesce(t.posts, 0) <> coalesce(c.posts_count, 0)`,
  );
  const posts = await db.run(
    (sql) => sql`
      with subjects as (
        select subject_actor_id as actor_id, subject_rkey as rkey, 1 as likes, 0 as reposts, 0 as replies, 0 as quotes from likes where subject_collection = 1
        union all select subject_actor_id, subject_rkey, 0, 1, 0, 0 from reposts
        union all select reply_parent_actor_id, reply_parent_rkey, 0, 0, 1, 0 from posts where reply_parent_actor_id is not null and reply_parent_rkey is not null
        union all select quote_actor_id, quote_rkey, 0, 0, 0, 1 from posts where quote_actor_id is not null and quote_rkey is not null
      ),
      truth as (
        select actor_id, rkey, sum(likes)::int as likes, sum(reposts)::int as reposts, sum(replies)::int as replies, sum(quotes)::int as quotes
        from subjects group by actor_id, rkey
      )
      select coalesce(t.actor_id, c.actor_id) as actor_id, coalesce(t.rkey, c.rkey) as rkey,
        t.likes, c.like_count, t.reposts, c.repost_count, t.replies, c.reply_count, t.quotes, c.quote_count
      from truth t full join post_counts c on c.actor_id = t.actor_id and c.rkey = t.rkey
      where coalesce(t.likes, 0) <> coalesce(c.like_count, 0)
         or coalesce(t.reposts, 0) <> coalesce(c.repost_count, 0)
         or coalesce(t.replies, 0) <> coalesce(c.reply_count, 0)
         or coalesce(t.quotes, 0) <> coalesce(c.quote_count, 0)`,
  );
  const stored = new Map((await db.run((sql) => sql`select collection, count from record_counts`)).map((row) => [row.collection as string, Number(row.count)]));
  const records: Array<{ collection: string; stored: number | null; rows: number }> = [];
  for (const [collection, table] of Object.entries(COUNTED_TABLES)) {
    const [row] = await db.run((sql) => sql`select count(*)::int as n from ${sql(table)}`);
    const rows = row!.n as number;
    if ((stored.get(collection) ?? 0) !== rows) records.push({ collection, stored: stored.get(collection) ?? null, rows });
  }
  for (const collection of stored.keys()) {
    if (!(collection in COUNTED_TABLES)) records.push({ collection, stored: stored.get(collection)!, rows: -1 });
  }
  return { actors: [...actors], posts: [...posts], records };
}

describe('upgrade from a database made with migrations 00001-00002 only', () => {
  test('the dump loads as it was made: migrations 1 and 2 applied, every dumped row present, aggregates exact', async () => {
    const test = await restoredDump();
    const db = open(test.url);
    expect(await appliedIds(db)).toEqual([1, 2]);
    const dumped = await dumpedRows();
    const counts = await tableCounts(db);
    for (const [table, rows] of Object.entries(dumped)) expect({ table, rows: counts[table] }).toEqual({ table, rows });
    // enough of everything that the checks below mean something
    expect(dumped.actors).toBe(30);
    expect(dumped.posts).toBeGreaterThan(50);
    expect(dumped.likes).toBeGreaterThan(100);
    expect(dumped.follows).toBeGreaterThan(20);
    expect(dumped.reposts).toBeGreaterThan(10);
    expect(await aggregateMismatches(db)).toEqual({ actors: [], posts: [], records: [] });
  });

  test('the current migrations apply 00003.. over it; no row lost; the aggregates agree; the read API serves it', async () => {
    const test = await restoredDump();
    const db = open(test.url);
    const migrations = await loadMigrations(SQL_DIR);
    expect(migrations.length).toBeGreaterThan(2);
    const before = await tableCounts(db);
    expect(Object.keys(before).length).toBeGreaterThan(15);

    expect(await pendingMigrations(db, migrations)).toEqual(names(migrations.slice(2)));
    expect(await migrate(db, migrations)).toEqual(names(migrations.slice(2)));
    expect(await appliedIds(db)).toEqual(migrations.map((m) => m.id));
    expect(await pendingMigrations(db, migrations)).toEqual([]);
    expect(await migrate(db, migrations)).toEqual([]);

    // every table of the dump is still there with the same number of rows
    const after = await tableCounts(db);
    const { aqueduct_migrations: migrationsBefore, ...dataBefore } = before;
    const kept = Object.fromEntries(Object.keys(dataBefore).map((table) => [table, after[table]]));
    expect(kept).toEqual(dataBefore);
    expect(migrationsBefore).toBe(2);
    expect(after.aqueduct_migrations).toBe(migrations.length);
    // the cursor survives, so the upgraded build resumes where the old one stopped
    const cursor = await db.run((sql) => sql`select relay_url, seq from firehose_cursor`);
    expect(cursor.map((row) => [row.relayUrl, Number(row.seq)])).toEqual([['ws://127.0.0.1:24711', 406]]);
    expect(await aggregateMismatches(db)).toEqual({ actors: [], posts: [], records: [] });

    const app = xrpcApp(db, 'http://127.0.0.1:9', {
      fetch: async () => {
        throw new Error('no network in this test');
      },
    });

    // getProfile for every active actor: counts are the rows'
    const actors = await db.run(
      (sql) => sql`
        select a.did,
          (select count(*) from posts p where p.author_id = a.id)::int as posts,
          (select count(*) from follows f where f.author_id = a.id)::int as follows,
          (select count(*) from follows f where f.subject_actor_id = a.id)::int as followers
        from actors a where a.status is null order by a.did`,
    );
    expect(actors.length).toBeGreaterThan(20);
    for (const actor of actors) {
      const { status, body } = await get(app, query('app.bsky.actor.getProfile', { actor: actor.did }));
      expect({ did: actor.did, status }).toEqual({ did: actor.did, status: 200 });
      expectValid(AppBskyActorGetProfile.mainSchema, body);
      expect({ did: body.did, posts: body.postsCount, follows: body.followsCount, followers: body.followersCount }).toEqual({
        did: actor.did,
        posts: actor.posts,
        follows: actor.follows,
        followers: actor.followers,
      });
      // the old build never ran the identity worker: no verified handle yet
      expect(body.handle).toBe('handle.invalid');
    }

    // getAuthorFeed of the most prolific author: every post and repost (of an existing post), newest first
    const [top] = await db.run(
      (sql) => sql`select a.id, a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.posts_count desc, a.did limit 1`,
    );
    const expected = await db.run(
      (sql) => sql`
        select uri from (
          select 'at://' || ${top!.did} || '/app.bsky.feed.post/' || rkey as uri, least(created_at, indexed_at) as t, rkey from posts where author_id = ${top!.id}
          union all
          select 'at://' || ${top!.did} || '/app.bsky.feed.repost/' || r.rkey, least(r.created_at, r.indexed_at), r.rkey from reposts r
          where r.author_id = ${top!.id} and exists (select 1 from posts p join actors s on s.id = p.author_id and s.status is null
            where p.author_id = r.subject_actor_id and p.rkey = r.subject_rkey)
        ) x order by t desc, rkey desc`,
    );
    expect(expected.length).toBeGreaterThan(5);
    const seen: string[] = [];
    let pageCursor: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await get(app, query('app.bsky.feed.getAuthorFeed', { actor: top!.did, limit: 4, cursor: pageCursor }));
      expect(status).toBe(200);
      expectValid(AppBskyFeedGetAuthorFeed.mainSchema, body);
      for (const item of body.feed as Array<Record<string, any>>) seen.push(item.reason ? (item.reason.uri as string) : (item.post.uri as string));
      pageCursor = body.cursor;
      pages++;
    } while (pageCursor && pages < 50);
    expect(seen).toEqual(expected.map((row) => row.uri as string));

    // getPosts: the per-post counters of the most liked posts
    const liked = await db.run(
      (sql) => sql`
        select 'at://' || a.did || '/app.bsky.feed.post/' || p.rkey as uri,
          (select count(*) from likes l where l.subject_collection = 1 and l.subject_actor_id = p.author_id and l.subject_rkey = p.rkey)::int as likes,
          (select count(*) from reposts r where r.subject_actor_id = p.author_id and r.subject_rkey = p.rkey)::int as reposts,
          (select count(*) from posts q where q.reply_parent_actor_id = p.author_id and q.reply_parent_rkey = p.rkey)::int as replies
        from posts p join actors a on a.id = p.author_id
        where a.status is null
        order by likes desc, uri limit 25`,
    );
    expect(liked.length).toBeGreaterThan(0);
    const posts = await get(app, query('app.bsky.feed.getPosts', { uris: liked.map((row) => row.uri as string) }));
    expect(posts.status).toBe(200);
    expectValid(AppBskyFeedGetPosts.mainSchema, posts.body);
    const served = new Map((posts.body.posts as Array<Record<string, any>>).map((post) => [post.uri as string, post]));
    for (const row of liked) {
      const post = served.get(row.uri as string);
      expect({ uri: row.uri, likes: post?.likeCount, reposts: post?.repostCount, replies: post?.replyCount }).toEqual({
        uri: row.uri,
        likes: row.likes,
        reposts: row.reposts,
        replies: row.replies,
      });
    }
  });

  test('two processes starting together on the dump apply each pending migration once', async () => {
    const test = await restoredDump();
    const migrations = await loadMigrations(SQL_DIR);
    const before = await tableCounts(open(test.url, 1));
    // The pending migrations add columns and indexes: a second application would fail, not pass
    // silently. They run in milliseconds, so to be sure the two really start together, a third
    // session holds the migrator's advisory lock until both are waiting on it.
    const holder = connectPostgres(test.url, { max: 1, onnotice: () => {} });
    const processes = Array.from({ length: 2 }, () => new Database({ url: test.url, poolSize: 2 }));
    try {
      await holder`select pg_advisory_lock(${MIGRATOR_LOCK_KEY}::int8)`;
      const running = Promise.all(processes.map((db) => migrate(db, migrations)));
      running.catch(() => {}); // awaited below; do not let an early failure go unhandled meanwhile
      await until(async () => {
        const [row] = await holder`select count(*)::int as n from pg_locks
          where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`;
        return row!.n === 2;
      });
      await holder`select pg_advisory_unlock(${MIGRATOR_LOCK_KEY}::int8)`;
      const results = await running;
      expect(results.flat().sort()).toEqual(names(migrations.slice(2)));
    } finally {
      for (const db of processes) await db.close();
      await holder.end({ timeout: 5 });
    }
    const db = open(test.url);
    const rows = await db.run((sql) => sql`select id from aqueduct_migrations order by id`);
    expect(rows.map((row) => Number(row.id))).toEqual(migrations.map((m) => m.id));
    expect(await pendingMigrations(db, migrations)).toEqual([]);
    const after = await tableCounts(db);
    const kept = Object.fromEntries(Object.keys(before).map((table) => [table, after[table]]));
    expect(kept).toEqual({ ...before, aqueduct_migrations: migrations.length });
    expect(await aggregateMismatches(db)).toEqual({ actors: [], posts: [], records: [] });
  });
});
