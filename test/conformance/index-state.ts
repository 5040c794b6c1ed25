/**
 * What an index must hold, read two ways into one shape: from the reference PDS (every repo as
 * `com.atproto.sync.getRepo` serves it: the truth) and from Aqueduct's database. Then one
 * `expect(aqueduct).toEqual(pds)` compares every record, account, handle and counter.
 *
 * Records are `at://did/collection/rkey -> cid`, for the collections Aqueduct indexes; for the
 * tables that keep no CID (likes, reposts, follows, blocks: only their subject is needed) the
 * value is the subject the record names instead, which both sides know. Counters are computed from
 * the PDS's records as the reference AppView counts them: a like, repost, reply, quote, follow or
 * post counts while its record exists and its author's account is not deleted.
 */
import { fromUint8Array as readRepo } from '@atcute/repo';
import type { Database } from '../../src/db/database.ts';
import { xrpcUrl } from './pds-client.ts';

export const INDEXED_COLLECTIONS: Readonly<Record<string, string>> = {
  'app.bsky.feed.post': 'posts',
  'app.bsky.feed.like': 'likes',
  'app.bsky.feed.repost': 'reposts',
  'app.bsky.graph.follow': 'follows',
  'app.bsky.graph.block': 'blocks',
  'app.bsky.actor.profile': 'profiles',
  'app.bsky.graph.list': 'lists',
  'app.bsky.graph.listitem': 'list_items',
  'app.bsky.graph.listblock': 'list_blocks',
  'app.bsky.feed.generator': 'feed_generators',
  'app.bsky.feed.threadgate': 'threadgates',
  'app.bsky.feed.postgate': 'postgates',
  'app.bsky.graph.starterpack': 'starter_packs',
  'app.bsky.labeler.service': 'labelers',
};
const SUBJECT_TABLES = new Set(['likes', 'reposts', 'follows', 'blocks']);

export interface ActorState {
  readonly handle: string | null;
  /** null while active */
  readonly status: string | null;
  readonly followersCount: number;
  readonly followsCount: number;
  readonly postsCount: number;
}

export interface PostCounts {
  readonly likeCount: number;
  readonly repostCount: number;
  readonly replyCount: number;
  readonly quoteCount: number;
}

export interface IndexState {
  readonly records: Record<string, string>;
  readonly actors: Record<string, ActorState>;
  readonly posts: Record<string, PostCounts>;
}

export interface PdsAccount {
  readonly did: string;
  readonly handle: string;
  /** 'deactivated', 'deleted', ... ; null when active */
  readonly status: string | null;
}

/** A repo's records: `uri -> { cid, value }`. */
export type RepoRecords = Map<string, { cid: string; value: Record<string, unknown> }>;

export async function fetchRepo(pds: string, did: string): Promise<RepoRecords> {
  const response = await fetch(xrpcUrl(pds, 'com.atproto.sync.getRepo', { did }));
  if (!response.ok) throw new Error(`getRepo ${did} -> ${response.status} ${await response.text()}`);
  const records: RepoRecords = new Map();
  for (const entry of readRepo(new Uint8Array(await response.arrayBuffer()))) {
    records.set(`at://${did}/${entry.collection}/${entry.rkey}`, { cid: entry.cid.$link, value: entry.record as Record<string, unknown> });
  }
  return records;
}

const subjectOf = (collection: string, value: Record<string, unknown>): string => {
  const subject = value.subject;
  if (typeof subject === 'string') return subject;
  if (typeof subject === 'object' && subject !== null && typeof (subject as { uri?: unknown }).uri === 'string') return (subject as { uri: string }).uri;
  throw new Error(`${collection} record without a subject`);
};

const uriOf = (ref: unknown): string | null =>
  typeof ref === 'object' && ref !== null && typeof (ref as { uri?: unknown }).uri === 'string' ? (ref as { uri: string }).uri : null;

/** The quoted record's URI of a post's embed (record, or recordWithMedia). */
const quotedUri = (embed: unknown): string | null => {
  if (typeof embed !== 'object' || embed === null) return null;
  const typed = embed as { $type?: string; record?: unknown };
  if (typed.$type === 'app.bsky.embed.record') return uriOf(typed.record);
  if (typed.$type === 'app.bsky.embed.recordWithMedia') return uriOf((typed.record as { record?: unknown } | undefined)?.record);
  return null;
};

/**
 * The truth: `repos` are the records of every account that is not deleted (a deactivated one as
 * it was when it was deactivated), `accounts` every account the PDS hosted.
 */
export function pdsState(accounts: readonly PdsAccount[], repos: ReadonlyMap<string, RepoRecords>): IndexState {
  const records: Record<string, string> = {};
  const actors: Record<string, ActorState & { followersCount: number; followsCount: number; postsCount: number }> = {};
  const posts: Record<string, { likeCount: number; repostCount: number; replyCount: number; quoteCount: number }> = {};
  const counts = { followers: new Map<string, number>(), follows: new Map<string, number>(), posts: new Map<string, number>() };
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const postCounts = new Map<string, { likeCount: number; repostCount: number; replyCount: number; quoteCount: number }>();
  const postOf = (uri: string) => {
    let entry = postCounts.get(uri);
    if (!entry) postCounts.set(uri, (entry = { likeCount: 0, repostCount: 0, replyCount: 0, quoteCount: 0 }));
    return entry;
  };

  for (const [did, repo] of repos) {
    for (const [uri, { cid, value }] of repo) {
      const collection = uri.split('/')[3]!;
      const table = INDEXED_COLLECTIONS[collection];
      if (!table) continue;
      records[uri] = SUBJECT_TABLES.has(table) ? subjectOf(collection, value) : cid;
      if (collection === 'app.bsky.graph.follow') {
        bump(counts.follows, did);
        bump(counts.followers, subjectOf(collection, value));
      } else if (collection === 'app.bsky.feed.post') {
        bump(counts.posts, did);
        postOf(uri);
        const parent = uriOf((value.reply as { parent?: unknown } | undefined)?.parent);
        if (parent) postOf(parent).replyCount++;
        const quoted = quotedUri(value.embed);
        if (quoted) postOf(quoted).quoteCount++;
      } else if (collection === 'app.bsky.feed.like') {
        const subject = subjectOf(collection, value);
        if (subject.includes('/app.bsky.feed.post/')) postOf(subject).likeCount++;
      } else if (collection === 'app.bsky.feed.repost') {
        postOf(subjectOf(collection, value)).repostCount++;
      }
    }
  }
  for (const account of accounts) {
    actors[account.did] = {
      handle: account.status === 'deleted' ? null : account.handle,
      status: account.status,
      followersCount: counts.followers.get(account.did) ?? 0,
      followsCount: counts.follows.get(account.did) ?? 0,
      postsCount: counts.posts.get(account.did) ?? 0,
    };
  }
  // only posts that exist are compared (a count on a deleted post has nothing to show it)
  for (const [uri, value] of postCounts) if (records[uri] !== undefined) posts[uri] = value;
  return { records, actors, posts };
}

/** What Aqueduct's database holds, for the accounts named. */
export async function aqueductState(db: Database, dids: readonly string[]): Promise<IndexState> {
  return db.run(async (sql) => {
    const records: Record<string, string> = {};
    for (const [collection, table] of Object.entries(INDEXED_COLLECTIONS)) {
      if (SUBJECT_TABLES.has(table)) continue;
      const rows = await sql<{ uri: string; value: string }[]>`
        select 'at://' || a.did || '/' || ${collection}::text || '/' || t.rkey as uri, t.cid as value
        from ${sql(table)} t join actors a on a.id = t.author_id
        where a.did = any(${dids as string[]}::text[])`;
      for (const row of rows) records[row.uri] = row.value;
    }
    // the subject tables: the subject named, rebuilt from its compact keys (collections.ts numbers them)
    const subjects = await sql<{ uri: string; value: string }[]>`
      select 'at://' || a.did || '/app.bsky.feed.like/' || t.rkey as uri,
        'at://' || s.did || '/' || (array['app.bsky.feed.post', 'app.bsky.feed.generator', 'app.bsky.graph.list',
          'app.bsky.labeler.service', 'app.bsky.graph.starterpack'])[t.subject_collection] || '/' || t.subject_rkey as value
      from likes t join actors a on a.id = t.author_id join actors s on s.id = t.subject_actor_id
      where a.did = any(${dids as string[]}::text[])
      union all
      select 'at://' || a.did || '/app.bsky.feed.repost/' || t.rkey, 'at://' || s.did || '/app.bsky.feed.post/' || t.subject_rkey
      from reposts t join actors a on a.id = t.author_id join actors s on s.id = t.subject_actor_id
      where a.did = any(${dids as string[]}::text[])
      union all
      select 'at://' || a.did || '/app.bsky.graph.follow/' || t.rkey, s.did
      from follows t join actors a on a.id = t.author_id join actors s on s.id = t.subject_actor_id
      where a.did = any(${dids as string[]}::text[])
      union all
      select 'at://' || a.did || '/app.bsky.graph.block/' || t.rkey, s.did
      from blocks t join actors a on a.id = t.author_id join actors s on s.id = t.subject_actor_id
      where a.did = any(${dids as string[]}::text[])`;
    for (const row of subjects) records[row.uri] = row.value;
    const actorRows = await sql<{ did: string; handle: string | null; status: string | null; followersCount: number; followsCount: number; postsCount: number }[]>`
      select a.did, a.handle, a.status, coalesce(c.followers_count, 0)::int as followers_count,
        coalesce(c.follows_count, 0)::int as follows_count, coalesce(c.posts_count, 0)::int as posts_count
      from actors a left join actor_counts c on c.actor_id = a.id
      where a.did = any(${dids as string[]}::text[])`;
    const actors: Record<string, ActorState> = {};
    for (const row of actorRows) {
      actors[row.did] = { handle: row.handle, status: row.status, followersCount: row.followersCount, followsCount: row.followsCount, postsCount: row.postsCount };
    }
    const postRows = await sql<({ uri: string } & PostCounts)[]>`
      select 'at://' || a.did || '/app.bsky.feed.post/' || p.rkey as uri,
        coalesce(c.like_count, 0)::int as like_count, coalesce(c.repost_count, 0)::int as repost_count,
        coalesce(c.reply_count, 0)::int as reply_count, coalesce(c.quote_count, 0)::int as quote_count
      from posts p join actors a on a.id = p.author_id
      left join post_counts c on c.actor_id = p.author_id and c.rkey = p.rkey
      where a.did = any(${dids as string[]}::text[])`;
    const posts: Record<string, PostCounts> = {};
    for (const row of postRows) posts[row.uri] = { likeCount: row.likeCount, repostCount: row.repostCount, replyCount: row.replyCount, quoteCount: row.quoteCount };
    return { records, actors, posts };
  });
}
