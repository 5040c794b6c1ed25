/**
 * Counters of the ingester, in memory: what the metrics endpoints read.
 *
 * Every event, op, rejection and batch is counted here by the stage that handles it; nothing is
 * dropped without a count. Rates are derived from a ring of per-second buckets (last 5 minutes);
 * batch sizes and flush latencies keep a bounded window of recent samples for percentiles.
 */
import { percentile } from '../lib/percentile.ts';

const RATE_WINDOW_SECONDS = 300;
const SAMPLE_WINDOW = 1024;

export type RejectReason = string;

export class IngestStats {
  readonly eventsByType = new Map<string, number>();
  readonly opsByCollection = new Map<string, number>();
  readonly rejectedByReason = new Map<RejectReason, number>();
  readonly invalidByCollection = new Map<string, number>();
  readonly unknownCollections = new Map<string, number>();
  /** Commits indexed without a signature check because the key could not be fetched (yet). */
  unverifiedCommits = 0;
  /** commits without a Sync 1.1 proof (no prevData, or an op without prev): checked forwards only */
  unprovenCommits = 0;
  /** commits set aside while their repo was imported whole (pipeline.ts `hold`), and of those the ones applied after it */
  heldCommits = 0;
  replayedCommits = 0;
  eventsCommitted = 0;
  batchesCommitted = 0;
  newActors = 0;
  batchWriteErrors = 0;
  /** Batches that met keys already stored (replays) and were written again absorbing them. */
  batchesRewritten = 0;
  /** Times the relay's next sequence number was not the last one plus one (informational: relays skip numbers). */
  seqGaps = 0;
  /** Times the database was found to have lost committed batches, and ingestion started over from its cursor. */
  cursorRegressions = 0;
  readonly #rate = new Uint32Array(RATE_WINDOW_SECONDS);
  #rateSecond = 0;
  readonly #batchSizes: number[] = [];
  readonly #flushMs: number[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#rateSecond = Math.floor(now() / 1000);
  }

  event(type: string): void {
    increment(this.eventsByType, type);
  }

  op(collection: string): void {
    increment(this.opsByCollection, collection);
  }

  reject(reason: RejectReason, collection?: string): void {
    increment(this.rejectedByReason, reason);
    if (collection !== undefined && reason === 'invalid-record') increment(this.invalidByCollection, collection);
  }

  rejectMany(reason: RejectReason, count: number): void {
    if (count > 0) this.rejectedByReason.set(reason, (this.rejectedByReason.get(reason) ?? 0) + count);
  }

  unknownCollection(collection: string): void {
    increment(this.rejectedByReason, 'unknown-collection');
    if (this.unknownCollections.size < 1000 || this.unknownCollections.has(collection)) increment(this.unknownCollections, collection);
  }

  batchCommitted(events: number, newActors: number, flushMs: number): void {
    this.eventsCommitted += events;
    this.batchesCommitted++;
    this.newActors += newActors;
    this.#advanceRate();
    const slot = this.#rateSecond % RATE_WINDOW_SECONDS;
    this.#rate[slot] = (this.#rate[slot] ?? 0) + events;
    pushBounded(this.#batchSizes, events);
    pushBounded(this.#flushMs, flushMs);
  }

  /** Committed events per second, averaged over the last `seconds` complete seconds. */
  eventsPerSecond(seconds: number): number {
    this.#advanceRate();
    const span = Math.min(seconds, RATE_WINDOW_SECONDS - 1);
    let total = 0;
    for (let back = 1; back <= span; back++) total += this.#rate[(this.#rateSecond - back + RATE_WINDOW_SECONDS) % RATE_WINDOW_SECONDS] ?? 0;
    return Math.round((total / span) * 10) / 10;
  }

  batchSizePercentiles(): { p50: number; p99: number } {
    return { p50: percentile(this.#batchSizes, 0.5), p99: percentile(this.#batchSizes, 0.99) };
  }

  flushMsPercentiles(): { p50: number; p99: number } {
    return { p50: percentile(this.#flushMs, 0.5), p99: percentile(this.#flushMs, 0.99) };
  }

  #advanceRate(): void {
    const second = Math.floor(this.#now() / 1000);
    const steps = Math.min(second - this.#rateSecond, RATE_WINDOW_SECONDS);
    for (let step = 1; step <= steps; step++) this.#rate[(this.#rateSecond + step) % RATE_WINDOW_SECONDS] = 0;
    if (second > this.#rateSecond) this.#rateSecond = second;
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function pushBounded(samples: number[], value: number): void {
  samples.push(value);
  if (samples.length > SAMPLE_WINDOW) samples.shift();
}
