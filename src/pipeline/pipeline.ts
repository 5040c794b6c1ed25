/**
 * The ingestion pipeline: bounded queue -> bounded processing -> ordered batches -> one writer.
 *
 * `offer(frame)` appends a sequenced frame to the queue (at most `queueLimit` entries: beyond
 * that it answers 'full' and the reader stops reading) or drops a frame whose seq is not above
 * the last one accepted ('duplicate': a replay). Up to MAX_CONCURRENT_OPS frames are processed
 * (CAR, signature, records) at once; the writer loop takes the longest processed prefix of the
 * queue (so firehose order holds, per repo and overall), writes it as one batch in one
 * transaction with the cursor, and repeats. While a batch is being written the next one grows,
 * so batches are large when traffic is heavy; when it is light, a small batch waits up to 100 ms
 * after the previous write began, so a quiet firehose costs ~10 transactions a second, not one
 * per event.
 *
 * Repos being imported whole (backfill, resync: src/backfill/repo-import.ts) are held: from
 * `hold(did)` on, the writer sets that repo's commits aside in arrival order (each one's seq still
 * moves the cursor, as a skipped event), and `release(did, rev)` writes those above the imported
 * revision `rev`, in order, before any later batch; commits at or below it that were processed
 * before the release are dropped when they reach the writer. So a record deleted live during an
 * import stays deleted and nothing is applied twice. The commits set aside are not durable: the
 * importer marks its repo done only after `release` resolves, so a crash in between imports the
 * repo again (its PDS holds those commits). A repo that sets aside more than HELD_EVENTS_LIMIT
 * commits (an account writing through a long import) keeps none: `release` answers false and the
 * importer fetches again.
 *
 * A batch the database refuses for its data (a value it cannot store) is split in halves until
 * the one bad event is found; that event is counted as 'db-rejected' and skipped, the rest is
 * written. Any other failure (the database is down) retries the same batch with backoff: nothing
 * is skipped and the cursor does not move. `run(signal)` returns once the signal is aborted and
 * everything accepted has been written (or the database stays unreachable).
 */
import type { Database } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { Semaphore } from '../lib/semaphore.ts';
import type { ActorIds } from './actor-ids.ts';
import { buildBatch } from './batch.ts';
import { CursorRegressed, writeBatch } from './batch-writer.ts';
import type { EventProcessor, SequencedFrame } from './event-processor.ts';
import type { IndexEvent } from './events.ts';
import type { IngestStats } from './ingest-stats.ts';

export interface PipelineOptions {
  readonly db: Database;
  readonly actorIds: ActorIds;
  readonly relayUrl: string;
  readonly processor: EventProcessor;
  readonly stats: IngestStats;
  readonly log: Logger;
  readonly maxConcurrentOps: number;
  /** The cursor stored in the database: nothing at or below it is accepted again. */
  readonly committedSeq: number | null;
  readonly queueLimit?: number;
  readonly maxBatchEvents?: number;
  /** How long a small batch may wait to grow; 0 writes at once (tests of ordering use it). */
  readonly lingerMs?: number;
}

type CommitEvent = Extract<IndexEvent, { kind: 'commit' }>;

interface Replay {
  readonly events: CommitEvent[];
  readonly resolve: (written: boolean) => void;
  readonly reject: (error: unknown) => void;
}

interface Entry {
  readonly seq: number;
  frame: SequencedFrame | null;
  event: IndexEvent | null;
}

export type OfferResult = 'accepted' | 'duplicate' | 'full';

const DEFAULT_QUEUE_LIMIT = 8_000;
/** commits set aside per held repo, at most */
const HELD_EVENTS_LIMIT = 2_000;
const DEFAULT_MAX_BATCH_EVENTS = 5_000;
/** A batch smaller than this waits up to `lingerMs` (default 100) after the previous write began. */
const LINGER_EVENTS = 500;
const DEFAULT_LINGER_MS = 100;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 30_000;
/** SQLSTATE classes that mean "this data", not "this connection": 22 data exception, 23 integrity, 54 limits. */
const DATA_ERROR_CLASSES = new Set(['22', '23', '54']);

export class Pipeline {
  readonly #options: PipelineOptions;
  readonly #ops: Semaphore;
  readonly #queueLimit: number;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  #queue: Entry[] = [];
  #head = 0;
  #nextToProcess = 0;
  #lastAcceptedSeq: number | null;
  #committedSeq: number | null;
  #committedTime: string | null = null;
  #writeFailure: { since: number; message: string } | null = null;
  #wakeWriter: (() => void) | null = null;
  #depthWaiters: Array<{ depth: number; resolve: () => void }> = [];
  /** held repos -> their commits set aside, in order (null: too many, none kept) */
  readonly #held = new Map<string, CommitEvent[] | null>();
  /** imported repos -> revision imported, until every event accepted before the release is written */
  readonly #floors = new Map<string, { readonly rev: string; readonly untilSeq: number | null }>();
  #replays: Replay[] = [];
  /** the write under way (settled, never rejects), for `hold` to wait on */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.#ops = new Semaphore(options.maxConcurrentOps);
    this.#queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    this.#maxBatch = options.maxBatchEvents ?? DEFAULT_MAX_BATCH_EVENTS;
    this.#lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.#lastAcceptedSeq = options.committedSeq;
    this.#committedSeq = options.committedSeq;
  }

  /** Events accepted and not yet committed. */
  get queueDepth(): number {
    return this.#queue.length - this.#head;
  }
  get queueLimit(): number {
    return this.#queueLimit;
  }
  /** Events being processed right now (<= MAX_CONCURRENT_OPS). */
  get inFlight(): number {
    return this.#ops.active;
  }
  get maxConcurrentOps(): number {
    return this.#ops.limit;
  }
  get lastAcceptedSeq(): number | null {
    return this.#lastAcceptedSeq;
  }
  get committedSeq(): number | null {
    return this.#committedSeq;
  }
  /** Relay time of the last committed event that had one. */
  /** Set while a batch fails to be written and is being retried (a full disk, a lost database). */
  get writeFailure(): { readonly since: number; readonly message: string } | null {
    return this.#writeFailure;
  }

  get committedTime(): string | null {
    return this.#committedTime;
  }

  offer(frame: SequencedFrame): OfferResult {
    if (this.#lastAcceptedSeq !== null && frame.seq <= this.#lastAcceptedSeq) {
      this.#options.stats.reject('duplicate-seq');
      return 'duplicate';
    }
    if (this.queueDepth >= this.#queueLimit) return 'full';
    if (this.#lastAcceptedSeq !== null && frame.seq > this.#lastAcceptedSeq + 1) this.#options.stats.seqGaps++;
    this.#lastAcceptedSeq = frame.seq;
    this.#queue.push({ seq: frame.seq, frame, event: null });
    this.#options.processor.prefetch(frame);
    this.#processMore();
    return 'accepted';
  }

  /** The relay's sequence started over (it answered FutureCursor): accept its numbers again. */
  resetSequence(): void {
    this.#lastAcceptedSeq = null;
  }

  /**
   * From now on `did`'s commits are set aside until `release`; resolves once no batch holding one
   * of its commits is still being written, so the import that follows sees them in the database.
   */
  async hold(did: string): Promise<void> {
    if (!this.#held.has(did)) this.#held.set(did, []);
    await this.#writing;
  }

  /**
   * The import of `did` at revision `rev` is written: writes the commits set aside above `rev`
   * (before any later batch) and drops the rest. True once they are written; false when there
   * were too many to keep (the repo must be fetched again).
   */
  release(did: string, rev: string): Promise<boolean> {
    const held = this.#held.get(did);
    this.#held.delete(did);
    this.#floors.set(did, { rev, untilSeq: this.#lastAcceptedSeq });
    if (held === null) return Promise.resolve(false);
    const newer = (held ?? []).filter((event) => event.rev > rev);
    if (held) this.#options.stats.rejectMany('stale-rev', held.length - newer.length);
    if (newer.length === 0) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      this.#replays.push({ events: newer, resolve, reject });
      this.#wakeWriter?.();
    });
  }

  /** Held repos right now. */
  get heldRepos(): number {
    return this.#held.size;
  }

  /** Resolves once at most `depth` events wait in the queue (or the signal aborts). */
  waitForDepth(depth: number, signal: AbortSignal): Promise<void> {
    if (this.queueDepth <= depth || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { depth, resolve };
      this.#depthWaiters.push(waiter);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    signal.addEventListener('abort', () => this.#wakeWriter?.(), { once: true });
    try {
      await this.#runWriter(signal);
    } finally {
      for (const replay of this.#replays.splice(0)) replay.resolve(false);
    }
  }

  async #runWriter(signal: AbortSignal): Promise<void> {
    let lastWriteStarted = 0;
    while (true) {
      if (this.#replays.length > 0) {
        await this.#writeReplays();
        continue;
      }
      const taken = this.#takeReadyPrefix();
      if (taken.length === 0) {
        if (signal.aborted && this.queueDepth === 0) return;
        await this.#sleepUntilWoken();
        continue;
      }
      // Light traffic: let a small batch grow for up to LINGER_MS instead of paying a
      // transaction per event or two. Heavy traffic never waits (the prefix is large already).
      const lingerLeft = lastWriteStarted + this.#lingerMs - performance.now();
      if (taken.length < LINGER_EVENTS && lingerLeft > 0 && !signal.aborted) {
        await this.#sleepUntilWoken(lingerLeft);
        continue;
      }
      lastWriteStarted = performance.now();
      const events = this.#divertHeld(taken);
      const writing = this.#write(events, signal);
      this.#writing = writing.catch(() => undefined);
      const written = await writing;
      if (!written) return; // aborted while the database was unreachable: the cursor stays put
      this.#head += events.length;
      this.#forgetFloors();
      if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#nextToProcess -= this.#head;
        this.#head = 0;
      }
      this.#notifyDepth();
    }
  }

  /**
   * The batch as it is written: a held repo's commits are set aside (a skipped event keeps each
   * one's seq), and an imported repo's commits at or below the imported revision are dropped.
   */
  #divertHeld(events: IndexEvent[]): IndexEvent[] {
    if (this.#held.size === 0 && this.#floors.size === 0) return events;
    return events.map((event) => {
      if (event.kind !== 'commit') return event;
      const skipped: IndexEvent = { kind: 'skipped', seq: event.seq, time: event.time, ...(event.resync ? { resync: event.resync } : {}) };
      const held = this.#held.get(event.did);
      if (held !== undefined) {
        if (held !== null && held.length < HELD_EVENTS_LIMIT) held.push(event);
        else this.#held.set(event.did, null);
        this.#options.stats.heldCommits++;
        return skipped;
      }
      const floor = this.#floors.get(event.did);
      if (floor === undefined || event.rev > floor.rev) return event;
      this.#options.stats.reject('stale-rev');
      return skipped;
    });
  }

  /** A floor is needed until every event accepted before its release has been written. */
  #forgetFloors(): void {
    for (const [did, floor] of this.#floors) {
      if (floor.untilSeq === null || (this.#committedSeq !== null && this.#committedSeq >= floor.untilSeq)) this.#floors.delete(did);
    }
  }

  /** Released repos' commits, in the order they were set aside, as one batch that moves no cursor. */
  async #writeReplays(): Promise<void> {
    const replays = this.#replays.splice(0);
    const write = writeBatch(this.#options.db, this.#options.actorIds, null, buildBatch(replays.flatMap((replay) => replay.events)));
    this.#writing = write.catch(() => undefined);
    try {
      await write;
      for (const replay of replays) {
        this.#options.stats.replayedCommits += replay.events.length;
        replay.resolve(true);
      }
    } catch (error) {
      // the importer keeps its repo queued: the next import fetches what these commits changed
      for (const replay of replays) replay.reject(error);
    }
  }

  /** Resolves when a processed event or the abort signal wakes the writer, or after `timeoutMs`. */
  async #sleepUntilWoken(timeoutMs?: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wakeWriter = resolve;
      if (timeoutMs !== undefined) timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.#wakeWriter = null;
  }

  #processMore(): void {
    while (this.#nextToProcess < this.#queue.length && this.#ops.active < this.#ops.limit) {
      const entry = this.#queue[this.#nextToProcess++];
      if (!entry?.frame) continue;
      const frame = entry.frame;
      void this.#ops.acquire();
      this.#options.processor
        .process(frame)
        .catch((error: unknown): IndexEvent => {
          this.#options.stats.reject('processing-error');
          this.#options.log.error('an event could not be processed: skipped', { seq: frame.seq, error });
          return { kind: 'skipped', seq: frame.seq, time: null };
        })
        .then((event) => {
          entry.event = event;
          entry.frame = null;
          this.#ops.release();
          this.#processMore();
          this.#wakeWriter?.();
        });
    }
  }

  #takeReadyPrefix(): IndexEvent[] {
    const events: IndexEvent[] = [];
    for (let index = this.#head; index < this.#queue.length && events.length < this.#maxBatch; index++) {
      const event = this.#queue[index]?.event;
      if (!event) break;
      events.push(event);
    }
    return events;
  }

  /** Writes `events` as one batch (or, if the database refuses their data, in halves). */
  async #write(events: IndexEvent[], signal: AbortSignal): Promise<boolean> {
    const { db, actorIds, relayUrl, stats, log } = this.#options;
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const result = await writeBatch(db, actorIds, { relayUrl, previousSeq: this.#committedSeq }, buildBatch(events));
        stats.batchCommitted(events.length, result.newActors, performance.now() - started);
        if (result.rewritten) stats.batchesRewritten++;
        this.#writeFailure = null;
        const last = events.at(-1);
        if (last) this.#committedSeq = last.seq;
        for (let index = events.length - 1; index >= 0; index--) {
          const time = events[index]?.time;
          if (time) {
            this.#committedTime = time;
            break;
          }
        }
        return true;
      } catch (error) {
        stats.batchWriteErrors++;
        // not retried: the events the database lost are behind this batch (batch-writer.ts)
        if (error instanceof CursorRegressed) throw error;
        if (isDataError(error)) {
          if (events.length > 1) {
            const middle = Math.ceil(events.length / 2);
            return (await this.#write(events.slice(0, middle), signal)) && (await this.#write(events.slice(middle), signal));
          }
          const only = events[0];
          if (!only) return true;
          stats.reject('db-rejected');
          log.warn('the database refused an event: skipped', { seq: only.seq, error });
          events = [{ kind: 'skipped', seq: only.seq, time: only.time }];
          continue;
        }
        if (signal.aborted && attempt >= 2) {
          log.error('stopping with events not written: they will be replayed from the cursor', { events: this.queueDepth, error });
          return false;
        }
        this.#writeFailure = { since: this.#writeFailure?.since ?? Date.now(), message: error instanceof Error ? error.message : String(error) };
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
        log.error('writing a batch failed: retrying', { events: events.length, attempt: attempt + 1, retryInMs: delay, error });
        await Bun.sleep(delay);
      }
    }
  }

  #notifyDepth(): void {
    if (this.#depthWaiters.length === 0) return;
    const depth = this.queueDepth;
    this.#depthWaiters = this.#depthWaiters.filter((waiter) => {
      if (depth > waiter.depth) return true;
      waiter.resolve();
      return false;
    });
  }
}

/**
 * "This data cannot be stored": PostgreSQL's data classes, or a value the client could not even
 * serialize (postgres.js throws a plain RangeError for, say, an impossible date). Those are
 * bisected to the one bad event; anything else (connection, server down, a bug of ours) is
 * retried, never skipped.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code.length === 5 && DATA_ERROR_CLASSES.has(code.slice(0, 2));
  return error instanceof RangeError;
}
