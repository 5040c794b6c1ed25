/**
 * The backfill: the durable queue of sql/00010 drained beside the live firehose.
 *
 * `request(...)` queues work (every repo of the network through the relay's listHosts, every repo
 * of some hosts, or some DIDs; failed repos again); the loop lists hosts (enumerate.ts), then
 * imports queued repos (repo-import.ts), at most `concurrency` at once and at most `perHost` per
 * host, so one slow PDS holds only its own share while every other host goes on. Nothing here is
 * on the live path: imports have their own pool (`db`), their own writer, and hold a repo's live
 * commits only while it is imported.
 *
 * Settling: outcomes are written back in batches (one statement per SETTLE_EVERY_MS, not one per
 * repo) after the import's writes and its release of live commits are done, so a crash before the
 * row says 'done' only imports the repo again, which is idempotent. A failure backs off (1 minute
 * doubling to 6 hours) with its reason in `last_error`, and is 'failed' after MAX_ATTEMPTS;
 * 'rate-limited' waits for its host without using an attempt; 'moved-on' is fetched again soon.
 * Imports start taking hosts in turn from a read-ahead of each host's due repos, so a host that
 * holds most of the queue does not keep the others waiting. Figures (`figures`) are kept in
 * memory from a count of the rows (at start, after each request and listing, and every minute)
 * plus the outcomes since, so the metrics never scan the queue.
 */
import type { Database } from '../db/database.ts';
import { intArray, textArray } from '../db/pg-array.ts';
import type { Logger } from '../log.ts';
import { sleepUnlessAborted } from '../lib/sleep-unless-aborted.ts';
import type { Outbound } from '../outbound/guarded-fetch.ts';
import { enumerateHost, type HostRow, type ListedCounts } from './enumerate.ts';
import type { HostPoliteness, HostStanding } from './host-politeness.ts';
import { ImportFailure, type ImportOutcome, type ImportPhase, type RepoImporter } from './repo-import.ts';

export type RepoState = 'queued' | 'done' | 'inactive' | 'failed';

export interface BackfillRequest {
  /** every repo of the network: the relay's listHosts, then each host's listRepos */
  readonly all?: boolean;
  /** every repo of these hosts (`host[:port]`) */
  readonly hosts?: readonly string[];
  readonly dids?: readonly string[];
  /** failed repos are queued again */
  readonly retryFailed?: boolean;
}

export interface BackfillOptions {
  readonly db: Database;
  readonly importer: RepoImporter;
  readonly strangers: Outbound;
  readonly hosts: HostPoliteness;
  /** the relay's host (`host[:port]`), listed for `all` */
  readonly relayHost: string;
  readonly log: Logger;
  /** imports at once (BACKFILL_CONCURRENCY) */
  readonly concurrency: number;
  /** imports at once per host (default 4) */
  readonly perHost?: number;
  /** wait between looks at an empty queue (default 2 s) */
  readonly idleMs?: number;
}

export interface BackfillFigures {
  readonly repos: Readonly<Record<RepoState, number>>;
  /** hosts being listed now, and hosts whose listing is not finished (being listed or waiting) */
  readonly hostsListing: number;
  readonly hostsToList: number;
  readonly active: number;
  readonly outcomes: ReadonlyMap<ImportOutcome, number>;
  readonly recordsImported: number;
  readonly recordsChanged: number;
  /** records not indexed: invalid for their lexicon, or undecodable */
  readonly invalidRecords: number;
  readonly bytesFetched: number;
  readonly unverified: number;
  /** over the last RATE_WINDOW_S seconds */
  readonly recordsPerSecond: number;
  readonly reposPerSecond: number;
  /** queued repos at the recent rate; null when idle */
  readonly etaSeconds: number | null;
  readonly troubledHosts: readonly HostStanding[];
  /** seconds imports spent per phase, summed (repo-import.ts IMPORT_PHASES) */
  readonly phaseSeconds: Readonly<Record<ImportPhase, number>>;
  readonly listed: Readonly<ListedCounts>;
}

interface Due {
  readonly did: string;
  readonly host: string | null;
  readonly attempts: number;
}

interface Settled {
  readonly did: string;
  readonly state: RepoState;
  readonly rev: string | null;
  readonly records: number | null;
  readonly attemptsAdded: number;
  readonly delayMs: number;
  readonly error: string | null;
  /** the state it was in: every import starts from 'queued' */
  readonly from: RepoState;
}

const MAX_ATTEMPTS = 6;
const BACKOFF_MS = 60_000;
const MAX_BACKOFF_MS = 6 * 60 * 60_000;
const MOVED_ON_DELAY_MS = 10_000;
/** a rate-limited repo of an unknown host waits this; of a known host, the host's pause (at least MIN_...) */
const RATE_LIMITED_DELAY_MS = 30_000;
const MIN_RATE_LIMITED_DELAY_MS = 1_000;
const SETTLE_EVERY_MS = 250;
const RATE_WINDOW_S = 10;
const ENUMERATIONS_AT_ONCE = 4;
const REFILL_EVERY_MS = 1_000;

export class Backfill {
  readonly #options: BackfillOptions;
  readonly #perHost: number;
  readonly #stopping = new AbortController();
  readonly #active = new Map<string, string>(); // did -> host key
  readonly #activePerHost = new Map<string, number>();
  /** repos due, by listing host ('' for repos queued by DID), read ahead of their turn */
  readonly #ready = new Map<string, Due[]>();
  #lastRefill = -Infinity;
  readonly #listing = new Set<string>();
  readonly #outcomes = new Map<ImportOutcome, number>();
  readonly #counts: Record<RepoState, number> = { queued: 0, done: 0, inactive: 0, failed: 0 };
  readonly #listed: ListedCounts = { hosts: 0, repos: 0, invalid: 0 };
  #settled: Settled[] = [];
  /** recounts and flushes, one at a time */
  #dbTurn: Promise<unknown> = Promise.resolve();
  #recordsImported = 0;
  #recordsChanged = 0;
  #invalidRecords = 0;
  #hostsToList = 0;
  #bytesFetched = 0;
  #unverified = 0;
  /** per second: [records, repos] */
  readonly #window = new Map<number, [number, number]>();
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  #imports = new Set<Promise<void>>();

  constructor(options: BackfillOptions) {
    this.#options = options;
    this.#perHost = options.perHost ?? 4;
  }

  async start(): Promise<void> {
    await this.#recount();
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#wake?.();
    await this.#loop;
    await Promise.allSettled([...this.#imports]);
    await this.#flushSettled().catch((error: unknown) => this.#options.log.warn('backfill outcomes not written: those repos are imported again', { error }));
  }

  /** Queues the work asked for; how many repos and hosts it added. */
  async request(request: BackfillRequest): Promise<{ repos: number; hosts: number }> {
    const { db } = this.#options;
    let repos = 0;
    let hosts = 0;
    await db.begin(async (sql) => {
      if (request.all) {
        const rows = await sql`insert into backfill_hosts (host, kind) values (${this.#options.relayHost}, 'relay')
          on conflict (host) do update set kind = 'relay', state = 'listing', failures = 0, not_before = now()
          where backfill_hosts.state = 'failed' returning host`;
        hosts += rows.length;
      }
      if (request.hosts?.length) {
        const rows = await sql`insert into backfill_hosts (host) select * from unnest(${textArray([...new Set(request.hosts)])}::text[])
          on conflict (host) do update set state = 'listing', list_cursor = null, failures = 0, not_before = now() returning host`;
        hosts += rows.length;
      }
      if (request.dids?.length) {
        const rows = await sql`insert into backfill_repos (did) select * from unnest(${textArray([...new Set(request.dids)])}::text[])
          on conflict (did) do update set state = 'queued', attempts = 0, not_before = now(), last_error = null, updated_at = now() returning did`;
        repos += rows.length;
      }
      if (request.retryFailed) {
        const rows = await sql`update backfill_repos set state = 'queued', attempts = 0, not_before = now(), updated_at = now() where state = 'failed' returning did`;
        repos += rows.length;
        await sql`update backfill_hosts set state = 'listing', failures = 0, not_before = now() where state = 'failed'`;
      }
    });
    await this.#recount();
    this.#wake?.();
    return { repos, hosts };
  }

  get figures(): BackfillFigures {
    const now = Math.floor(Date.now() / 1000);
    let records = 0;
    let repos = 0;
    for (let second = now - RATE_WINDOW_S; second < now; second++) {
      const [r, p] = this.#window.get(second) ?? [0, 0];
      records += r;
      repos += p;
    }
    const reposPerSecond = repos / RATE_WINDOW_S;
    return {
      repos: { ...this.#counts },
      hostsListing: this.#listing.size,
      hostsToList: this.#hostsToList,
      active: this.#active.size,
      outcomes: new Map(this.#outcomes),
      recordsImported: this.#recordsImported,
      recordsChanged: this.#recordsChanged,
      invalidRecords: this.#invalidRecords,
      bytesFetched: this.#bytesFetched,
      unverified: this.#unverified,
      recordsPerSecond: records / RATE_WINDOW_S,
      reposPerSecond,
      etaSeconds: reposPerSecond > 0 ? Math.round(this.#counts.queued / reposPerSecond) : null,
      troubledHosts: this.#options.hosts.troubled(10),
      phaseSeconds: Object.fromEntries(Object.entries(this.#options.importer.phaseMs).map(([phase, ms]) => [phase, Math.round(ms) / 1000])) as Record<ImportPhase, number>,
      listed: { ...this.#listed },
    };
  }

  /**
   * The counts from the rows, plus the outcomes not written to them yet (settled while the count
   * ran). One recount or flush at a time, so an outcome is in the rows or in the list, never both.
   */
  #recount(): Promise<void> {
    const turn = this.#dbTurn.then(async () => {
      await this.#writeSettled();
      const [rows, hosts] = await this.#options.db.run((sql) =>
        Promise.all([
          sql<{ state: RepoState; n: number }[]>`select state, count(*)::int as n from backfill_repos group by state`,
          sql<{ n: number }[]>`select count(*)::int as n from backfill_hosts where state = 'listing'`,
        ]),
      );
      this.#hostsToList = hosts[0]?.n ?? 0;
      for (const state of Object.keys(this.#counts) as RepoState[]) this.#counts[state] = rows.find((row) => row.state === state)?.n ?? 0;
      for (const settled of this.#settled) this.#move(settled);
    });
    this.#dbTurn = turn.catch(() => undefined);
    return turn;
  }

  #flushSettled(): Promise<void> {
    const turn = this.#dbTurn.then(() => this.#writeSettled());
    this.#dbTurn = turn.catch(() => undefined);
    return turn;
  }

  async #run(): Promise<void> {
    const { log } = this.#options;
    const signal = this.#stopping.signal;
    let lastSettle = 0;
    let lastRecount = Date.now();
    while (!signal.aborted) {
      let started = 0;
      try {
        await this.#startEnumerations();
        started = await this.#startImports();
        if (performance.now() - lastSettle >= SETTLE_EVERY_MS) {
          lastSettle = performance.now();
          await this.#flushSettled();
        }
        // what other processes queued (the backfill command, POST /api/backfill) shows up here
        if (Date.now() - lastRecount > 60_000) {
          lastRecount = Date.now();
          await this.#recount();
        }
      } catch (error) {
        if (!signal.aborted) log.warn('backfill queue unreadable', { error });
        await sleepUnlessAborted(1_000, signal);
      }
      if (started === 0) await this.#sleep(this.#active.size > 0 || this.#settled.length > 0 ? SETTLE_EVERY_MS : (this.#options.idleMs ?? 2_000));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).then(() => {
      this.#wake = null;
    });
  }

  async #startEnumerations(): Promise<void> {
    if (this.#listing.size >= ENUMERATIONS_AT_ONCE) return;
    const rows = await this.#options.db.run(
      (sql) => sql<{ host: string; kind: 'relay' | 'pds'; listCursor: string | null; failures: number }[]>`
        select host, kind, list_cursor, failures from backfill_hosts
        where state = 'listing' and not_before <= now() and not (host = any(${textArray([...this.#listing])}::text[]))
        order by kind = 'relay' desc, not_before limit ${ENUMERATIONS_AT_ONCE - this.#listing.size}`,
    );
    for (const row of rows) {
      const host: HostRow = { host: row.host, kind: row.kind, listCursor: row.listCursor, failures: row.failures };
      this.#listing.add(row.host);
      void enumerateHost(host, { db: this.#options.db, strangers: this.#options.strangers, hosts: this.#options.hosts, signal: this.#stopping.signal }, this.#listed)
        .catch((error: unknown) => this.#options.log.warn('listing a host failed', { host: row.host, error }))
        .finally(() => {
          this.#listing.delete(row.host);
          void this.#recount().catch(() => undefined);
          this.#wake?.();
        });
    }
  }

  /**
   * Starts imports while slots are free, taking hosts in turn (at most `perHost` each, none from a
   * paused host), so a host with most of the queue never holds every slot. The repos due are read
   * per host into `#ready`, a few slots' worth each, at most once a second.
   */
  async #startImports(): Promise<number> {
    if (this.#active.size >= this.#options.concurrency) return 0;
    let started = this.#startReady();
    // slots still free: read ahead, at once when nothing is ready, else at most once a second
    // (what is ready may all belong to paused or busy hosts)
    const nothingReady = [...this.#ready.values()].every((repos) => repos.length === 0);
    if (this.#active.size < this.#options.concurrency && (nothingReady || performance.now() - this.#lastRefill > REFILL_EVERY_MS)) {
      await this.#refill();
      started += this.#startReady();
    }
    return started;
  }

  /** Starts ready repos, taking hosts in turn, while slots are free. */
  #startReady(): number {
    let started = 0;
    let progressed = true;
    while (progressed && this.#active.size < this.#options.concurrency) {
      progressed = false;
      for (const [hostKey, repos] of this.#ready) {
        if (this.#active.size >= this.#options.concurrency) break;
        if (repos.length === 0) {
          this.#ready.delete(hostKey);
          continue;
        }
        if ((this.#activePerHost.get(hostKey) ?? 0) >= this.#perHost || (hostKey !== '' && this.#options.hosts.pausedFor(hostKey) > 0)) continue;
        this.#begin(repos.shift()!, hostKey);
        started++;
        progressed = true;
      }
    }
    return started;
  }

  async #refill(): Promise<void> {
    this.#lastRefill = performance.now();
    const taken = [...this.#active.keys(), ...this.#settled.map((settled) => settled.did)];
    for (const repos of this.#ready.values()) for (const repo of repos) taken.push(repo.did);
    const perHost = Math.max(this.#perHost * 4, this.#options.concurrency * 2);
    const due = await this.#options.db.run(
      (sql) => sql<Due[]>`
        select r.did, r.host, r.attempts from backfill_hosts h cross join lateral (
          select did, host, attempts from backfill_repos
          where host = h.host and state = 'queued' and not_before <= now() and not (did = any(${textArray(taken)}::text[]))
          order by not_before limit ${perHost}) r
        union all
        (select did, host, attempts from backfill_repos
          where host is null and state = 'queued' and not_before <= now() and not (did = any(${textArray(taken)}::text[]))
          order by not_before limit ${perHost})`,
    );
    for (const repo of due) {
      const hostKey = repo.host ?? '';
      const repos = this.#ready.get(hostKey);
      if (repos === undefined) this.#ready.set(hostKey, [repo]);
      else if (repos.length < perHost) repos.push(repo);
    }
  }

  #begin(repo: Due, hostKey: string): void {
    this.#active.set(repo.did, hostKey);
    this.#activePerHost.set(hostKey, (this.#activePerHost.get(hostKey) ?? 0) + 1);
    const running = this.#import(repo).finally(() => {
      this.#active.delete(repo.did);
      this.#activePerHost.set(hostKey, (this.#activePerHost.get(hostKey) ?? 1) - 1);
      this.#imports.delete(running);
      this.#wake?.();
    });
    this.#imports.add(running);
  }

  async #import(repo: Due): Promise<void> {
    const signal = this.#stopping.signal;
    let outcome: ImportOutcome;
    try {
      const result = await this.#options.importer.import(repo.did, signal);
      outcome = result.outcome;
      this.#recordsImported += result.records;
      this.#recordsChanged += result.changed;
      this.#invalidRecords += result.invalid;
      this.#bytesFetched += result.carBytes;
      if (result.unverified) this.#unverified++;
      this.#tally(result.records);
      this.#settle({ did: repo.did, state: 'done', rev: result.rev, records: result.records, attemptsAdded: 0, delayMs: 0, error: result.outcome === 'repo-gone' ? 'repo-gone' : null, from: 'queued' });
    } catch (error) {
      if (signal.aborted) return; // stopped part way: still queued, imported again next start
      outcome = error instanceof ImportFailure ? error.reason : 'write-failed';
      const message = String((error as Error).message).slice(0, 500);
      if (outcome === 'rate-limited' || outcome === 'moved-on') {
        // rate-limited: as long as the host said (its pause, from Retry-After or ratelimit-reset),
        // not a fixed wait: a host that asks for a second back is asked again after a second
        const delayMs = outcome === 'moved-on' ? MOVED_ON_DELAY_MS : repo.host === null ? RATE_LIMITED_DELAY_MS : Math.max(MIN_RATE_LIMITED_DELAY_MS, this.#options.hosts.pausedFor(repo.host));
        this.#settle({ did: repo.did, state: 'queued', rev: null, records: null, attemptsAdded: 0, delayMs, error: message, from: 'queued' });
      } else {
        const attempts = repo.attempts + 1;
        const state: RepoState = attempts >= MAX_ATTEMPTS ? 'failed' : 'queued';
        this.#settle({ did: repo.did, state, rev: null, records: null, attemptsAdded: 1, delayMs: Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (attempts - 1)), error: `${outcome}: ${message}`, from: 'queued' });
        this.#options.log.warn('backfill of a repo failed', { did: repo.did, outcome, error: message, attempts, gaveUp: state === 'failed' });
      }
    }
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
  }

  #tally(records: number): void {
    const second = Math.floor(Date.now() / 1000);
    const slot = this.#window.get(second) ?? [0, 0];
    slot[0] += records;
    slot[1] += 1;
    this.#window.set(second, slot);
    for (const key of this.#window.keys()) if (key < second - RATE_WINDOW_S - 1) this.#window.delete(key);
  }

  #settle(settled: Settled): void {
    this.#settled.push(settled);
    this.#move(settled);
  }

  #move(settled: Settled): void {
    if (settled.state === settled.from) return;
    this.#counts[settled.from]--;
    this.#counts[settled.state]++;
  }

  async #writeSettled(): Promise<void> {
    if (this.#settled.length === 0) return;
    // kept in the list until the rows say so: #startImports skips the repos listed there, and a
    // repo taken out before its row is written looks due again (imported twice at once, a failure
    // counted as two attempts)
    const batch = this.#settled.slice();
    await this.#options.db.run(
      (sql) => sql`
        update backfill_repos r set state = v.state, rev = coalesce(v.rev, r.rev), records = coalesce(v.records, r.records),
          attempts = r.attempts + v.added, last_error = v.error, updated_at = now(),
          not_before = now() + v.delay * interval '1 millisecond'
        from unnest(${textArray(batch.map((s) => s.did))}::text[], ${textArray(batch.map((s) => s.state))}::text[],
          ${textArray(batch.map((s) => s.rev))}::text[], ${intArray(batch.map((s) => s.records))}::int4[],
          ${intArray(batch.map((s) => s.attemptsAdded))}::int4[], ${intArray(batch.map((s) => s.delayMs))}::int4[],
          ${textArray(batch.map((s) => s.error))}::text[]) as v(did, state, rev, records, added, delay, error)
        where r.did = v.did`,
    );
    this.#settled.splice(0, batch.length);
  }
}
