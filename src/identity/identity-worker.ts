// identity-worker: drains identity_queue: DID document, handle checked both ways, profile if the
// firehose has not brought one, all off the hot path.
//
// Owns the loop that takes jobs and the jobs in flight. Promises:
// - At most `maxConcurrent` (MAX_CONCURRENT_USER_CREATIONS) jobs are in flight; `stats.active` and
//   `stats.limit` show that live, `stats.pending` the queue length (refreshed every
//   `statsIntervalMs`).
// - No database connection is held while a job waits on the network: a job is claim (one short
//   transaction) -> network (DID document, handle, profile) -> save (one short transaction).
// - Every request goes through the HostGate: PLC at `plcRateLimit`/s, every other host at
//   `hostRateLimit`/s, and a circuit breaker per host. While the PLC circuit is open no job is
//   taken (the queue just grows in PostgreSQL); when it half-opens one job probes it.
// - Failures: a tombstoned, unsupported or broken DID is marked and leaves the queue at once; a
//   not-found DID or a transient failure (timeout, network, 5xx, handle lookup, PDS) is retried
//   with exponential backoff (`backoffBaseMs` doubling, capped at `backoffMaxMs`, jittered) and
//   parked after `maxAttempts`; identity work refused by an open circuit, or interrupted by
//   shutdown, goes back without counting an attempt. When only the profile fetch fails, the
//   identity is saved at once and the job continues as reason 'profile' (the PDS alone is asked
//   again; here an open circuit does count, so users of a dead PDS are parked, not cycled).
// - Actors whose identity is older than `refreshHours` are re-enqueued by a sweep every
//   `sweepIntervalMs`, at most `sweepBatch` at a time and only while the queue is short.
// - `start(signal)` returns the loop's promise, which settles only after every job in flight has;
//   `stop()` aborts and awaits it. The loop survives database and network errors (logged, backed
//   off); it rejects only on a bug.
import type { Database } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { CircuitBreakers, CircuitOpenError, type CircuitBreakerOptions } from './circuit-breaker.ts';
import { DidResolutionError, DidResolver, type ResolvedDid } from './did-resolver.ts';
import { HandleResolutionError, HandleResolver, type ResolveTxt } from './handle-resolver.ts';
import { HostGate, type Outcome, type Verdict } from './host-gate.ts';
import { HttpGetError, type FetchLike } from './http-get.ts';
import {
  claimJobs,
  dropJob,
  enqueueStale,
  finishJob,
  parkJob,
  pendingCount,
  releaseJob,
  retryJob,
  saveProfile,
  saveResolved,
  type DidStatus,
  type IdentityJob,
} from './identity-store.ts';
import { ProfileFetcher, ProfileFetchError, type ProfileResult } from './profile-fetcher.ts';
import { outbound, type Outbound } from '../outbound/guarded-fetch.ts';
import { HostRateLimiter } from './rate-limiter.ts';

export const IDENTITY_DEFAULTS = Object.freeze({
  refreshHours: 24,
  plcRateLimit: 10,
  hostRateLimit: 10,
  timeoutMs: 5000,
  maxAttempts: 10,
  backoffBaseMs: 1000,
  backoffMaxMs: 15 * 60_000,
  leaseMs: 5 * 60_000,
  pollMs: 500,
  statsIntervalMs: 5000,
  sweepIntervalMs: 60_000,
  sweepBatch: 1000,
});

export interface IdentityWorkerOptions {
  db: Database;
  log: Logger;
  /** PLC_URL */
  plcUrl: string;
  /** HANDLE_RESOLVER_URL: a trusted com.atproto.identity.resolveHandle service, or null */
  handleResolverUrl: string | null;
  /** MAX_CONCURRENT_USER_CREATIONS: jobs in flight at most */
  maxConcurrent: number;
  /** IDENTITY_REFRESH_HOURS (default 24) */
  refreshHours?: number;
  /** PLC_RATE_LIMIT, requests per second to the PLC directory (default 10) */
  plcRateLimit?: number;
  /** requests per second to any other host: PDSes, did:web, handle hosts (default 10) */
  hostRateLimit?: number;
  /** per request (default 5000) */
  timeoutMs?: number;
  /** attempts before a job is parked (default 10) */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** how long a claimed job stays invisible to other claimers (default 5 min) */
  leaseMs?: number;
  /** pause when nothing is due (default 500) */
  pollMs?: number;
  statsIntervalMs?: number;
  sweepIntervalMs?: number;
  sweepBatch?: number;
  breaker?: CircuitBreakerOptions;
  /** for the PLC directory and HANDLE_RESOLVER_URL (injectable for tests) */
  fetch?: FetchLike;
  /** the guarded client for PDSes, did:web and handle hosts (default: no private hosts) */
  strangers?: Outbound;
  resolveTxt?: ResolveTxt;
  now?: () => number;
  random?: () => number;
}

export interface IdentityWorkerStats {
  /** jobs in flight (activeUserCreations) */
  readonly active: number;
  /** MAX_CONCURRENT_USER_CREATIONS (maxConcurrentUserCreations) */
  readonly limit: number;
  /** active / limit in percent (userCreationUtilization) */
  readonly utilization: number;
  /** actors in identity_queue at the last count (pendingUserCreationOpsCount) */
  readonly pending: number;
  readonly completed: number;
  readonly handlesVerified: number;
  readonly handlesInvalid: number;
  /** handles taken from another actor that claimed them */
  readonly handlesTaken: number;
  readonly profilesFetched: number;
  readonly profilesAbsent: number;
  readonly profilesInvalid: number;
  readonly retried: number;
  readonly parked: number;
  /** DIDs marked tombstoned, unsupported or broken */
  readonly deadDids: number;
  /** jobs given back uncounted (open circuit, shutdown) */
  readonly released: number;
  readonly staleEnqueued: number;
  /** failures by fixed reason */
  readonly failures: Readonly<Record<string, number>>;
  readonly openCircuits: number;
}

type Counters = { -readonly [K in Exclude<keyof IdentityWorkerStats, 'active' | 'limit' | 'utilization' | 'pending' | 'failures' | 'openCircuits'>]: number };

const DEAD_REASONS: ReadonlyMap<string, Exclude<DidStatus, 'ok'>> = new Map([
  ['tombstoned', 'tombstoned'],
  ['unsupported-did', 'unsupported-did'],
  ['bad-document', 'bad-document'],
]);

/** Whether a DID resolution outcome says anything bad about the host that answered. */
const didVerdict = (outcome: Outcome<ResolvedDid>): Verdict => {
  if (outcome.ok || !(outcome.error instanceof DidResolutionError)) return outcome.ok ? 'success' : 'failure';
  const { reason, status } = outcome.error;
  if (reason === 'timeout' || reason === 'network') return 'failure';
  if (reason === 'http-status') return status !== null && (status >= 500 || status === 429) ? 'failure' : 'success';
  return 'success';
};

class Interrupted extends Error {}

export class IdentityWorker {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #limit: number;
  readonly #plcHost: string;
  readonly #refreshMs: number;
  readonly #maxAttempts: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #statsIntervalMs: number;
  readonly #sweepIntervalMs: number;
  readonly #sweepBatch: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #gate: HostGate;
  readonly #dids: DidResolver;
  readonly #handles: HandleResolver;
  readonly #profiles: ProfileFetcher;
  readonly #inflight = new Map<number, Promise<void>>();
  readonly #controller = new AbortController();
  readonly #counters: Counters = {
    completed: 0,
    handlesVerified: 0,
    handlesInvalid: 0,
    handlesTaken: 0,
    profilesFetched: 0,
    profilesAbsent: 0,
    profilesInvalid: 0,
    retried: 0,
    parked: 0,
    deadDids: 0,
    released: 0,
    staleEnqueued: 0,
  };
  readonly #failures: Record<string, number> = {};
  #pending = 0;
  #running: Promise<void> | null = null;
  #wake: ((why: 'job' | 'stop') => void) | null = null;

  constructor(options: IdentityWorkerOptions) {
    const d = IDENTITY_DEFAULTS;
    if (!Number.isSafeInteger(options.maxConcurrent) || options.maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent must be a whole number >= 1, got ${options.maxConcurrent}`);
    }
    this.#db = options.db;
    this.#log = options.log;
    this.#limit = options.maxConcurrent;
    this.#plcHost = new URL(options.plcUrl).host;
    this.#refreshMs = (options.refreshHours ?? d.refreshHours) * 3_600_000;
    this.#maxAttempts = options.maxAttempts ?? d.maxAttempts;
    this.#backoffBaseMs = options.backoffBaseMs ?? d.backoffBaseMs;
    this.#backoffMaxMs = options.backoffMaxMs ?? d.backoffMaxMs;
    this.#leaseMs = options.leaseMs ?? d.leaseMs;
    this.#pollMs = options.pollMs ?? d.pollMs;
    this.#statsIntervalMs = options.statsIntervalMs ?? d.statsIntervalMs;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? d.sweepIntervalMs;
    this.#sweepBatch = options.sweepBatch ?? d.sweepBatch;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    const timeoutMs = options.timeoutMs ?? d.timeoutMs;
    const fetch = options.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init));
    const rates = new Map([[this.#plcHost, options.plcRateLimit ?? d.plcRateLimit]]);
    const limiter = new HostRateLimiter({ defaultRate: options.hostRateLimit ?? d.hostRateLimit, rates, now: this.#now });
    this.#gate = new HostGate(limiter, new CircuitBreakers({ ...options.breaker, now: this.#now }));
    const strangers = options.strangers ?? outbound();
    this.#dids = new DidResolver({ plcUrl: options.plcUrl, fetch, strangers, timeoutMs, now: this.#now });
    this.#handles = new HandleResolver({
      resolverUrl: options.handleResolverUrl,
      fetch,
      strangers,
      timeoutMs,
      gate: this.#gate,
      now: this.#now,
      ...(options.resolveTxt ? { resolveTxt: options.resolveTxt } : {}),
    });
    this.#profiles = new ProfileFetcher({ strangers, timeoutMs, gate: this.#gate });
  }

  get stats(): IdentityWorkerStats {
    const active = this.#inflight.size;
    return {
      active,
      limit: this.#limit,
      utilization: Math.round((active / this.#limit) * 1000) / 10,
      pending: this.#pending,
      ...this.#counters,
      failures: { ...this.#failures },
      openCircuits: this.#gate.breakers.openHosts,
    };
  }

  /** Starts the loop; the promise settles when it has stopped and every job in flight is done. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.#running !== null) throw new Error('identity worker already started');
    const stop = signal ? AbortSignal.any([signal, this.#controller.signal]) : this.#controller.signal;
    this.#running = this.#run(stop);
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#controller.abort(new Interrupted('identity worker stopping'));
    this.#wake?.('stop');
    await this.#running;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.#wake?.('stop');
    signal.addEventListener('abort', onAbort, { once: true });
    let nextStats = 0;
    let nextSweep = 0;
    let dbBackoffMs = this.#pollMs;
    try {
      while (!signal.aborted) {
        let waitMs = this.#pollMs;
        let untilSlotFree = false;
        try {
          const now = this.#now();
          if (now >= nextStats || now >= nextSweep) {
            const sweep = now >= nextSweep;
            await this.#housekeep(sweep);
            nextStats = now + this.#statsIntervalMs;
            if (sweep) nextSweep = now + this.#sweepIntervalMs;
          }
          const free = this.#limit - this.#inflight.size;
          const plc = this.#gate.breakers.state(this.#plcHost);
          if (free === 0) {
            untilSlotFree = true;
          } else if (plc === 'open') {
            // PLC is down: the work stays in the queue; look again when the circuit lets a probe out
            waitMs = Math.max(10, Math.min(this.#pollMs, this.#gate.breakers.retryAt(this.#plcHost) - now));
          } else {
            // half-open: one job probes PLC, the others wait for its verdict
            const want = plc === 'half-open' ? 1 : free;
            const exclude = [...this.#inflight.keys()];
            const jobs = await this.#db.run((sql) => claimJobs(sql, { limit: want, leaseMs: this.#leaseMs, exclude }));
            for (const job of jobs) this.#launch(job, signal);
            // all we asked for: more may be due, take them as soon as a slot frees
            if (jobs.length === want) untilSlotFree = true;
          }
          dbBackoffMs = this.#pollMs;
        } catch (err) {
          this.#fail('database');
          this.#log.warn('identity worker: database error, backing off', { error: err, backoffMs: dbBackoffMs });
          waitMs = dbBackoffMs;
          dbBackoffMs = Math.min(dbBackoffMs * 2, 30_000);
        }
        await this.#idle(waitMs, untilSlotFree, signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await Promise.allSettled(this.#inflight.values());
    }
  }

  /** Waits `ms`, or less when the loop stops or (if `untilSlotFree`) a job finishes. */
  #idle(ms: number, untilSlotFree: boolean, signal: AbortSignal): Promise<void> {
    if (signal.aborted || (untilSlotFree && this.#inflight.size < this.#limit)) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = (why) => {
        if (why === 'stop' || untilSlotFree) finish();
      };
    });
  }

  async #housekeep(sweep: boolean): Promise<void> {
    this.#pending = await this.#db.run((sql) => pendingCount(sql));
    // refresh only while the queue is short: a backlog (PLC down) must not grow further
    if (sweep && this.#pending < this.#limit * 20) {
      const added = await this.#db.run((sql) => enqueueStale(sql, this.#refreshMs, this.#sweepBatch));
      this.#counters.staleEnqueued += added;
      this.#pending += added;
      if (added) this.#log.debug('identity refresh enqueued', { actors: added });
    }
  }

  #launch(job: IdentityJob, signal: AbortSignal): void {
    const task = this.#process(job, signal)
      .catch((err: unknown) => {
        // #process handles every expected failure; reaching here means the database failed while
        // putting the job back: its lease expires and it is taken again then
        this.#fail('database');
        this.#log.warn('identity job could not be saved', { actorId: job.actorId, error: err });
      })
      .finally(() => {
        this.#inflight.delete(job.actorId);
        this.#wake?.('job');
      });
    this.#inflight.set(job.actorId, task);
  }

  async #process(job: IdentityJob, signal: AbortSignal): Promise<void> {
    const did = job.did;
    if (did === null) {
      await this.#db.begin((sql) => dropJob(sql, job));
      return;
    }
    if (job.reason === 'profile') {
      await this.#profileOnly(job, did, signal);
      return;
    }
    let doc: ResolvedDid;
    let verified: boolean;
    try {
      ({ doc, verified } = await this.#resolve(job, did, signal));
    } catch (err) {
      await this.#identityFailed(job, err, signal);
      return;
    }

    let profile: ProfileResult | null = null;
    let profileError: unknown = null;
    const pds = this.#profileSource(job, doc.pdsEndpoint);
    if (pds !== null) {
      try {
        profile = await this.#profiles.fetch(pds, did, signal);
      } catch (err) {
        profileError = err;
      }
    }

    const identity = {
      claimedHandle: doc.handle,
      verifiedHandle: verified ? doc.handle : null,
      pdsEndpoint: doc.pdsEndpoint,
      signingKey: doc.signingKey,
    };
    // one transaction, its statements sent together (PostgreSQL runs them in the order sent)
    const saved = await this.#db.begin(async (sql) => {
      const [taken, inserted] = await Promise.all([
        saveResolved(sql, job.actorId, identity),
        profile?.kind === 'found' ? saveProfile(sql, job.actorId, profile) : false,
        profileError === null ? finishJob(sql, job) : null,
      ]);
      return { taken, inserted };
    });
    this.#counters.handlesTaken += saved.taken;
    if (verified) this.#counters.handlesVerified++;
    else this.#counters.handlesInvalid++;
    this.#countProfile(profile, saved.inserted);
    if (profileError !== null) await this.#profileFailed(job, profileError, signal);
    else this.#counters.completed++;
  }

  /** DID document, then the handle it claims, checked back: network only. */
  async #resolve(job: IdentityJob, did: string, signal: AbortSignal): Promise<{ doc: ResolvedDid; verified: boolean }> {
    // an #identity event means the cached document may be stale; a negative answer is cached
    // (not-found), so a retry after one must ask again
    const fresh = job.reason === 'identity';
    if (fresh || job.lastError === 'did-not-found') this.#dids.invalidate(did);
    const host = this.#dids.documentHost(did);
    const doc = host === null ? await this.#dids.resolve(did) : await this.#gate.run(host, () => this.#dids.resolve(did), didVerdict, signal);
    signal.throwIfAborted();
    const verified = doc.handle !== null && (await this.#handles.verify(doc.handle, did, { fresh, signal }));
    signal.throwIfAborted();
    return { doc, verified };
  }

  /** The PDS to ask for the profile, or null when none is needed (or possible). */
  #profileSource(job: IdentityJob, pdsEndpoint: string | null): string | null {
    return !job.hasProfile && job.status === null ? pdsEndpoint : null;
  }

  /** Only the profile is missing: the identity was saved by an earlier attempt. */
  async #profileOnly(job: IdentityJob, did: string, signal: AbortSignal): Promise<void> {
    let profile: ProfileResult | null = null;
    const pds = this.#profileSource(job, job.pdsEndpoint);
    if (pds !== null) {
      try {
        profile = await this.#profiles.fetch(pds, did, signal);
      } catch (err) {
        await this.#profileFailed(job, err, signal);
        return;
      }
    }
    const inserted = await this.#db.begin(async (sql) => {
      const [written] = await Promise.all([profile?.kind === 'found' ? saveProfile(sql, job.actorId, profile) : false, finishJob(sql, job)]);
      return written;
    });
    this.#countProfile(profile, inserted);
    this.#counters.completed++;
  }

  #countProfile(profile: ProfileResult | null, inserted: boolean): void {
    if (profile?.kind === 'found' && inserted) this.#counters.profilesFetched++;
    else if (profile?.kind === 'absent') this.#counters.profilesAbsent++;
    else if (profile?.kind === 'invalid') {
      this.#counters.profilesInvalid++;
      this.#fail(`profile-${profile.reason}`);
    }
  }

  /** True (and the job given back uncounted) when the failure is our own shutdown. */
  async #releasedOnStop(job: IdentityJob, err: unknown, signal: AbortSignal): Promise<boolean> {
    if (!signal.aborted && !(err instanceof HttpGetError && err.reason === 'aborted')) return false;
    this.#counters.released++;
    await this.#db.begin((sql) => releaseJob(sql, job, null));
    return true;
  }

  /** The DID document or the handle check failed: release, retry, park, or mark the DID dead. */
  async #identityFailed(job: IdentityJob, err: unknown, signal: AbortSignal): Promise<void> {
    if (await this.#releasedOnStop(job, err, signal)) return;
    if (err instanceof CircuitOpenError) {
      // the host is known to be down: this attempt does not count, the job waits for the probe
      this.#counters.released++;
      this.#fail('circuit-open');
      await this.#db.begin((sql) => releaseJob(sql, job, new Date(err.retryAt)));
      return;
    }
    let reason: string;
    let deadStatus: Exclude<DidStatus, 'ok'> | null = null;
    if (err instanceof DidResolutionError) {
      reason = `did-${err.reason}`;
      const dead = DEAD_REASONS.get(err.reason);
      if (dead !== undefined) {
        this.#fail(reason);
        this.#counters.deadDids++;
        await this.#db.begin((sql) => parkJob(sql, job, reason, dead));
        return;
      }
      if (err.reason === 'not-found') deadStatus = 'not-found';
    } else if (err instanceof HandleResolutionError) {
      reason = 'handle-lookup';
    } else {
      reason = 'internal';
      this.#log.warn('identity job failed', { actorId: job.actorId, error: err });
    }
    await this.#retryOrPark(job, reason, deadStatus, 0, job.reason);
  }

  /**
   * The identity is saved, the profile fetch failed: retry only the profile. An open circuit
   * counts here (unlike for identity work): a PDS that stays down must not keep its users cycling.
   */
  async #profileFailed(job: IdentityJob, err: unknown, signal: AbortSignal): Promise<void> {
    if (await this.#releasedOnStop(job, err, signal)) return;
    const reason = err instanceof CircuitOpenError ? 'circuit-open' : err instanceof ProfileFetchError ? 'profile-fetch' : 'internal';
    if (reason === 'internal') this.#log.warn('profile fetch failed', { actorId: job.actorId, error: err });
    const minDelay = err instanceof CircuitOpenError ? err.retryAt - this.#now() : 0;
    await this.#retryOrPark(job, reason, null, minDelay, 'profile');
  }

  async #retryOrPark(job: IdentityJob, reason: string, deadStatus: Exclude<DidStatus, 'ok'> | null, minDelayMs: number, nextReason: string): Promise<void> {
    this.#fail(reason);
    if (job.attempts >= this.#maxAttempts) {
      this.#counters.parked++;
      if (deadStatus !== null) this.#counters.deadDids++;
      this.#log.debug('identity job parked', { actorId: job.actorId, reason, attempts: job.attempts });
      await this.#db.begin((sql) => parkJob(sql, job, reason, deadStatus));
      return;
    }
    this.#counters.retried++;
    const delay = Math.max(minDelayMs, this.#backoff(job.attempts));
    await this.#db.begin((sql) => retryJob(sql, job, delay, reason, nextReason));
  }

  #backoff(attempts: number): number {
    const exponential = this.#backoffBaseMs * 2 ** Math.min(30, Math.max(0, attempts - 1));
    return Math.min(this.#backoffMaxMs, exponential * (0.8 + 0.4 * this.#random()));
  }

  #fail(reason: string): void {
    this.#failures[reason] = (this.#failures[reason] ?? 0) + 1;
  }
}
