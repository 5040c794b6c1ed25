/**
 * The figures behind every operator surface: the JSON endpoints, /metrics and the dashboard.
 *
 * Reads live counters from memory (pipeline, subscription, IngestStats, pool) on every call, and
 * the few figures that need SQL (identity queue length, `record_counts`, database size) through a
 * one-second cache refreshed by a single query at a time. A metrics request waits at most
 * `dbWaitMs` for that query: when the pool is saturated (exactly when an operator looks) it
 * answers with the last known figures instead of queueing behind the pipeline. Field names follow
 * docs/performance-tuning-guide.md; percentages are 0-100 with one decimal. The backfill's figures
 * are its own in-memory counts (it never scans its queue for them), read as they are. `start()`
 * begins the 1 Hz sampling the dashboard's sparklines read; `stop()` ends it.
 */
import type { BackfillFigures, BackfillRequest } from '../../backfill/backfill.ts';
import type { Database, PoolStats } from '../../db/database.ts';
import type { RecentErrors } from '../../lib/recent-errors.ts';
import type { PlcExportFigures } from '../../identity/plc-export.ts';
import type { IngestStats } from '../../pipeline/ingest-stats.ts';
import type { RepoResyncFigures } from '../../pipeline/repo-resync.ts';
import { MetricsHistory } from './history.ts';

/** What the metrics read of the pipeline (the real `Pipeline` satisfies it). */
export interface PipelineFigures {
  readonly queueDepth: number;
  readonly queueLimit: number;
  readonly inFlight: number;
  readonly maxConcurrentOps: number;
  readonly lastAcceptedSeq: number | null;
  readonly committedSeq: number | null;
  readonly committedTime: string | null;
}

/** What the metrics read of the relay subscription (the real `FirehoseSubscription` satisfies it). */
export interface SubscriptionFigures {
  readonly connected: boolean;
  readonly reconnects: number;
  readonly lastReceivedSeq: number | null;
  readonly lastFrameAt: number | null;
  readonly relayUrl: string;
  readonly errorFrames: ReadonlyMap<string, number>;
}

/** The running ingester as the metrics see it (`Ingester` satisfies it); null when disabled. */
export interface IngestSource {
  readonly pipeline: PipelineFigures;
  readonly subscription: SubscriptionFigures;
  readonly stats: IngestStats;
  /** Following the PLC directory's export; null when it is not followed. */
  readonly plcExport?: PlcExportFigures | null;
  /** Signing keys that could not be used, by reason. */
  readonly unusableSigningKeys?: ReadonlyMap<string, number>;
  /** The resync worker (repo-resync.ts). */
  readonly resync?: { readonly figures: RepoResyncFigures };
}

/** User creations (identity fetches) running and their bound. */
export interface IdentityWorkerStats {
  readonly active: number;
  readonly limit: number;
}

/** The identity worker as the metrics see it: `stats` is read on every request, so it stays live. */
export interface IdentityWorkerSource {
  readonly stats: IdentityWorkerStats;
}

/** The backfill as the operator surface sees it (`Backfill` satisfies it): its figures, and queueing work. */
export interface BackfillSource {
  readonly figures: BackfillFigures;
  request(request: BackfillRequest): Promise<{ readonly repos: number; readonly hosts: number }>;
}

export interface MetricsConfig {
  readonly relayUrl: string;
  readonly maxConcurrentUserCreations: number;
}

export interface MetricsServiceOptions {
  readonly db: Database;
  /** the read API's own pool (a share of DB_POOL_SIZE), when it has one */
  readonly apiDb?: Database;
  readonly ingest: IngestSource | null;
  /** null or absent: nothing active, the limit is `config.maxConcurrentUserCreations`. */
  readonly identityWorker?: IdentityWorkerSource | null;
  readonly config: MetricsConfig;
  readonly recentErrors?: RecentErrors | null;
  /** The whole-repo backfill; null or absent: `/api/metrics/backfill` says `enabled: false`. */
  readonly backfill?: BackfillSource | null;
  readonly now?: () => number;
  /** How old the SQL figures may be before a request refreshes them (default 1000 ms). */
  readonly dbMaxAgeMs?: number;
  /** How long a request waits for that refresh before answering with older figures (default 750 ms). */
  readonly dbWaitMs?: number;
  /** Sparkline length in 1 s samples (default 300). */
  readonly historySeconds?: number;
}

export interface RejectedSummary {
  /** Undecodable frames and malformed commits (CAR slice, commit block, record blocks). */
  readonly badFrame: number;
  /** Signature mismatch, or a signing key that cannot be parsed. */
  readonly badSignature: number;
  readonly invalidRecord: number;
  readonly unknownCollection: number;
  /** Everything else: too big, duplicate seq, unknown event type, processing or database rejects. */
  readonly other: number;
  readonly total: number;
}

export interface EventProcessorMetrics {
  readonly firehoseEnabled: boolean;
  readonly activeUserCreations: number;
  readonly maxConcurrentUserCreations: number;
  /** activeUserCreations / maxConcurrentUserCreations, percent. */
  readonly userCreationUtilization: number;
  /** Actors waiting in `identity_queue`; null until the database has answered once. */
  readonly pendingUserCreationOpsCount: number | null;
  readonly eventsInFlight: number;
  readonly maxConcurrentOps: number;
  /** eventsInFlight / maxConcurrentOps, percent. */
  readonly opsUtilization: number;
  readonly queueDepth: number;
  readonly queueLimit: number;
  /** Committed events per second over the last 1 s, 1 min and 5 min. */
  readonly eventsPerSecond: { readonly last1s: number; readonly last1m: number; readonly last5m: number };
  readonly eventsCommitted: number;
  readonly batchesCommitted: number;
  readonly newActors: number;
  readonly unverifiedCommits: number;
  /**
   * Commits from relays or PDSes that do not send Sync 1.1's `prevData` and ops' `prev`: their
   * ops are checked against the new tree only, not proven complete by inverting them.
   */
  readonly unprovenCommits: number;
  /**
   * Repos whose index may have missed commits, waiting for a whole-repo fetch, by the first reason
   * seen: sync-event, rev-gap, too-big, bad-proof (sql/00008); null until the database answered.
   */
  readonly reposAwaitingResync: Record<string, number> | null;
  /**
   * Whole-repo fetches done by the resync worker, by outcome (resynced, repo-gone, moved-on,
   * fetch-failed, too-large, bad-repo, bad-signature, ...), and the records they wrote or deleted.
   */
  readonly resyncOutcomes: Record<string, number>;
  readonly resyncRecordsChanged: number;
  /** Signing keys learned from the PLC directory's export; null when it is not followed. */
  readonly plcExport: PlcExportFigures | null;
  /**
   * DID documents and export lines whose `#atproto` key could not be used, by reason: the form
   * seen and the problem (`legacy-secp256k1:bad-point`, `jwk:unsupported-type`, ...),
   * `not-on-curve` or `no-atproto-key`. Their commits are rejected as `key-invalid`.
   */
  readonly unusableSigningKeys: Record<string, number>;
  readonly batchWriteErrors: number;
  /** Batches that met keys already stored (replays) and were written again absorbing them. */
  readonly batchesRewritten: number;
  /** Times the stored cursor was found behind the last committed batch (the database lost work) and ingestion followed again from it. */
  readonly cursorRegressions: number;
  /** Times the relay's next seq skipped numbers (nothing is missing by itself: relays skip some). */
  readonly seqGaps: number;
  readonly eventsByType: Record<string, number>;
  readonly opsByCollection: Record<string, number>;
  readonly rejected: RejectedSummary;
  readonly rejectedByReason: Record<string, number>;
  readonly invalidRecordsByCollection: Record<string, number>;
  /** The most frequent unknown collections (at most 20). */
  readonly unknownCollections: Record<string, number>;
  /** Events per batch and batch write time (ms), over the last 1024 batches. */
  readonly batchSize: { readonly p50: number; readonly p99: number };
  readonly flushMs: { readonly p50: number; readonly p99: number };
}

export interface DatabaseMetrics extends PoolStats {
  /** pg_database_size(current_database()); null until the database has answered once. */
  readonly databaseSizeBytes: number | null;
  /** Exact rows per collection (NSID) and `actors`, from the counters the pipeline maintains. */
  readonly records: Record<string, number>;
  /** When `databaseSizeBytes`, `records` and the identity queue length were read; null: never. */
  readonly sampledAt: string | null;
  /**
   * The read API's own pool (`size` and the rest above are ingestion's and identity work's): its
   * share of DB_POOL_SIZE, with a 5 s statement timeout, so clients cannot starve ingestion.
   */
  readonly api: PoolStats | null;
}

export interface FirehoseMetrics {
  readonly enabled: boolean;
  readonly relayUrl: string;
  readonly connected: boolean;
  readonly reconnects: number;
  /** The last committed seq (the durable cursor); null before the first commit. */
  readonly cursor: number | null;
  /** Relay time of the last committed event. */
  readonly cursorTime: string | null;
  readonly lastReceivedSeq: number | null;
  /** now - cursorTime, in seconds (never below 0); null before the first commit. */
  readonly lagSeconds: number | null;
  readonly queueDepth: number;
  readonly lastFrameAt: string | null;
  readonly errorFrames: Record<string, number>;
}

export interface BackfillMetrics {
  readonly enabled: boolean;
  /** Rows of `backfill_repos` by state. */
  readonly repos: { readonly queued: number; readonly done: number; readonly inactive: number; readonly failed: number };
  /** Hosts whose listRepos (or the relay's listHosts) is being read now. */
  readonly hostsListing: number;
  /** Hosts whose listing is not finished (being listed, or waiting for a retry). */
  readonly hostsToList: number;
  /** Repos being imported now. */
  readonly activeImports: number;
  /** Finished imports by outcome: imported, repo-gone, or the failure's reason (fetch-failed, ...). */
  readonly outcomes: Record<string, number>;
  /** Records the imported repos hold, and those written or deleted to match them. */
  readonly recordsImported: number;
  readonly recordsChanged: number;
  /** Records not indexed: invalid for their lexicon, or undecodable. */
  readonly invalidRecords: number;
  /** CAR bytes fetched. */
  readonly bytesFetched: number;
  /** Repos imported without a signature check (signing key unavailable). */
  readonly unverified: number;
  /** Over the last 10 s. */
  readonly recordsPerSecond: number;
  readonly reposPerSecond: number;
  /** Queued repos at the recent rate; null when nothing is being imported. */
  readonly etaSeconds: number | null;
  /** Hosts paused or failing, worst first (at most 10); `reason` is the last failure's. */
  readonly troubledHosts: ReadonlyArray<{ readonly host: string; readonly pausedForMs: number; readonly failuresInRow: number; readonly reason: string | null }>;
  /** Seconds imports spent per phase (resolve, wait, fetch, verify, parse, write, release), summed over imports. */
  readonly phaseSeconds: Readonly<Record<string, number>>;
  /** What the listings returned: hosts (from listHosts), repos (from listRepos), invalid entries skipped. */
  readonly listed: { readonly hosts: number; readonly repos: number; readonly invalid: number };
}

const noBackfill = (): BackfillMetrics => ({
  enabled: false,
  repos: { queued: 0, done: 0, inactive: 0, failed: 0 },
  hostsListing: 0,
  hostsToList: 0,
  activeImports: 0,
  outcomes: {},
  recordsImported: 0,
  recordsChanged: 0,
  invalidRecords: 0,
  bytesFetched: 0,
  unverified: 0,
  recordsPerSecond: 0,
  reposPerSecond: 0,
  etaSeconds: null,
  troubledHosts: [],
  phaseSeconds: {},
  listed: { hosts: 0, repos: 0, invalid: 0 },
});

interface DbFigures {
  readonly pendingIdentity: number;
  readonly awaitingResync: Record<string, number>;
  readonly databaseSizeBytes: number;
  readonly records: Record<string, number>;
  readonly at: number;
}

const BAD_FRAME_REASONS: ReadonlySet<string> = new Set([
  'proof-bad-op',
  'proof-missing-block',
  'proof-bad-node',
  'proof-op-mismatch',
  'proof-prev-data-mismatch',
  'bad-car',
  'bad-commit',
  'bad-record',
  'missing-commit-block',
  'missing-record-block',
  'block-hash-mismatch',
  'commit-did-mismatch',
]);
const BAD_SIGNATURE_REASONS: ReadonlySet<string> = new Set(['bad-signature', 'key-invalid']);
const MAX_UNKNOWN_COLLECTIONS = 20;
const MAX_ERROR_FRAME_NAMES = 50;

export class MetricsService {
  readonly history: MetricsHistory;
  readonly recentErrors: RecentErrors | null;
  readonly #options: MetricsServiceOptions;
  readonly #now: () => number;
  readonly #dbMaxAgeMs: number;
  readonly #dbWaitMs: number;
  #db: DbFigures | null = null;
  #refreshing: Promise<void> | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: MetricsServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#dbMaxAgeMs = options.dbMaxAgeMs ?? 1000;
    this.#dbWaitMs = options.dbWaitMs ?? 750;
    this.recentErrors = options.recentErrors ?? null;
    this.history = new MetricsHistory(options.historySeconds ?? 300);
  }

  get firehoseEnabled(): boolean {
    return this.#options.ingest !== null;
  }

  /** Samples events/s and lag once a second until `stop()`. Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), 1000);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes one history sample now (the timer calls this; tests may too). */
  sample(): void {
    const ingest = this.#options.ingest;
    this.history.push({
      at: this.#now(),
      eventsPerSecond: ingest ? ingest.stats.eventsPerSecond(1) : 0,
      lagSeconds: this.#lagSeconds(),
    });
  }

  async eventProcessor(): Promise<EventProcessorMetrics> {
    const db = await this.#dbFigures();
    const ingest = this.#options.ingest;
    const worker = this.#options.identityWorker?.stats ?? null;
    const limit = worker?.limit ?? this.#options.config.maxConcurrentUserCreations;
    const active = worker?.active ?? 0;
    const pipeline = ingest?.pipeline ?? null;
    const stats = ingest?.stats ?? null;
    return {
      firehoseEnabled: ingest !== null,
      activeUserCreations: active,
      maxConcurrentUserCreations: limit,
      userCreationUtilization: percent(active, limit),
      pendingUserCreationOpsCount: db?.pendingIdentity ?? null,
      eventsInFlight: pipeline?.inFlight ?? 0,
      maxConcurrentOps: pipeline?.maxConcurrentOps ?? 0,
      opsUtilization: pipeline ? percent(pipeline.inFlight, pipeline.maxConcurrentOps) : 0,
      queueDepth: pipeline?.queueDepth ?? 0,
      queueLimit: pipeline?.queueLimit ?? 0,
      eventsPerSecond: {
        last1s: stats?.eventsPerSecond(1) ?? 0,
        last1m: stats?.eventsPerSecond(60) ?? 0,
        last5m: stats?.eventsPerSecond(300) ?? 0,
      },
      eventsCommitted: stats?.eventsCommitted ?? 0,
      batchesCommitted: stats?.batchesCommitted ?? 0,
      newActors: stats?.newActors ?? 0,
      unverifiedCommits: stats?.unverifiedCommits ?? 0,
      unprovenCommits: stats?.unprovenCommits ?? 0,
      reposAwaitingResync: db?.awaitingResync ?? null,
      resyncOutcomes: record(ingest?.resync?.figures.outcomes),
      resyncRecordsChanged: ingest?.resync?.figures.recordsChanged ?? 0,
      plcExport: ingest?.plcExport ?? null,
      unusableSigningKeys: record(ingest?.unusableSigningKeys),
      batchWriteErrors: stats?.batchWriteErrors ?? 0,
      batchesRewritten: stats?.batchesRewritten ?? 0,
      cursorRegressions: stats?.cursorRegressions ?? 0,
      seqGaps: stats?.seqGaps ?? 0,
      eventsByType: record(stats?.eventsByType),
      opsByCollection: record(stats?.opsByCollection),
      rejected: summarizeRejects(stats?.rejectedByReason),
      rejectedByReason: record(stats?.rejectedByReason),
      invalidRecordsByCollection: record(stats?.invalidByCollection),
      unknownCollections: record(stats?.unknownCollections, MAX_UNKNOWN_COLLECTIONS),
      batchSize: stats?.batchSizePercentiles() ?? { p50: 0, p99: 0 },
      flushMs: stats?.flushMsPercentiles() ?? { p50: 0, p99: 0 },
    };
  }

  async database(): Promise<DatabaseMetrics> {
    const figures = await this.#dbFigures();
    const pool = this.#options.db.stats();
    return {
      size: pool.size,
      active: pool.active,
      idle: pool.idle,
      waiting: pool.waiting,
      utilization: pool.utilization,
      connectionErrors: pool.connectionErrors,
      timeouts: pool.timeouts,
      databaseSizeBytes: figures?.databaseSizeBytes ?? null,
      records: { ...(figures?.records ?? {}) },
      sampledAt: figures ? new Date(figures.at).toISOString() : null,
      api: this.#options.apiDb?.stats() ?? null,
    };
  }

  firehose(): FirehoseMetrics {
    const ingest = this.#options.ingest;
    const lastFrameAt = ingest?.subscription.lastFrameAt ?? null;
    return {
      enabled: ingest !== null,
      relayUrl: ingest?.subscription.relayUrl ?? this.#options.config.relayUrl,
      connected: ingest?.subscription.connected ?? false,
      reconnects: ingest?.subscription.reconnects ?? 0,
      cursor: ingest?.pipeline.committedSeq ?? null,
      cursorTime: ingest?.pipeline.committedTime ?? null,
      lastReceivedSeq: ingest?.subscription.lastReceivedSeq ?? null,
      lagSeconds: this.#lagSeconds(),
      queueDepth: ingest?.pipeline.queueDepth ?? 0,
      lastFrameAt: lastFrameAt === null ? null : new Date(lastFrameAt).toISOString(),
      errorFrames: record(ingest?.subscription.errorFrames, MAX_ERROR_FRAME_NAMES),
    };
  }

  backfill(): BackfillMetrics {
    const source = this.#options.backfill ?? null;
    if (source === null) return noBackfill();
    const f = source.figures;
    return {
      enabled: true,
      repos: { queued: f.repos.queued, done: f.repos.done, inactive: f.repos.inactive, failed: f.repos.failed },
      hostsListing: f.hostsListing,
      hostsToList: f.hostsToList,
      activeImports: f.active,
      outcomes: record(f.outcomes),
      recordsImported: f.recordsImported,
      recordsChanged: f.recordsChanged,
      invalidRecords: f.invalidRecords,
      bytesFetched: f.bytesFetched,
      unverified: f.unverified,
      recordsPerSecond: f.recordsPerSecond,
      reposPerSecond: f.reposPerSecond,
      etaSeconds: f.etaSeconds,
      troubledHosts: f.troubledHosts.map((h) => ({ host: h.host, pausedForMs: h.pausedForMs, failuresInRow: h.failuresInRow, reason: h.reason })),
      phaseSeconds: { ...f.phaseSeconds },
      listed: { hosts: f.listed.hosts, repos: f.listed.repos, invalid: f.listed.invalid },
    };
  }

  #lagSeconds(): number | null {
    const time = this.#options.ingest?.pipeline.committedTime ?? null;
    if (time === null) return null;
    const ms = Date.parse(time);
    if (Number.isNaN(ms)) return null;
    // A relay clock ahead of ours is not negative lag.
    return Math.max(0, Math.round(this.#now() - ms) / 1000);
  }

  /** The cached SQL figures: refreshed when older than dbMaxAgeMs, waited for at most dbWaitMs. */
  async #dbFigures(): Promise<DbFigures | null> {
    const cached = this.#db;
    if (cached && this.#now() - cached.at < this.#dbMaxAgeMs) return cached;
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#dbWaitMs);
    });
    await Promise.race([this.#refreshing, timeout]);
    clearTimeout(timer);
    return this.#db;
  }

  /** Never rejects: a failed read keeps the previous figures (the pool counts the error). */
  async #refresh(): Promise<void> {
    try {
      const figures = await this.#options.db.run(async (sql) => {
        const [totals] = await sql<{ pending: number; sizeBytes: number }[]>`
          select (select count(*) from identity_queue) as pending, pg_database_size(current_database()) as size_bytes`;
        const counts = await sql<{ collection: string; count: number }[]>`select collection, count from record_counts order by collection`;
        const resync = await sql<{ reason: string; count: number }[]>`select reason, count(*)::int as count from repo_resync group by reason order by reason`;
        return { totals, counts, resync };
      });
      const records: Record<string, number> = {};
      for (const row of figures.counts) setOwn(records, row.collection, Number(row.count));
      this.#db = {
        pendingIdentity: Number(figures.totals?.pending ?? 0),
        awaitingResync: Object.fromEntries(figures.resync.map((row) => [row.reason, Number(row.count)])),
        databaseSizeBytes: Number(figures.totals?.sizeBytes ?? 0),
        records,
        at: this.#now(),
      };
    } catch {
      // Keep the last figures; `sampledAt` shows their age and the pool counts connection errors.
    }
  }
}

function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0;
}

/** A plain object from a counter map, largest first when `limit` cuts it. */
function record(map: ReadonlyMap<string, number> | undefined, limit = Number.POSITIVE_INFINITY): Record<string, number> {
  const out: Record<string, number> = {};
  if (!map) return out;
  let entries = [...map.entries()];
  if (entries.length > limit) entries = entries.sort((a, b) => b[1] - a[1]).slice(0, limit);
  for (const [key, value] of entries) setOwn(out, key, value);
  return out;
}

/** Sets an own property even for keys like `__proto__` (keys may come from the network). */
function setOwn(target: Record<string, number>, key: string, value: number): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function summarizeRejects(reasons: ReadonlyMap<string, number> | undefined): RejectedSummary {
  let badFrame = 0;
  let badSignature = 0;
  let invalidRecord = 0;
  let unknownCollection = 0;
  let other = 0;
  for (const [reason, count] of reasons ?? []) {
    if (reason.startsWith('frame-') || BAD_FRAME_REASONS.has(reason)) badFrame += count;
    else if (BAD_SIGNATURE_REASONS.has(reason)) badSignature += count;
    else if (reason === 'invalid-record') invalidRecord += count;
    else if (reason === 'unknown-collection') unknownCollection += count;
    else other += count;
  }
  return { badFrame, badSignature, invalidRecord, unknownCollection, other, total: badFrame + badSignature + invalidRecord + unknownCollection + other };
}
