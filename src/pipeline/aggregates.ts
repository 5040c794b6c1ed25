/**
 * Aggregate deltas of one batch, pre-summed per key and written in key order.
 *
 * Every row the batch really inserted counts +1 and every row it really deleted counts -1 (the
 * writer feeds it the `returning` rows of its statements), so replays and duplicates, which
 * insert or delete nothing, change nothing. Each table of counters then gets one upsert with one
 * row per key, sorted, so concurrent writers could never deadlock on a hot post.
 */
import type { TransactionSql } from '../db/database.ts';

type PostCounter = 'like' | 'repost' | 'reply' | 'quote';
type ActorCounter = 'followers' | 'follows' | 'posts';

export class AggregateDeltas {
  readonly #posts = new Map<string, { actorId: number; rkey: string; like: number; repost: number; reply: number; quote: number }>();
  readonly #actors = new Map<number, { followers: number; follows: number; posts: number }>();
  readonly #records = new Map<string, number>();

  post(actorId: number | null, rkey: string | null, counter: PostCounter, delta: number): void {
    if (actorId === null || rkey === null) return;
    const key = `${actorId} ${rkey}`;
    let entry = this.#posts.get(key);
    if (!entry) this.#posts.set(key, (entry = { actorId, rkey, like: 0, repost: 0, reply: 0, quote: 0 }));
    entry[counter] += delta;
  }

  actor(actorId: number, counter: ActorCounter, delta: number): void {
    let entry = this.#actors.get(actorId);
    if (!entry) this.#actors.set(actorId, (entry = { followers: 0, follows: 0, posts: 0 }));
    entry[counter] += delta;
  }

  record(collection: string, delta: number): void {
    this.#records.set(collection, (this.#records.get(collection) ?? 0) + delta);
  }

  /** Net record count changes of the batch, per collection (for in-memory metrics). */
  get recordDeltas(): ReadonlyMap<string, number> {
    return this.#records;
  }

  async write(sql: TransactionSql): Promise<void> {
    const posts = [...this.#posts.values()]
      .filter((entry) => entry.like || entry.repost || entry.reply || entry.quote)
      .sort((a, b) => a.actorId - b.actorId || (a.rkey < b.rkey ? -1 : a.rkey > b.rkey ? 1 : 0));
    if (posts.length) {
      await sql`
        insert into post_counts as c (actor_id, rkey, like_count, repost_count, reply_count, quote_count)
        select * from unnest(
          ${posts.map((entry) => entry.actorId)}::int4[], ${posts.map((entry) => entry.rkey)}::text[],
          ${posts.map((entry) => entry.like)}::int4[], ${posts.map((entry) => entry.repost)}::int4[],
          ${posts.map((entry) => entry.reply)}::int4[], ${posts.map((entry) => entry.quote)}::int4[])
        on conflict (actor_id, rkey) do update set
          like_count = c.like_count + excluded.like_count,
          repost_count = c.repost_count + excluded.repost_count,
          reply_count = c.reply_count + excluded.reply_count,
          quote_count = c.quote_count + excluded.quote_count`;
    }

    const actors = [...this.#actors.entries()]
      .filter(([, entry]) => entry.followers || entry.follows || entry.posts)
      .sort(([a], [b]) => a - b);
    if (actors.length) {
      await sql`
        insert into actor_counts as c (actor_id, followers_count, follows_count, posts_count)
        select * from unnest(
          ${actors.map(([id]) => id)}::int4[], ${actors.map(([, entry]) => entry.followers)}::int4[],
          ${actors.map(([, entry]) => entry.follows)}::int4[], ${actors.map(([, entry]) => entry.posts)}::int4[])
        on conflict (actor_id) do update set
          followers_count = c.followers_count + excluded.followers_count,
          follows_count = c.follows_count + excluded.follows_count,
          posts_count = c.posts_count + excluded.posts_count`;
    }

    const records = [...this.#records.entries()].filter(([, delta]) => delta !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    if (records.length) {
      await sql`
        insert into record_counts as c (collection, count)
        select * from unnest(${records.map(([name]) => name)}::text[], ${records.map(([, delta]) => delta)}::int8[])
        on conflict (collection) do update set count = c.count + excluded.count`;
    }
  }
}
