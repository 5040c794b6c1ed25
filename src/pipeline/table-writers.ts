/**
 * One set-based statement per table per batch: the SQL of each record family.
 *
 * For every table: `insertRows` writes all final rows of the batch with one
 * `insert ... select from unnest(...) on conflict do nothing returning`, `deleteKeys` removes all
 * keys the batch replaces with one `delete ... using unnest(...) returning`, and
 * `deleteAuthors` removes everything of deleted accounts. Each feeds the rows the database really
 * inserted or deleted into the aggregate deltas (+1 / -1), which is what keeps counts exact under
 * replays.
 */
import type { TransactionSql } from '../db/database.ts';
import type { AggregateDeltas } from './aggregates.ts';
import {
  SUBJECT_COLLECTIONS,
  collectionOfTable,
  type DocumentRow,
  type PostRow,
  type SubjectActorRow,
  type SubjectRecordRow,
  type Table,
} from './collections.ts';
import type { RecordRef } from './at-uri.ts';

export interface KeyedRow<R> {
  readonly authorId: number;
  readonly rkey: string;
  readonly cid: string;
  readonly row: R;
}

type Ids = ReadonlyMap<string, number>;
type Returned = Record<string, unknown>;

const POST_SUBJECT = SUBJECT_COLLECTIONS['app.bsky.feed.post'];

/** The columns each table returns from deletes, and how a returned row moves the counters. */
const COUNTING: Readonly<Record<Table, { readonly columns: readonly string[]; readonly count: (row: Returned, sign: number, deltas: AggregateDeltas) => void }>> = {
  posts: {
    columns: ['author_id', 'reply_parent_actor_id', 'reply_parent_rkey', 'quote_actor_id', 'quote_rkey'],
    count: (row, sign, deltas) => {
      deltas.actor(row.authorId as number, 'posts', sign);
      deltas.post(row.replyParentActorId as number | null, row.replyParentRkey as string | null, 'reply', sign);
      deltas.post(row.quoteActorId as number | null, row.quoteRkey as string | null, 'quote', sign);
    },
  },
  likes: {
    columns: ['subject_actor_id', 'subject_collection', 'subject_rkey'],
    count: (row, sign, deltas) => {
      if (row.subjectCollection === POST_SUBJECT) deltas.post(row.subjectActorId as number, row.subjectRkey as string, 'like', sign);
    },
  },
  reposts: {
    columns: ['subject_actor_id', 'subject_rkey'],
    count: (row, sign, deltas) => deltas.post(row.subjectActorId as number, row.subjectRkey as string, 'repost', sign),
  },
  follows: {
    columns: ['author_id', 'subject_actor_id'],
    count: (row, sign, deltas) => {
      deltas.actor(row.authorId as number, 'follows', sign);
      deltas.actor(row.subjectActorId as number, 'followers', sign);
    },
  },
  blocks: { columns: ['author_id'], count: () => {} },
  profiles: { columns: ['author_id'], count: () => {} },
  lists: { columns: ['author_id'], count: () => {} },
  list_items: { columns: ['author_id'], count: () => {} },
  list_blocks: { columns: ['author_id'], count: () => {} },
  feed_generators: { columns: ['author_id'], count: () => {} },
  threadgates: { columns: ['author_id'], count: () => {} },
  postgates: { columns: ['author_id'], count: () => {} },
  starter_packs: { columns: ['author_id'], count: () => {} },
  labelers: { columns: ['author_id'], count: () => {} },
};

export async function deleteKeys(
  sql: TransactionSql,
  table: Table,
  keys: ReadonlyArray<{ readonly authorId: number; readonly rkey: string }>,
  deltas: AggregateDeltas,
): Promise<void> {
  if (keys.length === 0) return;
  const rows = await sql<Returned[]>`
    delete from ${sql(table)} as t
    using unnest(${keys.map((key) => key.authorId)}::int4[], ${keys.map((key) => key.rkey)}::text[]) as d(author_id, rkey)
    where t.author_id = d.author_id and t.rkey = d.rkey
    returning ${returningColumns(sql, table)}`;
  countRows(table, rows, -1, deltas);
}

export async function deleteAuthors(sql: TransactionSql, table: Table, authorIds: readonly number[], deltas: AggregateDeltas): Promise<void> {
  if (authorIds.length === 0) return;
  const rows = await sql<Returned[]>`
    delete from ${sql(table)} as t where t.author_id = any(${authorIds}::int4[])
    returning ${returningColumns(sql, table)}`;
  countRows(table, rows, -1, deltas);
}

export async function insertRows(sql: TransactionSql, table: Table, rows: ReadonlyArray<KeyedRow<unknown>>, ids: Ids, deltas: AggregateDeltas): Promise<void> {
  if (rows.length === 0) return;
  countRows(table, await INSERTERS[table](sql, table, rows, ids), 1, deltas);
}

function returningColumns(sql: TransactionSql, table: Table) {
  return sql(COUNTING[table].columns.map((column) => `t.${column}`));
}

/** Every row really inserted (+1) or deleted (-1) moves its counters and its collection's count. */
function countRows(table: Table, rows: readonly Returned[], sign: 1 | -1, deltas: AggregateDeltas): void {
  const { count } = COUNTING[table];
  for (const row of rows) count(row, sign, deltas);
  deltas.record(collectionOfTable(table), sign * rows.length);
}

type Inserter = (sql: TransactionSql, table: Table, rows: ReadonlyArray<KeyedRow<unknown>>, ids: Ids) => Promise<Returned[]>;

const insertPosts: Inserter = (sql, _table, keyed, ids) => {
  const rows = keyed as ReadonlyArray<KeyedRow<PostRow>>;
  const refActor = (ref: RecordRef | null) => (ref ? actorId(ids, ref.did) : null);
  return sql<Returned[]>`
    insert into posts (author_id, rkey, cid, created_at, text, langs, reply_root_actor_id, reply_root_rkey,
      reply_parent_actor_id, reply_parent_rkey, quote_actor_id, quote_rkey, embed, facets, labels, tags,
      reply_root_cid, reply_parent_cid)
    select a, r, c, ca, t, l::text[], rra, rrr, rpa, rpr, qa, qr, e::jsonb, f::jsonb, lb::text[], tg::text[], rrc, rpc
    from unnest(
      ${rows.map((k) => k.authorId)}::int4[], ${rows.map((k) => k.rkey)}::text[], ${rows.map((k) => k.cid)}::text[],
      ${rows.map((k) => k.row.createdAt)}::timestamptz[], ${rows.map((k) => k.row.text)}::text[],
      ${rows.map((k) => pgArray(k.row.langs))}::text[],
      ${rows.map((k) => refActor(k.row.replyRoot))}::int4[], ${rows.map((k) => k.row.replyRoot?.rkey ?? null)}::text[],
      ${rows.map((k) => refActor(k.row.replyParent))}::int4[], ${rows.map((k) => k.row.replyParent?.rkey ?? null)}::text[],
      ${rows.map((k) => refActor(k.row.quote))}::int4[], ${rows.map((k) => k.row.quote?.rkey ?? null)}::text[],
      ${rows.map((k) => k.row.embed)}::text[], ${rows.map((k) => k.row.facets)}::text[],
      ${rows.map((k) => pgArray(k.row.labels))}::text[], ${rows.map((k) => pgArray(k.row.tags))}::text[],
      ${rows.map((k) => k.row.replyRootCid)}::text[], ${rows.map((k) => k.row.replyParentCid)}::text[]
    ) as v(a, r, c, ca, t, l, rra, rrr, rpa, rpr, qa, qr, e, f, lb, tg, rrc, rpc)
    on conflict do nothing
    returning ${sql(COUNTING.posts.columns)}`;
};

const insertLikes: Inserter = (sql, _table, keyed, ids) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectRecordRow>>;
  return sql<Returned[]>`
    insert into likes (author_id, rkey, subject_actor_id, subject_collection, subject_rkey, created_at)
    select * from unnest(
      ${rows.map((k) => k.authorId)}::int4[], ${rows.map((k) => k.rkey)}::text[],
      ${rows.map((k) => actorId(ids, k.row.subject.did))}::int4[], ${rows.map((k) => k.row.subjectCollection)}::int2[],
      ${rows.map((k) => k.row.subject.rkey)}::text[], ${rows.map((k) => k.row.createdAt)}::timestamptz[])
    on conflict do nothing
    returning ${sql(COUNTING.likes.columns)}`;
};

const insertReposts: Inserter = (sql, _table, keyed, ids) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectRecordRow>>;
  return sql<Returned[]>`
    insert into reposts (author_id, rkey, subject_actor_id, subject_rkey, created_at)
    select * from unnest(
      ${rows.map((k) => k.authorId)}::int4[], ${rows.map((k) => k.rkey)}::text[],
      ${rows.map((k) => actorId(ids, k.row.subject.did))}::int4[], ${rows.map((k) => k.row.subject.rkey)}::text[],
      ${rows.map((k) => k.row.createdAt)}::timestamptz[])
    on conflict do nothing
    returning ${sql(COUNTING.reposts.columns)}`;
};

const insertSubjectActors: Inserter = (sql, table, keyed, ids) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectActorRow>>;
  return sql<Returned[]>`
    insert into ${sql(table)} (author_id, rkey, subject_actor_id, created_at)
    select * from unnest(
      ${rows.map((k) => k.authorId)}::int4[], ${rows.map((k) => k.rkey)}::text[],
      ${rows.map((k) => actorId(ids, k.row.subjectDid))}::int4[], ${rows.map((k) => k.row.createdAt)}::timestamptz[])
    on conflict do nothing
    returning ${sql(COUNTING[table].columns)}`;
};

const insertDocuments: Inserter = (sql, table, keyed, ids) => {
  const rows = keyed as ReadonlyArray<KeyedRow<DocumentRow>>;
  return sql<Returned[]>`
    insert into ${sql(table)} (author_id, rkey, cid, created_at, record, ref_actor_id, ref_rkey, subject_actor_id)
    select a, r, c, ca, rec::jsonb, ra, rr, sa from unnest(
      ${rows.map((k) => k.authorId)}::int4[], ${rows.map((k) => k.rkey)}::text[], ${rows.map((k) => k.cid)}::text[],
      ${rows.map((k) => k.row.createdAt)}::timestamptz[], ${rows.map((k) => k.row.record)}::text[],
      ${rows.map((k) => (k.row.ref ? actorId(ids, k.row.ref.did) : null))}::int4[], ${rows.map((k) => k.row.ref?.rkey ?? null)}::text[],
      ${rows.map((k) => (k.row.subjectDid ? actorId(ids, k.row.subjectDid) : null))}::int4[]
    ) as v(a, r, c, ca, rec, ra, rr, sa)
    on conflict do nothing
    returning ${sql(COUNTING[table].columns)}`;
};

const INSERTERS: Readonly<Record<Table, Inserter>> = {
  posts: insertPosts,
  likes: insertLikes,
  reposts: insertReposts,
  follows: insertSubjectActors,
  blocks: insertSubjectActors,
  profiles: insertDocuments,
  lists: insertDocuments,
  list_items: insertDocuments,
  list_blocks: insertDocuments,
  feed_generators: insertDocuments,
  threadgates: insertDocuments,
  postgates: insertDocuments,
  starter_packs: insertDocuments,
  labelers: insertDocuments,
};

function actorId(ids: Ids, did: string): number {
  const id = ids.get(did);
  if (id === undefined) throw new Error(`no actor id for ${did}: the batch did not resolve every DID it references`);
  return id;
}

/** A PostgreSQL array literal, for passing a text[] per row through unnest (which flattens arrays). */
export function pgArray(values: readonly string[] | null): string | null {
  if (values === null) return null;
  return `{${values.map((value) => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
}
