/**
 * The counters a batch moves: per-post and per-actor aggregates, and record counts per collection.
 *
 * Counters follow exactly the rows the database really inserted (+1) or deleted (-1), so replays
 * and duplicates, which insert or delete nothing, change nothing. For a table that feeds
 * post_counts or actor_counts, `COUNTERS[table]` names the columns its statements return into a
 * CTE `changed` and the data-modifying CTEs that fold those rows into the counter tables inside
 * the same statement: at most one upsert per counter table, one row per key, in key order (so
 * concurrent writers could never deadlock on a hot post), and no row travels back to the
 * ingester. Record counts are summed per batch in `RecordDeltas` and written once, in collection
 * order.
 */
import type { PendingQuery, Row } from 'postgres';
import type { TransactionSql } from '../db/database.ts';
import { intArray, textArray } from '../db/pg-array.ts';
import { SUBJECT_COLLECTIONS, type Table } from './collections.ts';

type Fragment = PendingQuery<Row[]>;

export interface Counting {
  /** What the statement returns into `changed`. */
  readonly columns: readonly string[];
  /** `, name as (insert into <counters> ... from changed ...)`, each row times `sign`. */
  readonly updates: (sql: TransactionSql, sign: 1 | -1) => Fragment;
}

const POST_SUBJECT = SUBJECT_COLLECTIONS['app.bsky.feed.post'];

export const COUNTERS: Partial<Readonly<Record<Table, Counting>>> = {
  posts: {
    columns: ['author_id', 'reply_parent_actor_id', 'reply_parent_rkey', 'quote_actor_id', 'quote_rkey'],
    // A reply counts on its parent, a quote on the quoted post: one upsert for both.
    updates: (sql, sign) => sql`,
      post_deltas as (
        insert into post_counts as c (actor_id, rkey, reply_count, quote_count)
        select actor_id, rkey, sum(reply)::int4 * ${sign}::int4, sum(quote)::int4 * ${sign}::int4
        from (
          select reply_parent_actor_id, reply_parent_rkey, 1, 0 from changed
          where reply_parent_actor_id is not null and reply_parent_rkey is not null
          union all
          select quote_actor_id, quote_rkey, 0, 1 from changed
          where quote_actor_id is not null and quote_rkey is not null
        ) as d(actor_id, rkey, reply, quote)
        group by actor_id, rkey order by actor_id, rkey
        on conflict (actor_id, rkey) do update set
          reply_count = c.reply_count + excluded.reply_count,
          quote_count = c.quote_count + excluded.quote_count
      ),
      actor_deltas as (
        insert into actor_counts as c (actor_id, posts_count)
        select author_id, count(*)::int4 * ${sign}::int4 from changed
        group by author_id order by author_id
        on conflict (actor_id) do update set posts_count = c.posts_count + excluded.posts_count
      )`,
  },
  likes: {
    columns: ['subject_actor_id', 'subject_collection', 'subject_rkey'],
    updates: (sql, sign) => sql`,
      post_deltas as (
        insert into post_counts as c (actor_id, rkey, like_count)
        select subject_actor_id, subject_rkey, count(*)::int4 * ${sign}::int4 from changed
        where subject_collection = ${POST_SUBJECT}::int2
        group by subject_actor_id, subject_rkey order by subject_actor_id, subject_rkey
        on conflict (actor_id, rkey) do update set like_count = c.like_count + excluded.like_count
      )`,
  },
  reposts: {
    columns: ['subject_actor_id', 'subject_rkey'],
    updates: (sql, sign) => sql`,
      post_deltas as (
        insert into post_counts as c (actor_id, rkey, repost_count)
        select subject_actor_id, subject_rkey, count(*)::int4 * ${sign}::int4 from changed
        group by subject_actor_id, subject_rkey order by subject_actor_id, subject_rkey
        on conflict (actor_id, rkey) do update set repost_count = c.repost_count + excluded.repost_count
      )`,
  },
  follows: {
    columns: ['author_id', 'subject_actor_id'],
    // The author follows one more, the subject has one more follower: one upsert for both.
    updates: (sql, sign) => sql`,
      actor_deltas as (
        insert into actor_counts as c (actor_id, follows_count, followers_count)
        select actor_id, sum(follows)::int4 * ${sign}::int4, sum(followers)::int4 * ${sign}::int4
        from (
          select author_id, 1, 0 from changed
          union all
          select subject_actor_id, 0, 1 from changed
        ) as d(actor_id, follows, followers)
        group by actor_id order by actor_id
        on conflict (actor_id) do update set
          follows_count = c.follows_count + excluded.follows_count,
          followers_count = c.followers_count + excluded.followers_count
      )`,
  },
};

/** Net record count changes of one batch, per collection (and `actors`). */
export class RecordDeltas {
  readonly #deltas = new Map<string, number>();

  add(collection: string, delta: number): void {
    this.#deltas.set(collection, (this.#deltas.get(collection) ?? 0) + delta);
  }

  async write(sql: TransactionSql): Promise<void> {
    const records = [...this.#deltas].filter(([, delta]) => delta !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    if (records.length === 0) return;
    await sql`
      insert into record_counts as c (collection, count)
      select * from unnest(${textArray(records.map(([name]) => name))}::text[], ${intArray(records.map(([, delta]) => delta))}::int8[])
      on conflict (collection) do update set count = c.count + excluded.count`;
  }
}
