/**
 * Reads back what the indexer stored in the shape of the simulator's ground truth, so tests can
 * compare the two with one `expect(...).toEqual(...)`.
 */
import type { Database } from '../../src/db/database.ts';
import { tableOf } from '../../src/pipeline/collections.ts';
import type { GroundTruth } from '../../src/sim/ground-truth.ts';

export interface IndexedState {
  readonly records: Record<string, number>;
  readonly posts: Record<string, { likeCount: number; repostCount: number; replyCount: number; quoteCount: number }>;
  readonly actors: Record<string, { followersCount: number; followsCount: number; postsCount: number }>;
}

/** Live records per collection by count(*) (the truth), aggregates for live posts and for the given actors. */
export async function readIndexedState(db: Database, truth: GroundTruth): Promise<IndexedState> {
  return db.run(async (sql) => {
    const records: Record<string, number> = {};
    for (const collection of Object.keys(truth.records)) {
      const table = tableOf(collection);
      if (!table) throw new Error(`no table for ${collection}`);
      const [row] = await sql`select count(*)::int as n from ${sql(table)}`;
      records[collection] = row?.n ?? 0;
    }
    const postRows = await sql`
      select 'at://' || a.did || '/app.bsky.feed.post/' || p.rkey as uri,
        coalesce(c.like_count, 0)::int as like_count, coalesce(c.repost_count, 0)::int as repost_count,
        coalesce(c.reply_count, 0)::int as reply_count, coalesce(c.quote_count, 0)::int as quote_count
      from posts p join actors a on a.id = p.author_id
      left join post_counts c on c.actor_id = p.author_id and c.rkey = p.rkey`;
    const posts = Object.fromEntries(
      postRows.map((row) => [row.uri, { likeCount: row.likeCount, repostCount: row.repostCount, replyCount: row.replyCount, quoteCount: row.quoteCount }]),
    );
    const actorRows = await sql`
      select a.did, coalesce(c.followers_count, 0)::int as followers_count, coalesce(c.follows_count, 0)::int as follows_count,
        coalesce(c.posts_count, 0)::int as posts_count
      from actors a left join actor_counts c on c.actor_id = a.id
      where a.did = any(${Object.keys(truth.actors)}::text[])`;
    const actors = Object.fromEntries(
      actorRows.map((row) => [row.did, { followersCount: row.followersCount, followsCount: row.followsCount, postsCount: row.postsCount }]),
    );
    return { records, posts, actors };
  });
}

/** The ground truth without the fields the index does not hold (handles come from identity work). */
export function expectedState(truth: GroundTruth): IndexedState {
  const actors: IndexedState['actors'] = {};
  for (const [did, counts] of Object.entries(truth.actors)) {
    actors[did] = { followersCount: counts.followersCount, followsCount: counts.followsCount, postsCount: counts.postsCount };
  }
  return { records: { ...truth.records }, posts: truth.posts, actors };
}
