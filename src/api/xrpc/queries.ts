/**
 * Page queries ("skeletons"): which records make up one page of a feed or list, in order.
 *
 * Each function runs one statement and returns keys plus the sort key of each row; the cursor of a
 * page is the sort key of its last row, so the next page starts strictly after it (no gaps, no
 * repeats, even with equal timestamps: ties break on author id and record key). Sort time is the
 * earlier of createdAt and indexedAt, as in the reference AppView. Hydration happens elsewhere.
 */
import type { Db, RecordKey } from '../../hydration/loaders.ts';
import { VISIBLE_STATUSES } from '../../hydration/loaders.ts';

export interface TimeCursor {
  /** ISO timestamp with microseconds */
  readonly time: string;
  readonly actorId: number;
  readonly rkey: string;
}

export interface FeedRow {
  readonly post: RecordKey;
  /** set for reposts */
  readonly repost: { readonly by: number; readonly rkey: string; readonly cid: string | null; readonly indexedAt: string } | null;
  readonly cursor: TimeCursor;
}

export type AuthorFeedFilter = 'posts_with_replies' | 'posts_no_replies' | 'posts_with_media' | 'posts_and_author_threads' | 'posts_with_video';

const SORT_TEXT = `to_char(sort_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const iso = (value: unknown): string => (value instanceof Date ? value.toISOString() : String(value));

interface RawFeedRow {
  kind: 'post' | 'repost';
  postActor: number;
  postRkey: string;
  byActor: number;
  itemRkey: string;
  itemCid: string | null;
  indexedAt: unknown;
  sortText: string;
}

const toFeedRows = (rows: readonly RawFeedRow[]): FeedRow[] =>
  rows.map((row) => ({
    post: { actorId: row.postActor, rkey: row.postRkey },
    repost: row.kind === 'repost' ? { by: row.byActor, rkey: row.itemRkey, cid: row.itemCid, indexedAt: iso(row.indexedAt) } : null,
    cursor: { time: row.sortText, actorId: row.byActor, rkey: row.itemRkey },
  }));

/** An author's posts and reposts, newest first; reposts of deleted or hidden posts drop out. */
export async function authorFeed(db: Db, authorId: number, filter: AuthorFeedFilter, limit: number, cursor: TimeCursor | undefined): Promise<FeedRow[]> {
  const withReposts = filter !== 'posts_with_media' && filter !== 'posts_with_video';
  const rows = await db.run(
    (sql) => {
      const before = (table: string) =>
        cursor
          ? sql`and least(${sql(table)}.created_at, ${sql(table)}.indexed_at) <= ${cursor.time}::timestamptz
              and (least(${sql(table)}.created_at, ${sql(table)}.indexed_at), ${sql(table)}.rkey) < (${cursor.time}::timestamptz, ${cursor.rkey}::text collate "C")`
          : sql``;
      const media = sql`(p.embed->>'$type' in ('app.bsky.embed.images', 'app.bsky.embed.video')
        or (p.embed->>'$type' = 'app.bsky.embed.recordWithMedia' and p.embed->'media'->>'$type' in ('app.bsky.embed.images', 'app.bsky.embed.video')))`;
      const video = sql`(p.embed->>'$type' = 'app.bsky.embed.video'
        or (p.embed->>'$type' = 'app.bsky.embed.recordWithMedia' and p.embed->'media'->>'$type' = 'app.bsky.embed.video'))`;
      const postFilter =
        filter === 'posts_no_replies'
          ? sql`and p.reply_parent_actor_id is null`
          : filter === 'posts_and_author_threads'
            ? sql`and (p.reply_parent_actor_id is null or (p.reply_root_actor_id = ${authorId} and p.reply_parent_actor_id = ${authorId}))`
            : filter === 'posts_with_media'
              ? sql`and ${media}`
              : filter === 'posts_with_video'
                ? sql`and ${video}`
                : sql``;
      const reposts = withReposts
        ? sql`union all
          select * from (
            select 'repost' as kind, r.subject_actor_id as post_actor, r.subject_rkey as post_rkey, r.author_id as by_actor, r.rkey as item_rkey,
              r.cid as item_cid, r.indexed_at, least(r.created_at, r.indexed_at) as sort_at
            from reposts r
            where r.author_id = ${authorId} ${before('r')}
              and exists (select 1 from posts s join actors a on a.id = s.author_id
                where s.author_id = r.subject_actor_id and s.rkey = r.subject_rkey and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[])))
            order by least(r.created_at, r.indexed_at) desc, r.rkey desc
            limit ${limit}
          ) as r`
        : sql``;
      return sql`
        select kind, post_actor, post_rkey, by_actor, item_rkey, item_cid, indexed_at, ${sql.unsafe(SORT_TEXT)} as sort_text from (
          select * from (
            select 'post' as kind, p.author_id as post_actor, p.rkey as post_rkey, p.author_id as by_actor, p.rkey as item_rkey,
              null::text as item_cid, p.indexed_at, least(p.created_at, p.indexed_at) as sort_at
            from posts p
            where p.author_id = ${authorId} ${before('p')} ${postFilter}
            order by least(p.created_at, p.indexed_at) desc, p.rkey desc
            limit ${limit}
          ) as p
          ${reposts}
        ) as feed
        order by sort_at desc, item_rkey desc
        limit ${limit}`;
    },
  );
  return toFeedRows(rows as unknown as RawFeedRow[]);
}

/** The viewer's home timeline: posts and reposts of the accounts it follows, and its own. */
export async function timeline(db: Db, viewerId: number, limit: number, cursor: TimeCursor | undefined): Promise<FeedRow[]> {
  const rows = await db.run((sql) => {
    const before = (table: string) =>
      cursor
        ? sql`and least(${sql(table)}.created_at, ${sql(table)}.indexed_at) <= ${cursor.time}::timestamptz
            and (least(${sql(table)}.created_at, ${sql(table)}.indexed_at), ${sql(table)}.author_id, ${sql(table)}.rkey)
              < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")`
        : sql``;
    return sql`
      with authors as (
        select subject_actor_id as id from follows where author_id = ${viewerId}
        union select ${viewerId}::int4
      )
      select kind, post_actor, post_rkey, by_actor, item_rkey, item_cid, indexed_at, ${sql.unsafe(SORT_TEXT)} as sort_text from (
        select 'post' as kind, p.author_id as post_actor, p.rkey as post_rkey, p.author_id as by_actor, p.rkey as item_rkey, null::text as item_cid, p.indexed_at, p.sort_at
        from authors cross join lateral (
          select p.*, least(p.created_at, p.indexed_at) as sort_at from posts p
          where p.author_id = authors.id ${before('p')}
          order by least(p.created_at, p.indexed_at) desc, p.rkey desc limit ${limit}
        ) as p
        union all
        select 'repost', r.subject_actor_id, r.subject_rkey, r.author_id, r.rkey, r.cid, r.indexed_at, r.sort_at
        from authors cross join lateral (
          select r.*, least(r.created_at, r.indexed_at) as sort_at from reposts r
          where r.author_id = authors.id ${before('r')}
            and exists (select 1 from posts s where s.author_id = r.subject_actor_id and s.rkey = r.subject_rkey)
          order by least(r.created_at, r.indexed_at) desc, r.rkey desc limit ${limit}
        ) as r
      ) as feed
      join actors a on a.id = feed.by_actor and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[]))
      order by sort_at desc, by_actor desc, item_rkey desc
      limit ${limit}`;
  });
  return toFeedRows(rows as unknown as RawFeedRow[]);
}

/** The posts an actor liked, newest like first. */
export async function actorLikes(db: Db, actorId: number, limit: number, cursor: TimeCursor | undefined): Promise<Array<{ post: RecordKey; cursor: TimeCursor }>> {
  const rows = await db.run(
    (sql) => sql`
      select subject_actor_id, subject_rkey, rkey, to_char(least(created_at, indexed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_text
      from likes l
      where l.author_id = ${actorId} and l.subject_collection = 1
        ${cursor ? sql`and least(l.created_at, l.indexed_at) <= ${cursor.time}::timestamptz and (least(l.created_at, l.indexed_at), l.rkey) < (${cursor.time}::timestamptz, ${cursor.rkey}::text collate "C")` : sql``}
      order by least(l.created_at, l.indexed_at) desc, l.rkey desc
      limit ${limit}`,
  );
  return rows.map((row) => ({
    post: { actorId: row.subjectActorId, rkey: row.subjectRkey },
    cursor: { time: row.sortText, actorId, rkey: row.rkey },
  }));
}

export interface InteractionRow {
  readonly actorId: number;
  readonly rkey: string;
  readonly createdAt: string;
  readonly indexedAt: string;
  readonly cursor: TimeCursor;
}

/** Likes or reposts of one record, newest first. */
export async function interactions(
  db: Db,
  table: 'likes' | 'reposts',
  subject: RecordKey,
  limit: number,
  cursor: TimeCursor | undefined,
): Promise<InteractionRow[]> {
  const rows = await db.run(
    (sql) => sql`
      select t.author_id, t.rkey, t.created_at, t.indexed_at,
        to_char(least(t.created_at, t.indexed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_text
      from ${sql(table)} t
      where t.subject_actor_id = ${subject.actorId} and t.subject_rkey = ${subject.rkey}
        ${cursor ? sql`and least(t.created_at, t.indexed_at) <= ${cursor.time}::timestamptz and (least(t.created_at, t.indexed_at), t.author_id, t.rkey) < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")` : sql``}
      order by least(t.created_at, t.indexed_at) desc, t.author_id desc, t.rkey desc
      limit ${limit}`,
  );
  return rows.map((row) => ({
    actorId: row.authorId,
    rkey: row.rkey,
    createdAt: iso(row.createdAt),
    indexedAt: iso(row.indexedAt),
    cursor: { time: row.sortText, actorId: row.authorId, rkey: row.rkey },
  }));
}

/** Posts quoting one post, newest first. */
export async function quotes(db: Db, subject: RecordKey, limit: number, cursor: TimeCursor | undefined): Promise<Array<{ post: RecordKey; cursor: TimeCursor }>> {
  const rows = await db.run(
    (sql) => sql`
      select p.author_id, p.rkey, to_char(least(p.created_at, p.indexed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_text
      from posts p
      where p.quote_actor_id = ${subject.actorId} and p.quote_rkey = ${subject.rkey}
        ${cursor ? sql`and least(p.created_at, p.indexed_at) <= ${cursor.time}::timestamptz and (least(p.created_at, p.indexed_at), p.author_id, p.rkey) < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")` : sql``}
      order by least(p.created_at, p.indexed_at) desc, p.author_id desc, p.rkey desc
      limit ${limit}`,
  );
  return rows.map((row) => ({
    post: { actorId: row.authorId, rkey: row.rkey },
    cursor: { time: row.sortText, actorId: row.authorId, rkey: row.rkey },
  }));
}

/** Follows by an actor (`direction` 'follows') or of an actor ('followers'), or its blocks. */
export async function graphPage(
  db: Db,
  kind: 'follows' | 'followers' | 'blocks',
  actorId: number,
  limit: number,
  cursor: TimeCursor | undefined,
): Promise<Array<{ actorId: number; cursor: TimeCursor }>> {
  const rows = await db.run((sql) => {
    const table = kind === 'blocks' ? 'blocks' : 'follows';
    const sortText = sql.unsafe(`to_char(least(t.created_at, t.indexed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);
    const after = cursor
      ? sql`and least(t.created_at, t.indexed_at) <= ${cursor.time}::timestamptz
          and (least(t.created_at, t.indexed_at), t.author_id, t.rkey) < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")`
      : sql``;
    if (kind === 'followers') {
      return sql`
        select t.author_id as other, t.author_id, t.rkey, ${sortText} as sort_text from follows t
        where t.subject_actor_id = ${actorId} ${after}
        order by least(t.created_at, t.indexed_at) desc, t.author_id desc, t.rkey desc limit ${limit}`;
    }
    return sql`
      select t.subject_actor_id as other, t.author_id, t.rkey, ${sortText} as sort_text from ${sql(table)} t
      where t.author_id = ${actorId} ${after}
      order by least(t.created_at, t.indexed_at) desc, t.author_id desc, t.rkey desc limit ${limit}`;
  });
  return rows.map((row) => ({ actorId: row.other, cursor: { time: row.sortText, actorId: row.authorId, rkey: row.rkey } }));
}

/** Members of a list, newest first. */
export async function listItems(
  db: Db,
  list: RecordKey,
  limit: number,
  cursor: TimeCursor | undefined,
): Promise<Array<{ itemActorId: number; itemRkey: string; subjectId: number; cursor: TimeCursor }>> {
  const rows = await db.run(
    (sql) => sql`
      select i.author_id, i.rkey, i.subject_actor_id, to_char(i.indexed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_text
      from list_items i
      where i.ref_actor_id = ${list.actorId} and i.ref_rkey = ${list.rkey} and i.subject_actor_id is not null
        ${cursor ? sql`and i.indexed_at <= ${cursor.time}::timestamptz and (i.indexed_at, i.author_id, i.rkey) < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")` : sql``}
      order by i.indexed_at desc, i.author_id desc, i.rkey desc
      limit ${limit}`,
  );
  return rows.map((row) => ({
    itemActorId: row.authorId,
    itemRkey: row.rkey,
    subjectId: row.subjectActorId,
    cursor: { time: row.sortText, actorId: row.authorId, rkey: row.rkey },
  }));
}

/** An actor's lists (optionally of some purposes), newest record key first. */
export async function actorLists(db: Db, actorId: number, purposes: readonly string[] | null, limit: number, afterRkey: string | undefined): Promise<string[]> {
  const rows = await db.run(
    (sql) => sql`
      select rkey from lists
      where author_id = ${actorId}
        ${purposes ? sql`and record->>'purpose' = any(${[...purposes]}::text[])` : sql``}
        ${afterRkey !== undefined ? sql`and rkey < ${afterRkey}::text collate "C"` : sql``}
      order by rkey desc limit ${limit}`,
  );
  return rows.map((row) => row.rkey as string);
}

export interface SearchPostsQuery {
  readonly q: string;
  readonly sort: 'latest' | 'top';
  readonly authorId: number | null;
  readonly mentionsDid: string | null;
  readonly since: string | null;
  readonly until: string | null;
  readonly lang: string | null;
  readonly tags: readonly string[];
  readonly limit: number;
  /** latest: keyset; top: offset */
  readonly cursor: TimeCursor | number | undefined;
}

/** Full-text search over post text (PostgreSQL `simple` configuration, web-search syntax). */
export async function searchPosts(db: Db, query: SearchPostsQuery): Promise<Array<{ post: RecordKey; cursor: TimeCursor }>> {
  const rows = await db.run((sql) => {
    const conditions = [sql`to_tsvector('simple'::regconfig, p.text) @@ websearch_to_tsquery('simple'::regconfig, ${query.q})`];
    if (query.authorId !== null) conditions.push(sql`p.author_id = ${query.authorId}`);
    if (query.since) conditions.push(sql`least(p.created_at, p.indexed_at) >= ${query.since}::timestamptz`);
    if (query.until) conditions.push(sql`least(p.created_at, p.indexed_at) < ${query.until}::timestamptz`);
    if (query.lang) conditions.push(sql`${query.lang}::text = any(p.langs)`);
    if (query.mentionsDid) {
      conditions.push(sql`p.facets @> ${JSON.stringify([{ features: [{ did: query.mentionsDid }] }])}::jsonb`);
    }
    for (const tag of query.tags) {
      conditions.push(sql`(${tag}::text = any(p.tags) or p.facets @> ${JSON.stringify([{ features: [{ tag }] }])}::jsonb)`);
    }
    const cursor = query.cursor;
    if (query.sort === 'latest' && typeof cursor === 'object') {
      conditions.push(
        sql`(least(p.created_at, p.indexed_at), p.author_id, p.rkey) < (${cursor.time}::timestamptz, ${cursor.actorId}::int4, ${cursor.rkey}::text collate "C")`,
      );
    }
    const where = conditions.reduce((all, condition) => sql`${all} and ${condition}`);
    const order =
      query.sort === 'top'
        ? sql`order by coalesce(c.like_count, 0) + coalesce(c.repost_count, 0) desc, least(p.created_at, p.indexed_at) desc, p.author_id desc, p.rkey desc
            offset ${typeof cursor === 'number' ? cursor : 0}`
        : sql`order by least(p.created_at, p.indexed_at) desc, p.author_id desc, p.rkey desc`;
    return sql`
      select p.author_id, p.rkey, to_char(least(p.created_at, p.indexed_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_text
      from posts p
      join actors a on a.id = p.author_id and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[]))
      left join post_counts c on c.actor_id = p.author_id and c.rkey = p.rkey
      where ${where}
      ${order}
      limit ${query.limit}`;
  });
  return rows.map((row) => ({
    post: { actorId: row.authorId, rkey: row.rkey },
    cursor: { time: row.sortText, actorId: row.authorId, rkey: row.rkey },
  }));
}

/**
 * Actors by handle prefix or by words of their display name (as the reference AppView's own
 * database search: descriptions are not searched, see sql/00006); exact handle first, then by
 * followers. `typeahead` matches prefixes of words only.
 */
export async function searchActors(db: Db, q: string, typeahead: boolean, limit: number, offset: number): Promise<number[]> {
  const term = q.trim().toLowerCase().replace(/^@/, '');
  const words = term.match(/[\p{L}\p{N}]+/gu) ?? [];
  if (term === '' || words.length === 0) return [];
  const prefix = words.map((word) => `${word}:*`).join(' & ');
  const handlePrefix = `${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await db.run(
    (sql) => sql`
      with matches as (
        select a.id from actors a where a.handle like ${handlePrefix}
        union
        select p.author_id from profiles p
        where p.rkey = 'self' and to_tsvector('simple'::regconfig, coalesce(p.record->>'displayName', ''))
          @@ ${typeahead ? sql`to_tsquery('simple'::regconfig, ${prefix})` : sql`websearch_to_tsquery('simple'::regconfig, ${term})`}
      )
      select a.id from matches m
      join actors a on a.id = m.id and (a.status is null or a.status = any(${[...VISIBLE_STATUSES]}::text[]))
      left join actor_counts c on c.actor_id = a.id
      order by (a.handle = ${term}) desc nulls last, coalesce(c.followers_count, 0) desc, a.id
      limit ${limit} offset ${offset}`,
  );
  return rows.map((row) => row.id as number);
}

/** How many profiles name this starter pack as how their account joined: ever, and in the last week (sql/00007's index). */
export async function starterPackJoins(db: Db, uri: string): Promise<{ joinedAllTimeCount: number; joinedWeekCount: number }> {
  const [row] = await db.run(
    (sql) => sql`
      select count(*)::int as all_time, count(*) filter (where coalesce(created_at, indexed_at) > now() - interval '7 days')::int as week
      from profiles
      where rkey = 'self' and record ? 'joinedViaStarterPack' and record->'joinedViaStarterPack'->>'uri' = ${uri}`,
  );
  return { joinedAllTimeCount: row?.allTime ?? 0, joinedWeekCount: row?.week ?? 0 };
}
