/**
 * Bulk loaders: one SQL statement each, for any number of keys.
 *
 * Every function takes the `Db` and a set of keys and runs exactly one statement inside one
 * `db.run`, so the hydrator's query count does not depend on the page size. Rows come back as
 * plain objects with ISO timestamps. Content of inactive accounts (taken down, suspended,
 * deactivated, deleted) is never returned by the record loaders: to a view it does not exist.
 */
import type { Database } from '../db/database.ts';

export type Db = Pick<Database, 'run'>;

export interface RecordKey {
  readonly actorId: number;
  readonly rkey: string;
}

/** `actorId/rkey`: the map key of a record. */
export const keyOf = (actorId: number, rkey: string): string => `${actorId}/${rkey}`;

/** Statuses that still show content: the relay's transient states, not account decisions. */
export const VISIBLE_STATUSES: readonly string[] = ['desynchronized', 'throttled'];

export interface ActorRow {
  readonly id: number;
  readonly did: string;
  readonly handle: string | null;
  readonly status: string | null;
  readonly pdsEndpoint: string | null;
  readonly firstSeenAt: string;
  readonly profile: unknown;
  readonly profileCid: string | null;
  readonly profileCreatedAt: string | null;
  readonly profileIndexedAt: string | null;
  readonly followersCount: number;
  readonly followsCount: number;
  readonly postsCount: number;
}

export interface PostRow {
  readonly authorId: number;
  readonly rkey: string;
  readonly cid: string;
  readonly createdAt: string;
  readonly indexedAt: string;
  readonly text: string;
  readonly langs: string[] | null;
  readonly replyRootActorId: number | null;
  readonly replyRootRkey: string | null;
  readonly replyRootCid: string | null;
  readonly replyParentActorId: number | null;
  readonly replyParentRkey: string | null;
  readonly replyParentCid: string | null;
  readonly quoteActorId: number | null;
  readonly quoteRkey: string | null;
  readonly embed: unknown;
  readonly facets: unknown;
  readonly labels: string[] | null;
  readonly tags: string[] | null;
  readonly likeCount: number;
  readonly repostCount: number;
  readonly replyCount: number;
  readonly quoteCount: number;
}

export type DocumentTable = 'lists' | 'feed_generators' | 'starter_packs' | 'labelers' | 'threadgates' | 'postgates';

export interface DocumentRow {
  readonly table: DocumentTable;
  readonly authorId: number;
  readonly rkey: string;
  readonly cid: string;
  readonly indexedAt: string;
  readonly record: Record<string, unknown>;
  readonly refActorId: number | null;
  readonly refRkey: string | null;
  /** lists: members; feed generators and labelers: likes */
  readonly itemCount: number;
  /** rkey of the viewer's like (generators, labelers) */
  readonly viewerLike: string | null;
}

export type RelationKind = 'following' | 'followedBy' | 'blocking' | 'blockedBy' | 'blockingByList' | 'blockedByList';

export interface RelationRow {
  readonly kind: RelationKind;
  readonly other: number;
  /** the record's rkey (follow, block), or the list's for list blocks */
  readonly rkey: string;
  /** list blocks: the list */
  readonly listActorId: number | null;
}

export interface PostViewerRow {
  readonly kind: 'like' | 'repost';
  readonly actorId: number;
  readonly subjectRkey: string;
  readonly rkey: string;
}

const iso = (value: unknown): string => (value instanceof Date ? value.toISOString() : String(value));
const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : iso(value));

export async function loadActors(db: Db, ids: readonly number[]): Promise<ActorRow[]> {
  if (ids.length === 0) return [];
  const rows = await db.run(
    (sql) => sql`
      select a.id, a.did, a.handle, a.status, a.pds_endpoint, a.first_seen_at,
        p.record as profile, p.cid as profile_cid, p.created_at as profile_created_at, p.indexed_at as profile_indexed_at,
        coalesce(c.followers_count, 0) as followers_count, coalesce(c.follows_count, 0) as follows_count,
        coalesce(c.posts_count, 0) as posts_count
      from actors a
      left join profiles p on p.author_id = a.id and p.rkey = 'self'
      left join actor_counts c on c.actor_id = a.id
      where a.id = any(${[...ids]}::int4[])`,
  );
  return rows.map((row) => ({
    id: row.id,
    did: row.did,
    handle: row.handle,
    status: row.status,
    pdsEndpoint: row.pdsEndpoint ?? null,
    firstSeenAt: iso(row.firstSeenAt),
    profile: row.profile,
    profileCid: row.profileCid,
    profileCreatedAt: isoOrNull(row.profileCreatedAt),
    profileIndexedAt: isoOrNull(row.profileIndexedAt),
    followersCount: row.followersCount,
    followsCount: row.followsCount,
    postsCount: row.postsCount,
  }));
}

export async function loadPosts(db: Db, keys: readonly RecordKey[]): Promise<PostRow[]> {
  if (keys.length === 0) return [];
  const rows = await db.run(
    (sql) => sql`
      select p.author_id, p.rkey, p.cid, p.created_at, p.indexed_at, p.text, p.langs,
        p.reply_root_actor_id, p.reply_root_rkey, p.reply_parent_actor_id, p.reply_parent_rkey,
        p.reply_root_cid, p.reply_parent_cid,
        p.quote_actor_id, p.quote_rkey, p.embed, p.facets, p.labels, p.tags,
        coalesce(c.like_count, 0) as like_count, coalesce(c.repost_count, 0) as repost_count,
        coalesce(c.reply_count, 0) as reply_count, coalesce(c.quote_count, 0) as quote_count
      from (select distinct * from unnest(${keys.map((k) => k.actorId)}::int4[], ${keys.map((k) => k.rkey)}::text[])) as k(actor_id, rkey)
      join posts p on p.author_id = k.actor_id and p.rkey = k.rkey
      join actors a on a.id = p.author_id and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[]))
      left join post_counts c on c.actor_id = p.author_id and c.rkey = p.rkey`,
  );
  return rows.map((row) => ({
    authorId: row.authorId,
    rkey: row.rkey,
    cid: row.cid,
    createdAt: iso(row.createdAt),
    indexedAt: iso(row.indexedAt),
    text: row.text,
    langs: row.langs,
    replyRootActorId: row.replyRootActorId,
    replyRootRkey: row.replyRootRkey,
    replyRootCid: row.replyRootCid,
    replyParentActorId: row.replyParentActorId,
    replyParentRkey: row.replyParentRkey,
    replyParentCid: row.replyParentCid,
    quoteActorId: row.quoteActorId,
    quoteRkey: row.quoteRkey,
    embed: row.embed,
    facets: row.facets,
    labels: row.labels,
    tags: row.tags,
    likeCount: row.likeCount,
    repostCount: row.repostCount,
    replyCount: row.replyCount,
    quoteCount: row.quoteCount,
  }));
}

/**
 * Records of the document tables (lists, generators, starter packs, labelers, gates) in one
 * statement, with the counts their views carry and the viewer's like.
 */
export async function loadDocuments(
  db: Db,
  keys: ReadonlyArray<RecordKey & { readonly table: DocumentTable }>,
  viewer: number | null,
): Promise<DocumentRow[]> {
  if (keys.length === 0) return [];
  const rows = await db.run(
    (sql) => sql`
      with k as (
        select distinct * from unnest(${keys.map((k) => k.table)}::text[], ${keys.map((k) => k.actorId)}::int4[], ${keys.map((k) => k.rkey)}::text[])
          as k(tbl, actor_id, rkey)
      ), docs as (
        select 'lists' as tbl, d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join lists d on k.tbl = 'lists' and d.author_id = k.actor_id and d.rkey = k.rkey
        union all
        select 'feed_generators', d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join feed_generators d on k.tbl = 'feed_generators' and d.author_id = k.actor_id and d.rkey = k.rkey
        union all
        select 'starter_packs', d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join starter_packs d on k.tbl = 'starter_packs' and d.author_id = k.actor_id and d.rkey = k.rkey
        union all
        select 'labelers', d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join labelers d on k.tbl = 'labelers' and d.author_id = k.actor_id and d.rkey = k.rkey
        union all
        select 'threadgates', d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join threadgates d on k.tbl = 'threadgates' and d.author_id = k.actor_id and d.rkey = k.rkey
        union all
        select 'postgates', d.author_id, d.rkey, d.cid, d.indexed_at, d.record, d.ref_actor_id, d.ref_rkey
          from k join postgates d on k.tbl = 'postgates' and d.author_id = k.actor_id and d.rkey = k.rkey
      )
      select docs.*,
        case docs.tbl
          when 'lists' then (select count(*) from list_items i where i.ref_actor_id = docs.author_id and i.ref_rkey = docs.rkey)
          when 'feed_generators' then (select count(*) from likes l where l.subject_actor_id = docs.author_id and l.subject_rkey = docs.rkey and l.subject_collection = 2)
          when 'labelers' then (select count(*) from likes l where l.subject_actor_id = docs.author_id and l.subject_rkey = docs.rkey and l.subject_collection = 4)
          else 0
        end::int4 as item_count,
        case docs.tbl
          when 'feed_generators' then (select l.rkey from likes l where l.subject_actor_id = docs.author_id and l.subject_rkey = docs.rkey
            and l.subject_collection = 2 and l.author_id = ${viewer ?? -1} limit 1)
          when 'labelers' then (select l.rkey from likes l where l.subject_actor_id = docs.author_id and l.subject_rkey = docs.rkey
            and l.subject_collection = 4 and l.author_id = ${viewer ?? -1} limit 1)
        end as viewer_like
      from docs
      join actors a on a.id = docs.author_id and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[]))`,
  );
  return rows.map((row) => ({
    table: row.tbl,
    authorId: row.authorId,
    rkey: row.rkey,
    cid: row.cid,
    indexedAt: iso(row.indexedAt),
    record: row.record,
    refActorId: row.refActorId,
    refRkey: row.refRkey,
    itemCount: row.itemCount,
    viewerLike: row.viewerLike,
  }));
}

/** The viewer's likes and reposts of the given posts. */
export async function loadPostViewer(db: Db, viewer: number, keys: readonly RecordKey[]): Promise<PostViewerRow[]> {
  if (keys.length === 0) return [];
  const actorIds = keys.map((k) => k.actorId);
  const rkeys = keys.map((k) => k.rkey);
  const rows = await db.run(
    (sql) => sql`
      with k as (select distinct * from unnest(${actorIds}::int4[], ${rkeys}::text[]) as k(actor_id, rkey))
      select 'like' as kind, l.subject_actor_id as actor_id, l.subject_rkey, l.rkey
        from k join likes l on l.subject_actor_id = k.actor_id and l.subject_rkey = k.rkey
        where l.author_id = ${viewer} and l.subject_collection = 1
      union all
      select 'repost', r.subject_actor_id, r.subject_rkey, r.rkey
        from k join reposts r on r.subject_actor_id = k.actor_id and r.subject_rkey = k.rkey
        where r.author_id = ${viewer}`,
  );
  return rows as unknown as PostViewerRow[];
}

/** How the viewer relates to each of `ids`: follows and blocks both ways, list blocks. */
export async function loadRelations(db: Db, viewer: number, ids: readonly number[]): Promise<RelationRow[]> {
  if (ids.length === 0) return [];
  const rows = await db.run(
    (sql) => sql`
      with ids as (select distinct unnest(${[...ids]}::int4[]) as id)
      select 'following' as kind, f.subject_actor_id as other, f.rkey, null::int4 as list_actor_id
        from follows f join ids on f.subject_actor_id = ids.id where f.author_id = ${viewer}
      union all
      select 'followedBy', f.author_id, f.rkey, null from follows f join ids on f.author_id = ids.id where f.subject_actor_id = ${viewer}
      union all
      select 'blocking', b.subject_actor_id, b.rkey, null from blocks b join ids on b.subject_actor_id = ids.id where b.author_id = ${viewer}
      union all
      select 'blockedBy', b.author_id, b.rkey, null from blocks b join ids on b.author_id = ids.id where b.subject_actor_id = ${viewer}
      union all
      select 'blockingByList', i.subject_actor_id, lb.ref_rkey, lb.ref_actor_id
        from list_blocks lb
        join list_items i on i.ref_actor_id = lb.ref_actor_id and i.ref_rkey = lb.ref_rkey
        join ids on i.subject_actor_id = ids.id
        where lb.author_id = ${viewer}
      union all
      select 'blockedByList', lb.author_id, lb.ref_rkey, lb.ref_actor_id
        from list_blocks lb
        join ids on lb.author_id = ids.id
        join list_items i on i.ref_actor_id = lb.ref_actor_id and i.ref_rkey = lb.ref_rkey
        where i.subject_actor_id = ${viewer}`,
  );
  return rows as unknown as RelationRow[];
}

/** Blocks (direct or through a subscribed block list) between any two of `ids`: [blocker, blocked]. */
export async function loadBlockPairs(db: Db, ids: readonly number[]): Promise<Array<[number, number]>> {
  if (ids.length < 2) return [];
  const rows = await db.run(
    (sql) => sql`
      with ids as (select distinct unnest(${[...ids]}::int4[]) as id)
      select b.author_id as blocker, b.subject_actor_id as blocked
        from blocks b join ids a on b.author_id = a.id join ids s on b.subject_actor_id = s.id
      union
      select lb.author_id, i.subject_actor_id
        from list_blocks lb
        join ids a on lb.author_id = a.id
        join list_items i on i.ref_actor_id = lb.ref_actor_id and i.ref_rkey = lb.ref_rkey
        join ids s on i.subject_actor_id = s.id`,
  );
  return rows.map((row) => [row.blocker as number, row.blocked as number]);
}

/** Counts for profileViewDetailed's `associated`: lists, feed generators, starter packs, labeler. */
export interface AssociatedRow {
  readonly actorId: number;
  readonly lists: number;
  readonly feedgens: number;
  readonly starterPacks: number;
  readonly labeler: boolean;
}

export async function loadAssociated(db: Db, ids: readonly number[]): Promise<AssociatedRow[]> {
  if (ids.length === 0) return [];
  const rows = await db.run(
    (sql) => sql`
      select ids.id as actor_id,
        (select count(*) from lists d where d.author_id = ids.id)::int4 as lists,
        (select count(*) from feed_generators d where d.author_id = ids.id)::int4 as feedgens,
        (select count(*) from starter_packs d where d.author_id = ids.id)::int4 as starter_packs,
        exists (select 1 from labelers d where d.author_id = ids.id and d.rkey = 'self') as labeler
      from (select distinct unnest(${[...ids]}::int4[]) as id) as ids`,
  );
  return rows as unknown as AssociatedRow[];
}
