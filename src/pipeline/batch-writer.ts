/**
 * Writes one batch in one transaction, cursor included.
 *
 * Order inside the transaction: actors (bulk create) -> new actors queued for identity work,
 * deleted accounts' records, per table: replaced keys deleted, final rows inserted (each
 * statement moving the post and actor counters itself), account statuses (and the backfill's
 * inactive repos that are active again, queued for import), repos to resync and identity refreshes
 * -> record counts and the cursor. Because the cursor row is written in the same transaction as
 * the rows, the stored cursor never runs ahead of committed data, and a crash anywhere replays the
 * whole batch, which the idempotent statements absorb. The cursor is compared and set: it moves
 * only from the seq the previous committed batch wrote, so a database that lost committed batches
 * (CursorRegressed) is noticed at the next batch instead of leaving a hole for good.
 *
 * Round trips: the statements of each of the three stages are pipelined on the writer's own
 * connection (`beginOnWriterConnection`: there they stay prepared, which pipelining needs;
 * PostgreSQL runs them in the order sent) and awaited together; within the middle stage of a
 * large batch each table's statements go out as soon as they are built, so PostgreSQL executes
 * while the next table's parameters are built here (a small batch's go out in one send). A batch
 * then costs a handful of round trips instead of one per statement, which is most of what a quiet
 * firehose costs: every round trip wakes PostgreSQL and then this process. When one statement
 * fails, the ones sent after it fail too ("transaction aborted"); the error thrown is
 * always the first in the order sent, so the pipeline sees the real one (a value the database
 * refuses is then bisected to its event, not retried forever).
 *
 * A batch is first written as if every key it creates were new (table-writers.ts: no conflict
 * check, which is most of an insert's extra cost); when a key is already stored (a replay after a
 * restart, or a relay sending an event again) the transaction fails with unique_violation and the
 * same batch is written again, absorbing what is there (`rewritten` in the result).
 */
import type { Database, TransactionSql } from '../db/database.ts';
import { intArray, textArray } from '../db/pg-array.ts';
import type { ActorIds } from './actor-ids.ts';
import { RecordDeltas } from './aggregates.ts';
import type { Batch } from './batch.ts';
import { TABLES } from './collections.ts';
import { deleteAuthors, deleteKeys, insertRows, type KeyedRow } from './table-writers.ts';

export interface BatchWriteResult {
  readonly newActors: number;
  /** The batch met keys already stored and was written a second time, absorbing them. */
  readonly rewritten: boolean;
}

const UNIQUE_VIOLATION = '23505';
/**
 * From this many events a batch's tables are sent one at a time while the next is built; below,
 * building them all takes less than a send and a wake of PostgreSQL per table (at 450 commits/s a
 * batch holds ~45 events, and its sends fell from ~8 to ~5).
 */
const OVERLAP_EVENTS = 500;

/** Where a firehose batch moves the cursor: `previousSeq` is the last seq the pipeline saw committed. */
export interface BatchCursor {
  readonly relayUrl: string;
  readonly previousSeq: number | null;
}

/**
 * The stored cursor is not the one the last committed batch wrote: the database lost committed
 * transactions (PostgreSQL crashed and restarted with synchronous_commit=off, or was restored
 * from a backup) or another process writes the same relay's cursor. Carrying on would leave the
 * lost events unindexed for good; the ingester stops, and the next start resumes from the
 * stored cursor.
 */
export class CursorRegressed extends Error {
  override readonly name = 'CursorRegressed';
}

/**
 * `cursor` null: the batch does not come from a firehose (a whole-repo resync, repo-resync.ts)
 * and moves no cursor.
 */
export async function writeBatch(db: Database, actorIds: ActorIds, cursor: BatchCursor | null, batch: Batch): Promise<BatchWriteResult> {
  try {
    return await writeOnce(db, actorIds, cursor, batch, false);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== UNIQUE_VIOLATION) throw error;
    return await writeOnce(db, actorIds, cursor, batch, true);
  }
}

async function writeOnce(db: Database, actorIds: ActorIds, cursor: BatchCursor | null, batch: Batch, absorb: boolean): Promise<BatchWriteResult> {
  let learnt: ReadonlyArray<readonly [string, number]> = [];
  const result = await db.beginOnWriterConnection(async (sql) => {
    const actors = await actorIds.resolve(sql, batch.dids);
    learnt = actors.learnt;
    const ids = actors.ids;
    const idOf = (did: string): number => {
      const id = ids.get(did);
      if (id === undefined) throw new Error(`no actor id for ${did}`);
      return id;
    };
    const statements: Array<Promise<unknown>> = [];
    // a statement may fail while the next table's are built: it is awaited below (allInOrder),
    // so its rejection must not count as unhandled meanwhile
    const send = (statement: Promise<unknown>): void => {
      statement.catch(() => {});
      statements.push(statement);
    };
    if (actors.created.length) send(enqueueIdentity(sql, actors.created.map(idOf), 'new'));

    const records = new RecordDeltas();
    if (batch.deletedAccounts.size) {
      const authorIds = [...batch.deletedAccounts].map(idOf).sort((a, b) => a - b);
      for (const table of TABLES) send(deleteAuthors(sql, table, authorIds, records));
    }

    for (const [table, changes] of batch.changes) {
      const replaced: Array<{ authorId: number; rkey: string }> = [];
      const rows: Array<KeyedRow<unknown>> = [];
      for (const change of changes.values()) {
        const authorId = idOf(change.did);
        if (change.replace) replaced.push({ authorId, rkey: change.rkey });
        if (change.row && change.cid) rows.push({ authorId, rkey: change.rkey, cid: change.cid, row: change.row });
      }
      const byKey = (a: { authorId: number; rkey: string }, b: { authorId: number; rkey: string }) =>
        a.authorId - b.authorId || (a.rkey < b.rkey ? -1 : a.rkey > b.rkey ? 1 : 0);
      send(deleteKeys(sql, table, replaced.sort(byKey), records));
      send(insertRows(sql, table, rows.sort(byKey), ids, records, absorb));
      // a large batch lets this table's statements go out before building the next table's
      // parameters, so PostgreSQL works while this thread builds (postgres.js sends what a turn of
      // the event loop wrote when it ends); a small one (light traffic) goes out in one send
      if (batch.eventCount >= OVERLAP_EVENTS) await new Promise((resolve) => setImmediate(resolve));
    }
    send(writeAccountStatus(sql, batch, idOf));
    if (batch.resync.size) send(markResync(sql, batch, idOf));
    if (batch.identityRefresh.size) send(enqueueIdentity(sql, [...batch.identityRefresh].map(idOf), 'identity'));
    await allInOrder(statements);

    records.add('actors', actors.created.length);
    const cursorMoved =
      cursor === null
        ? null
        : sql<{ seq: number }[]>`
            insert into firehose_cursor (relay_url, seq, event_time, updated_at)
            values (${cursor.relayUrl}, ${batch.lastSeq}, ${batch.lastTime}, now())
            on conflict (relay_url) do update set seq = excluded.seq, event_time = excluded.event_time, updated_at = now()
            where firehose_cursor.seq is not distinct from ${cursor.previousSeq}::int8
            returning seq`;
    await allInOrder(cursorMoved === null ? [records.write(sql)] : [records.write(sql), cursorMoved]);
    // compare-and-set: the cursor moves only from where the last committed batch left it
    if (cursor !== null && cursorMoved !== null && (await cursorMoved).length !== 1) {
      const [stored] = await sql<{ seq: number }[]>`select seq from firehose_cursor where relay_url = ${cursor.relayUrl}`;
      // this very batch committed once already (its acknowledgement was lost with the connection):
      // writing it again changed nothing
      if (stored?.seq !== batch.lastSeq) {
        throw new CursorRegressed(
          `the stored cursor of ${cursor.relayUrl} is ${stored?.seq ?? 'missing'}, not ${cursor.previousSeq ?? 'missing'} as the last committed batch left it: ` +
            'the database lost committed work (a PostgreSQL crash with synchronous_commit=off, or a restore) or another process follows the same relay',
        );
      }
    }
    return { newActors: actors.created.length, rewritten: absorb };
  });
  actorIds.remember(learnt);
  return result;
}

/** Waits for every pipelined statement; throws the first failure in the order they were sent. */
async function allInOrder(statements: ReadonlyArray<Promise<unknown>>): Promise<void> {
  for (const result of await Promise.allSettled(statements)) {
    if (result.status === 'rejected') throw result.reason;
  }
}

async function enqueueIdentity(sql: TransactionSql, actorIds: number[], reason: string): Promise<void> {
  actorIds.sort((a, b) => a - b);
  await sql`
    insert into identity_queue (actor_id, reason)
    select id, ${reason} from unnest(${intArray(actorIds)}::int4[]) as t(id)
    on conflict (actor_id) do update set reason = excluded.reason, not_before = now(), attempts = 0`;
}

/** Repos the batch found to need a resync; one already waiting keeps its first reason and is marked again. */
async function markResync(sql: TransactionSql, batch: Batch, idOf: (did: string) => number): Promise<void> {
  const entries = [...batch.resync].map(([did, mark]) => [idOf(did), mark] as const).sort(([a], [b]) => a - b);
  await sql`
    insert into repo_resync (actor_id, reason, seq)
    select * from unnest(${intArray(entries.map(([id]) => id))}::int4[], ${textArray(entries.map(([, mark]) => mark.reason))}::text[],
      ${textArray(entries.map(([, mark]) => String(mark.seq)))}::int8[])
    on conflict (actor_id) do update set marked_at = now()`;
}

async function writeAccountStatus(sql: TransactionSql, batch: Batch, idOf: (did: string) => number): Promise<void> {
  if (batch.accountStatus.size === 0) return;
  const entries = [...batch.accountStatus].map(([did, status]) => [idOf(did), status] as const).sort(([a], [b]) => a - b);
  const reactivated = [...batch.accountStatus].filter(([, status]) => status === null).map(([did]) => did).sort();
  await Promise.all([
    sql`
      update actors set status = v.status, handle = case when v.status = 'deleted' then null else actors.handle end
      from unnest(${intArray(entries.map(([id]) => id))}::int4[], ${textArray(entries.map(([, status]) => status))}::text[]) as v(id, status)
      where actors.id = v.id and actors.status is distinct from v.status`,
    // a repo the backfill found inactive (not fetched) is active again: it is imported now
    reactivated.length === 0
      ? null
      : sql`
          update backfill_repos set state = 'queued', attempts = 0, not_before = now(), last_error = null, updated_at = now()
          where did = any(${textArray(reactivated)}::text[]) and state = 'inactive'`,
  ]);
}
