/**
 * import-writer: the backfill's side of the batched, set-based writer. Imports hand it a repo's
 * record changes (`write(did, rev, ops)`); it gathers what several imports hand it in the same
 * moment into one batch (at most `maxOps` ops, or what arrived within `lingerMs`) and writes it
 * with the firehose's own `writeBatch`, with no cursor (the live cursor is the pipeline's alone).
 * So ten repos of fifty records cost one transaction, not ten, and a big repo streams through in
 * batches of its own. Batches are written one after another on the backfill's own pool.
 *
 * Promises: `write` resolves once its ops are committed and rejects with the database's error
 * (after DEADLOCK_RETRIES tries of a deadlock, which the live writer touching the same counter
 * rows can cause); ops of one repo keep their order; a fresh actor-id cache per batch, so nothing
 * learnt outlives a database that lost work.
 */
import type { Database } from '../db/database.ts';
import { ActorIds } from '../pipeline/actor-ids.ts';
import { buildBatch } from '../pipeline/batch.ts';
import { writeBatch } from '../pipeline/batch-writer.ts';
import type { IndexEvent, RecordOp } from '../pipeline/events.ts';

interface Pending {
  readonly event: IndexEvent;
  readonly ops: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const DEADLOCK = '40P01';
const DEADLOCK_RETRIES = 3;

export class ImportWriter {
  readonly #db: Database;
  readonly #maxOps: number;
  readonly #lingerMs: number;
  #pending: Pending[] = [];
  #pendingOps = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #batches = 0;

  constructor(db: Database, options: { maxOps?: number; lingerMs?: number } = {}) {
    this.#db = db;
    this.#maxOps = options.maxOps ?? 5_000;
    this.#lingerMs = options.lingerMs ?? 5;
  }

  /** Transactions written so far. */
  get batches(): number {
    return this.#batches;
  }

  write(did: string, rev: string, ops: readonly RecordOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#pending.push({ event: { kind: 'commit', seq: 0, time: null, did, rev, ops }, ops: ops.length, resolve, reject });
      this.#pendingOps += ops.length;
      if (this.#pendingOps >= this.#maxOps) this.#flushSoon(0);
      else this.#flushSoon(this.#lingerMs);
    });
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== null) {
      if (ms > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flushing = this.#flushing.then(() => this.#flush());
    }, ms);
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const taken: Pending[] = [];
      let ops = 0;
      while (this.#pending.length > 0 && (taken.length === 0 || ops + this.#pending[0]!.ops <= this.#maxOps)) {
        const next = this.#pending.shift()!;
        taken.push(next);
        ops += next.ops;
      }
      this.#pendingOps -= ops;
      try {
        await this.#writeWithRetries(taken.map((pending) => pending.event));
        for (const pending of taken) pending.resolve();
      } catch (error) {
        for (const pending of taken) pending.reject(error);
      }
      // what arrived meanwhile waits for its own linger unless there is a batch's worth
      if (this.#pendingOps < this.#maxOps) break;
    }
    if (this.#pending.length > 0) this.#flushSoon(this.#lingerMs);
  }

  async #writeWithRetries(events: IndexEvent[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await writeBatch(this.#db, new ActorIds(10_000), null, buildBatch(events));
        this.#batches++;
        return;
      } catch (error) {
        if ((error as { code?: unknown } | null)?.code !== DEADLOCK || attempt >= DEADLOCK_RETRIES) throw error;
        await Bun.sleep(20 * attempt);
      }
    }
  }
}
