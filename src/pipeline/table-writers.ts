/**
 * One set-based statement per table per batch: the SQL of each record family.
 *
 * For every table: `insertRows` writes all final rows of the batch with one
 * `insert ... select from unnest(...)`, `deleteKeys` removes all keys the batch replaces with one
 * `delete ... using unnest(...)`, and `deleteAuthors` removes everything of deleted accounts. Only
 * the rows the database really inserted or deleted count: each statement folds them into the
 * counter tables itself (`COUNTERS`, data-modifying CTEs) and gives back only how many there
 * were, for the collection's record count. That is what keeps counts exact under replays. Column
 * values travel as array literals built in `pg-array.ts`.
 *
 * Keys already stored: an insert absorbs them (`on conflict do nothing`) only when asked to
 * (`absorb`), and always for the tables another writer also fills (ALWAYS_ABSORBED). Without it
 * a key already there fails the statement with unique_violation (23505), and the batch writer
 * writes the batch again absorbing (batch-writer.ts): the conflict check costs an index search
 * per row before the insert's own (likes: 39 -> 32 ms per 2,000 rows without it, in a micro test
 * on the benchmark machine), and only a replay meets such keys.
 */
import type { PendingQuery, Row } from 'postgres';
import type { TransactionSql } from '../db/database.ts';
import { intArray, textArray } from '../db/pg-array.ts';
import { COUNTERS, type RecordDeltas } from './aggregates.ts';
import { collectionOfTable, type DocumentRow, type PostRow, type SubjectActorRow, type SubjectRecordRow, type Table } from './collections.ts';
import type { RecordRef } from './at-uri.ts';

export interface KeyedRow<R> {
  readonly authorId: number;
  readonly rkey: string;
  readonly cid: string;
  readonly row: R;
}

type Ids = ReadonlyMap<string, number>;
type Fragment = PendingQuery<Row[]>;

export async function deleteKeys(
  sql: TransactionSql,
  table: Table,
  keys: ReadonlyArray<{ readonly authorId: number; readonly rkey: string }>,
  records: RecordDeltas,
): Promise<void> {
  if (keys.length === 0) return;
  const statement = sql`
    delete from ${sql(table)} as t
    using unnest(${intArray(keys.map((key) => key.authorId))}::int4[], ${textArray(keys.map((key) => key.rkey))}::text[]) as d(author_id, rkey)
    where t.author_id = d.author_id and t.rkey = d.rkey`;
  records.add(collectionOfTable(table), -(await counted(sql, table, statement, -1)));
}

export async function deleteAuthors(sql: TransactionSql, table: Table, authorIds: readonly number[], records: RecordDeltas): Promise<void> {
  if (authorIds.length === 0) return;
  const statement = sql`delete from ${sql(table)} as t where t.author_id = any(${intArray(authorIds)}::int4[])`;
  records.add(collectionOfTable(table), -(await counted(sql, table, statement, -1)));
}

/** profiles: the identity worker stores the profile of a new account that the firehose has not brought (identity-store.ts). */
const ALWAYS_ABSORBED: ReadonlySet<Table> = new Set(['profiles']);

export async function insertRows(
  sql: TransactionSql,
  table: Table,
  rows: ReadonlyArray<KeyedRow<unknown>>,
  ids: Ids,
  records: RecordDeltas,
  absorb: boolean,
): Promise<void> {
  if (rows.length === 0) return;
  const conflicts = absorb || ALWAYS_ABSORBED.has(table) ? sql`on conflict do nothing` : sql``;
  records.add(collectionOfTable(table), await counted(sql, table, INSERTERS[table](sql, table, rows, ids, conflicts), 1));
}

/** Runs an insert or delete, moving the table's counters by the rows it really changed; returns how many. */
async function counted(sql: TransactionSql, table: Table, statement: Fragment, sign: 1 | -1): Promise<number> {
  const counting = COUNTERS[table];
  if (!counting) return (await statement).count;
  const [result] = await sql<{ n: number }[]>`
    with changed as (${statement} returning ${sql(counting.columns.map((column) => `t.${column}`))})${counting.updates(sql, sign)}
    select count(*)::int4 as n from changed`;
  return result?.n ?? 0;
}

type Inserter = (sql: TransactionSql, table: Table, rows: ReadonlyArray<KeyedRow<unknown>>, ids: Ids, conflicts: Fragment) => Fragment;

const insertPosts: Inserter = (sql, _table, keyed, ids, conflicts) => {
  const rows = keyed as ReadonlyArray<KeyedRow<PostRow>>;
  const refActor = (ref: RecordRef | null) => (ref ? actorId(ids, ref.did) : null);
  const nested = (values: readonly string[] | null) => (values === null ? null : textArray(values));
  return sql`
    insert into posts as t (author_id, rkey, cid, created_at, text, langs, reply_root_actor_id, reply_root_rkey,
      reply_parent_actor_id, reply_parent_rkey, quote_actor_id, quote_rkey, embed, facets, labels, tags,
      reply_root_cid, reply_parent_cid)
    select a, r, c, ca, txt, l::text[], rra, rrr, rpa, rpr, qa, qr, e::jsonb, f::jsonb, lb::text[], tg::text[], rrc, rpc
    from unnest(
      ${intArray(rows.map((k) => k.authorId))}::int4[], ${textArray(rows.map((k) => k.rkey))}::text[], ${textArray(rows.map((k) => k.cid))}::text[],
      ${textArray(rows.map((k) => k.row.createdAt))}::timestamptz[], ${textArray(rows.map((k) => k.row.text))}::text[],
      ${textArray(rows.map((k) => nested(k.row.langs)))}::text[],
      ${intArray(rows.map((k) => refActor(k.row.replyRoot)))}::int4[], ${textArray(rows.map((k) => k.row.replyRoot?.rkey ?? null))}::text[],
      ${intArray(rows.map((k) => refActor(k.row.replyParent)))}::int4[], ${textArray(rows.map((k) => k.row.replyParent?.rkey ?? null))}::text[],
      ${intArray(rows.map((k) => refActor(k.row.quote)))}::int4[], ${textArray(rows.map((k) => k.row.quote?.rkey ?? null))}::text[],
      ${textArray(rows.map((k) => k.row.embed))}::text[], ${textArray(rows.map((k) => k.row.facets))}::text[],
      ${textArray(rows.map((k) => nested(k.row.labels)))}::text[], ${textArray(rows.map((k) => nested(k.row.tags)))}::text[],
      ${textArray(rows.map((k) => k.row.replyRootCid))}::text[], ${textArray(rows.map((k) => k.row.replyParentCid))}::text[]
    ) as v(a, r, c, ca, txt, l, rra, rrr, rpa, rpr, qa, qr, e, f, lb, tg, rrc, rpc)
    ${conflicts}`;
};

const insertLikes: Inserter = (sql, _table, keyed, ids, conflicts) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectRecordRow>>;
  return sql`
    insert into likes as t (author_id, rkey, subject_actor_id, subject_collection, subject_rkey, created_at)
    select * from unnest(
      ${intArray(rows.map((k) => k.authorId))}::int4[], ${textArray(rows.map((k) => k.rkey))}::text[],
      ${intArray(rows.map((k) => actorId(ids, k.row.subject.did)))}::int4[], ${intArray(rows.map((k) => k.row.subjectCollection))}::int2[],
      ${textArray(rows.map((k) => k.row.subject.rkey))}::text[], ${textArray(rows.map((k) => k.row.createdAt))}::timestamptz[])
    ${conflicts}`;
};

const insertReposts: Inserter = (sql, _table, keyed, ids, conflicts) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectRecordRow>>;
  return sql`
    insert into reposts as t (author_id, rkey, subject_actor_id, subject_rkey, created_at, cid)
    select * from unnest(
      ${intArray(rows.map((k) => k.authorId))}::int4[], ${textArray(rows.map((k) => k.rkey))}::text[],
      ${intArray(rows.map((k) => actorId(ids, k.row.subject.did)))}::int4[], ${textArray(rows.map((k) => k.row.subject.rkey))}::text[],
      ${textArray(rows.map((k) => k.row.createdAt))}::timestamptz[], ${textArray(rows.map((k) => k.cid))}::text[])
    ${conflicts}`;
};

const insertSubjectActors: Inserter = (sql, table, keyed, ids, conflicts) => {
  const rows = keyed as ReadonlyArray<KeyedRow<SubjectActorRow>>;
  return sql`
    insert into ${sql(table)} as t (author_id, rkey, subject_actor_id, created_at)
    select * from unnest(
      ${intArray(rows.map((k) => k.authorId))}::int4[], ${textArray(rows.map((k) => k.rkey))}::text[],
      ${intArray(rows.map((k) => actorId(ids, k.row.subjectDid)))}::int4[], ${textArray(rows.map((k) => k.row.createdAt))}::timestamptz[])
    ${conflicts}`;
};

const insertDocuments: Inserter = (sql, table, keyed, ids, conflicts) => {
  const rows = keyed as ReadonlyArray<KeyedRow<DocumentRow>>;
  return sql`
    insert into ${sql(table)} as t (author_id, rkey, cid, created_at, record, ref_actor_id, ref_rkey, subject_actor_id)
    select a, r, c, ca, rec::jsonb, ra, rr, sa from unnest(
      ${intArray(rows.map((k) => k.authorId))}::int4[], ${textArray(rows.map((k) => k.rkey))}::text[], ${textArray(rows.map((k) => k.cid))}::text[],
      ${textArray(rows.map((k) => k.row.createdAt))}::timestamptz[], ${textArray(rows.map((k) => k.row.record))}::text[],
      ${intArray(rows.map((k) => (k.row.ref ? actorId(ids, k.row.ref.did) : null)))}::int4[], ${textArray(rows.map((k) => k.row.ref?.rkey ?? null))}::text[],
      ${intArray(rows.map((k) => (k.row.subjectDid ? actorId(ids, k.row.subjectDid) : null)))}::int4[]
    ) as v(a, r, c, ca, rec, ra, rr, sa)
    ${conflicts}`;
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
