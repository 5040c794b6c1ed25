// identity-store: the SQL of identity work: taking jobs from identity_queue, writing what was
// learnt onto actors (and a fetched profile into profiles), and putting jobs back.
//
// Owns no state; every function takes `sql` first so the worker composes them into short
// transactions (no transaction ever spans a network request); the ones that are a single
// statement (`claimJobs`, `enqueueStale`, `pendingCount`) take the pool and run on their own, and
// `saveResolved` and `saveProfile`, which every resolved job runs, cost one round trip each, their
// statements sent together or merged into one. Promises:
// - `claimJobs` takes due rows in not_before order with `for update skip locked` and leases them:
//   not_before moves to the lease end (millisecond precision, returned as `leaseUntil`) and
//   attempts grows by one, so a crashed worker's jobs come back when the lease ends.
// - Every later step on a job matches `not_before = leaseUntil`: if the pipeline re-enqueued the
//   actor meanwhile (its upsert sets not_before = now()), the row is left alone and the actor is
//   worked on again, because what we resolved may predate the change.
// - `saveResolved` serialises per handle (advisory lock) and takes a verified handle away from any
//   other actor in the same transaction, so actors_handle_unique always holds.
// - `saveProfile` is the firehose's insert (on conflict do nothing) plus the record_counts delta
//   for the rows it really inserted; it never writes a profile for a deleted account.
import type { Sql, TransactionSql } from '../db/database.ts';
import { PROFILE_COLLECTION } from './profile-fetcher.ts';

export type DidStatus = 'ok' | 'tombstoned' | 'not-found' | 'bad-document' | 'unsupported-did' | 'unresolvable';

export interface IdentityJob {
  readonly actorId: number;
  /** null when the actor row is missing (the job is only dropped) */
  readonly did: string | null;
  /** 'new' | 'identity' (the pipeline), 'refresh' (the sweep), 'profile' (identity done, profile to retry) */
  readonly reason: string;
  /** attempts including this one */
  readonly attempts: number;
  readonly leaseUntil: Date;
  /** actors.status: null while active */
  readonly status: string | null;
  readonly handle: string | null;
  /** what the last resolution found, for 'profile' jobs */
  readonly pdsEndpoint: string | null;
  /** why the previous attempt failed, if it did */
  readonly lastError: string | null;
  readonly hasProfile: boolean;
}

export interface ResolvedIdentity {
  /** what the DID document claims, null when it claims nothing usable */
  readonly claimedHandle: string | null;
  /** the claimed handle when it resolves back to the DID, else null */
  readonly verifiedHandle: string | null;
  readonly pdsEndpoint: string | null;
  readonly signingKey: string | null;
}

export interface FetchedProfile {
  readonly cid: string;
  readonly createdAt: string | null;
  /** JSON text, CID links as {"$link"} */
  readonly record: string;
}

export async function claimJobs(
  sql: Sql,
  options: { limit: number; leaseMs: number; exclude: readonly number[] },
): Promise<IdentityJob[]> {
  if (options.limit < 1) return [];
  const rows = await sql<
    Array<Omit<IdentityJob, 'hasProfile'> & { hasProfile: boolean | null }>
  >`
    with due as (
      select actor_id from identity_queue
      where not_before <= now() and actor_id <> all(${[...options.exclude]}::int4[])
      order by not_before
      limit ${options.limit}
      for update skip locked
    )
    update identity_queue q
    set not_before = date_trunc('milliseconds', now()) + ${options.leaseMs} * interval '1 millisecond',
        attempts = q.attempts + 1
    from due left join actors a on a.id = due.actor_id
    where q.actor_id = due.actor_id
    returning q.actor_id, a.did, q.reason, q.attempts, q.not_before as lease_until, a.status, a.handle,
      a.pds_endpoint, a.identity_error as last_error,
      exists (select 1 from profiles p where p.author_id = q.actor_id and p.rkey = 'self') as has_profile`;
  return rows.map((row) => ({ ...row, hasProfile: row.hasProfile === true }));
}

/** Writes a resolved identity; returns how many other actors lost the handle to this one. */
export async function saveResolved(sql: TransactionSql, actorId: number, identity: ResolvedIdentity): Promise<number> {
  const handle = identity.verifiedHandle;
  // postgres.js sends a statement when it is first awaited
  const update = sql`
    update actors set
      handle = ${handle},
      claimed_handle = ${identity.claimedHandle},
      handle_verified_at = ${handle === null ? null : sql`now()`},
      pds_endpoint = ${identity.pdsEndpoint},
      signing_key = ${identity.signingKey},
      did_status = 'ok',
      identity_checked_at = now(),
      identity_error = null
    where id = ${actorId}`;
  if (handle === null) {
    await update;
    return 0;
  }
  // sent together, in this order: PostgreSQL takes the lock first
  const [, losers] = await Promise.all([
    sql`select pg_advisory_xact_lock(hashtextextended(${`aqueduct/handle/${handle}`}, 0))`,
    sql`
      update actors set handle = null, handle_verified_at = null
      where handle = ${handle} and id <> ${actorId}
      returning id`,
    update,
  ]);
  return losers.length;
}

/** A DID without a usable document: marked, its handle dropped, last known PDS and key kept. */
export async function saveDead(sql: TransactionSql, actorId: number, didStatus: Exclude<DidStatus, 'ok'>, error: string): Promise<void> {
  await sql`
    update actors set
      did_status = ${didStatus},
      handle = null,
      handle_verified_at = null,
      identity_checked_at = now(),
      identity_error = ${error}
    where id = ${actorId}`;
}

/** Inserts the profile unless one exists or the account is deleted; true when a row was written. */
export async function saveProfile(sql: TransactionSql, actorId: number, profile: FetchedProfile): Promise<boolean> {
  const [row] = await sql<Array<{ inserted: number }>>`
    with inserted as (
      insert into profiles (author_id, rkey, cid, created_at, record)
      select ${actorId}, 'self', ${profile.cid}, ${profile.createdAt}::timestamptz, ${profile.record}::text::jsonb
      where not exists (select 1 from actors where id = ${actorId} and status = 'deleted')
      on conflict do nothing
      returning author_id
    ), counted as (
      insert into record_counts as c (collection, count)
      select ${PROFILE_COLLECTION}, 1 from inserted
      on conflict (collection) do update set count = c.count + 1
    )
    select count(*)::int as inserted from inserted`;
  return (row?.inserted ?? 0) > 0;
}

/** Removes the job unless it was re-enqueued meanwhile; true when removed. */
export async function finishJob(sql: TransactionSql, job: IdentityJob): Promise<boolean> {
  const rows = await sql`delete from identity_queue where actor_id = ${job.actorId} and not_before = ${job.leaseUntil} returning actor_id`;
  return rows.length > 0;
}

/**
 * Schedules the next attempt after `delayMs` and records why this one failed; `reason` replaces
 * the job's reason (e.g. 'profile' once only the profile is missing).
 */
export async function retryJob(sql: TransactionSql, job: IdentityJob, delayMs: number, error: string, reason: string = job.reason): Promise<void> {
  await sql`
    update identity_queue set not_before = now() + ${Math.max(0, Math.round(delayMs))} * interval '1 millisecond', reason = ${reason}
    where actor_id = ${job.actorId} and not_before = ${job.leaseUntil}`;
  await sql`update actors set identity_error = ${error} where id = ${job.actorId}`;
}

/** Gives the job back without counting the attempt (shutdown, or the host's circuit was open). */
export async function releaseJob(sql: TransactionSql, job: IdentityJob, notBefore: Date | null): Promise<void> {
  await sql`
    update identity_queue set not_before = ${notBefore ?? sql`now()`}, attempts = greatest(attempts - 1, 0)
    where actor_id = ${job.actorId} and not_before = ${job.leaseUntil}`;
}

/**
 * Stops retrying: the job leaves the queue (the refresh sweep brings the actor back after the
 * refresh interval). With `didStatus` the DID is marked dead; without, what was known is kept and
 * an actor never resolved is marked 'unresolvable'.
 */
export async function parkJob(sql: TransactionSql, job: IdentityJob, error: string, didStatus: Exclude<DidStatus, 'ok'> | null): Promise<void> {
  await sql`delete from identity_queue where actor_id = ${job.actorId} and not_before = ${job.leaseUntil}`;
  if (didStatus !== null) {
    await saveDead(sql, job.actorId, didStatus, error);
    return;
  }
  await sql`
    update actors set
      did_status = coalesce(did_status, 'unresolvable'),
      identity_checked_at = now(),
      identity_error = ${error}
    where id = ${job.actorId}`;
}

/** Drops a job whose actor row does not exist. */
export async function dropJob(sql: TransactionSql, job: IdentityJob): Promise<void> {
  await sql`delete from identity_queue where actor_id = ${job.actorId} and not_before = ${job.leaseUntil}`;
}

/**
 * Enqueues up to `limit` actors whose identity is older than `olderThanMs` (or was never
 * checked), stalest first; tombstoned and unsupported DIDs and deleted accounts are left alone.
 */
export async function enqueueStale(sql: Sql, olderThanMs: number, limit: number): Promise<number> {
  const rows = await sql`
    insert into identity_queue (actor_id, reason)
    select a.id, 'refresh' from actors a
    where (a.identity_checked_at is null or a.identity_checked_at < now() - ${olderThanMs} * interval '1 millisecond')
      -- the predicate of actors_identity_refresh, written the same way so the planner uses it
      and (a.did_status is null or a.did_status not in ('tombstoned', 'unsupported-did'))
      and a.status is distinct from 'deleted'
      and not exists (select 1 from identity_queue q where q.actor_id = a.id)
    order by a.identity_checked_at nulls first
    limit ${limit}
    on conflict (actor_id) do nothing
    returning actor_id`;
  return rows.length;
}

/** Actors waiting in the queue (due or backing off). */
export async function pendingCount(sql: Sql): Promise<number> {
  const [row] = await sql<Array<{ count: number }>>`select count(*)::int as count from identity_queue`;
  return row?.count ?? 0;
}
