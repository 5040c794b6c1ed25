/**
 * enumerate: what there is to backfill, listed the way the network's own backfillers list it.
 *
 * A 'relay' row of `backfill_hosts` (sql/00010) is listed with `com.atproto.sync.listHosts`: each
 * host it names becomes a 'pds' row. A relay that does not serve listHosts (an older relay, or a
 * single PDS named as the relay: 404, 501, MethodNotImplemented, or the 401 a PDS answers for a
 * method it would proxy) is listed as a PDS instead: its own `listRepos` names every repo it
 * carries. A 'pds' row is listed with `com.atproto.sync.listRepos` to its last page; each page
 * is written in one transaction with the cursor of the next one, so an enumeration stopped at any
 * point goes on from the page it had not written. Repos listed as not active are recorded as
 * 'inactive' with their status and not fetched, and their actors get that status (as their
 * #account event would set it); a repo listed again keeps its state unless its
 * activity changed.
 *
 * Every request waits for its host's turn (host-politeness.ts) and goes through the guarded
 * client (hosts are named by the relay, a stranger to us in this); answers are bounded (4 MiB a
 * page) and checked field by field: a DID that is not one is counted and skipped. A host that
 * fails is retried with backoff (1 minute doubling to 6 hours) and marked 'failed' after
 * LIST_ATTEMPTS tries.
 */
import type { Database } from '../db/database.ts';
import { textArray } from '../db/pg-array.ts';
import { readBounded } from '../identity/http-get.ts';
import { isDid } from '../lib/syntax.ts';
import type { Outbound } from '../outbound/guarded-fetch.ts';
import type { HostPoliteness } from './host-politeness.ts';
import { xrpcErrorName } from './xrpc-error.ts';

export interface EnumerateOptions {
  readonly db: Database;
  readonly strangers: Outbound;
  readonly hosts: HostPoliteness;
  readonly signal: AbortSignal;
}

export interface HostRow {
  readonly host: string;
  readonly kind: 'relay' | 'pds';
  readonly listCursor: string | null;
  readonly failures: number;
}

export interface ListedCounts {
  hosts: number;
  repos: number;
  invalid: number;
}

const PAGE_LIMIT = 1000;
const PAGE_MAX_BYTES = 4 * 1024 * 1024;
const LIST_ATTEMPTS = 8;
const BACKOFF_MS = 60_000;
const MAX_BACKOFF_MS = 6 * 60 * 60_000;
/** A relay row's cursor is a listHosts cursor, or this prefix and a listRepos cursor once its repos are listed. */
const REPOS_CURSOR = 'repos:';
const HOSTNAME = /^[a-z0-9.-]{1,253}(:\d{1,5})?$/i;
/** what `actors.status` may hold (sql/00002); another status listed reads as 'deactivated', as on the firehose */
const ACTOR_STATUSES: ReadonlySet<string> = new Set(['deactivated', 'takendown', 'suspended', 'desynchronized', 'throttled']);

class ListFailure extends Error {}

/** The base URL a host is asked at: https, or http for the hosts ALLOW_PRIVATE_HOSTS names. */
export function hostBase(host: string, strangers: Outbound): string {
  const name = host.replace(/:\d+$/, '');
  return `${strangers.allowsHttp(name) ? 'http' : 'https'}://${host}`;
}

/** Lists `row` to its end (or until stopped); counts what it listed into `counts`. */
export async function enumerateHost(row: HostRow, options: EnumerateOptions, counts: ListedCounts): Promise<void> {
  const { db } = options;
  try {
    // a relay row whose cursor is a listRepos one has listed its hosts already
    if (row.kind === 'relay' && !row.listCursor?.startsWith(REPOS_CURSOR)) {
      if ((await listHosts(row, options, counts)) === 'listed') return;
      row = { ...row, listCursor: null };
    }
    await listRepos(row, options, counts);
  } catch (error) {
    if (options.signal.aborted) return;
    const message = String((error as Error).message).slice(0, 500);
    const failures = row.failures + 1;
    const delayMs = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(failures - 1, 20));
    await db.run(
      (sql) => sql`
        update backfill_hosts set failures = ${failures}, last_error = ${message},
          state = ${failures >= LIST_ATTEMPTS ? 'failed' : 'listing'}, not_before = now() + ${delayMs} * interval '1 millisecond'
        where host = ${row.host}`,
    );
  }
}

/**
 * 'listed': every host is queued. 'self': the relay does not serve listHosts, or names itself
 * among its hosts (a PDS that is its own relay): its repos are listed next.
 */
async function listHosts(row: HostRow, options: EnumerateOptions, counts: ListedCounts): Promise<'listed' | 'self'> {
  let cursor = row.listCursor;
  let namedSelf = false;
  for (;;) {
    const page = await getJson(options, row.host, 'com.atproto.sync.listHosts', cursor);
    if (page === 'not-served') return 'self';
    const hosts = Array.isArray(page.hosts) ? page.hosts : [];
    const names: string[] = [];
    for (const entry of hosts) {
      const name = (entry as { hostname?: unknown })?.hostname;
      const status = (entry as { status?: unknown })?.status;
      if (typeof name !== 'string' || !HOSTNAME.test(name)) {
        counts.invalid++;
        continue;
      }
      if (name.toLowerCase() === row.host) namedSelf = true;
      else if (status === undefined || status === 'active') names.push(name.toLowerCase());
    }
    const next = typeof page.cursor === 'string' && page.cursor !== '' && hosts.length > 0 ? page.cursor : null;
    const done = next === null && !namedSelf;
    await options.db.begin(async (sql) => {
      if (names.length) {
        await sql`insert into backfill_hosts (host) select * from unnest(${textArray(names)}::text[]) on conflict (host) do nothing`;
      }
      await sql`
        update backfill_hosts set list_cursor = ${next ?? (namedSelf ? REPOS_CURSOR : null)}, failures = 0, last_error = null,
          state = ${done ? 'listed' : 'listing'}, listed_at = case when ${done} then now() else listed_at end
        where host = ${row.host}`;
    });
    counts.hosts += names.length;
    if (next === null) return namedSelf ? 'self' : 'listed';
    cursor = next;
  }
}

async function listRepos(row: HostRow, options: EnumerateOptions, counts: ListedCounts): Promise<void> {
  let cursor = row.listCursor?.startsWith(REPOS_CURSOR) ? row.listCursor.slice(REPOS_CURSOR.length) || null : row.kind === 'relay' ? null : row.listCursor;
  for (;;) {
    const page = await getJson(options, row.host, 'com.atproto.sync.listRepos', cursor);
    if (page === 'not-served') throw new ListFailure(`${row.host} serves neither listHosts nor listRepos`);
    const repos = Array.isArray(page.repos) ? page.repos : [];
    const dids: string[] = [];
    const states: string[] = [];
    const revs: string[] = [];
    const statuses: string[] = [];
    const inactiveDids: string[] = [];
    const inactiveStatuses: string[] = [];
    for (const entry of repos) {
      const { did, rev, active, status } = (entry ?? {}) as { did?: unknown; rev?: unknown; active?: unknown; status?: unknown };
      if (typeof did !== 'string' || !isDid(did) || did.length > 2048) {
        counts.invalid++;
        continue;
      }
      dids.push(did);
      const inactive = active === false;
      states.push(inactive ? 'inactive' : 'queued');
      revs.push(typeof rev === 'string' ? rev.slice(0, 64) : '');
      statuses.push(inactive ? (typeof status === 'string' ? status.slice(0, 64) : 'inactive') : '');
      // a deleted account's records are the firehose's to remove: its status is not written here
      if (inactive && status !== 'deleted') {
        inactiveDids.push(did);
        inactiveStatuses.push(typeof status === 'string' && ACTOR_STATUSES.has(status) ? status : 'deactivated');
      }
    }
    const next = typeof page.cursor === 'string' && page.cursor !== '' && repos.length > 0 ? page.cursor : null;
    await options.db.begin(async (sql) => {
      if (dids.length) {
        await sql`
          insert into backfill_repos (did, host, state, listed_rev, last_error)
          select d, ${row.host}, s, nullif(r, ''), nullif(e, '')
          from unnest(${textArray(dids)}::text[], ${textArray(states)}::text[], ${textArray(revs)}::text[], ${textArray(statuses)}::text[]) as t(d, s, r, e)
          on conflict (did) do update set host = excluded.host, listed_rev = excluded.listed_rev, updated_at = now(),
            state = case when backfill_repos.state in ('queued', 'inactive') then excluded.state else backfill_repos.state end,
            last_error = case when excluded.state = 'inactive' then excluded.last_error else backfill_repos.last_error end`;
      }
      if (inactiveDids.length) {
        // as its #account event would: the index shows the account inactive (its actor is new here
        // when only others' records name it, or none do); a new actor gets its identity work
        await sql`
          with input as (select * from unnest(${textArray(inactiveDids)}::text[], ${textArray(inactiveStatuses)}::text[]) as t(did, status)),
          written as (
            insert into actors (did, status) select did, status from input order by did
            on conflict (did) do update set status = excluded.status where actors.status is distinct from excluded.status
            returning id, xmax = 0 as created
          )
          insert into identity_queue (actor_id, reason) select id, 'new' from written where created on conflict (actor_id) do nothing`;
      }
      await sql`
        update backfill_hosts set list_cursor = ${next === null ? null : row.kind === 'relay' ? `${REPOS_CURSOR}${next}` : next}, repos = repos + ${dids.length}, failures = 0, last_error = null,
          state = ${next === null ? 'listed' : 'listing'}, listed_at = case when ${next === null} then now() else listed_at end
        where host = ${row.host}`;
    });
    counts.repos += dids.length;
    if (next === null) return;
    cursor = next;
  }
}

async function getJson(options: EnumerateOptions, host: string, method: string, cursor: string | null): Promise<Record<string, unknown> | 'not-served'> {
  const { strangers, hosts, signal } = options;
  const url = new URL(`/xrpc/${method}`, hostBase(host, strangers));
  url.searchParams.set('limit', String(PAGE_LIMIT));
  if (cursor !== null) url.searchParams.set('cursor', cursor);
  for (;;) {
    await hosts.take(host, signal);
    const response = await strangers.fetch(url.href, { signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]), redirect: 'manual', headers: { accept: 'application/json' } }).catch((error: unknown) => {
      hosts.failed(host, 'unreachable');
      throw error;
    });
    hosts.observe(host, response);
    if (response.status === 429 || response.status === 503) {
      await response.body?.cancel().catch(() => undefined);
      continue; // observe() paused the host; take() waits it out
    }
    const text = await readBounded(response, PAGE_MAX_BYTES);
    if (response.status === 404 || response.status === 501 || (response.status === 400 && /MethodNotImplemented|XRPCNotSupported/.test(text))) return 'not-served';
    // a PDS proxies the methods it does not serve to its AppView, which wants a user's token: the
    // reference PDS answers listHosts with 401 AuthMissing
    if (response.status === 401 && method === 'com.atproto.sync.listHosts') return 'not-served';
    if (response.status !== 200) {
      hosts.failed(host, `answered ${response.status}`);
      throw new ListFailure(`${method} on ${host} answered ${response.status} ${xrpcErrorName(text)}`.trim());
    }
    hosts.succeeded(host);
    let page: unknown;
    try {
      page = JSON.parse(text);
    } catch {
      throw new ListFailure(`${method} on ${host} answered something that is not JSON`);
    }
    if (typeof page !== 'object' || page === null || Array.isArray(page)) throw new ListFailure(`${method} on ${host} answered no object`);
    return page as Record<string, unknown>;
  }
}
