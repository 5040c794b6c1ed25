/**
 * Commit verification for the pipeline: where signatures are checked and keys fetched.
 *
 * `WorkerVerifier` runs them on a worker thread (`verify-worker.ts`): jobs are sent in batches (see
 * SEND_AT), answers come back the same way, so the thread that reads the socket
 * and writes batches spends ~2 us per commit on verification instead of ~50 us plus the key
 * fetches. If the worker dies, a new one is started and the jobs it held are sent again: a
 * verification is never lost, and never answered twice.
 *
 * `InlineVerifier` does the same on the calling thread (tests, and a fallback).
 */
import type { InitMessage, JobsMessage, ResultsMessage } from './verify-worker.ts';
import type { SigningKeyCache, VerifyOutcome } from './signing-keys.ts';
import type { Logger } from '../log.ts';

export interface CommitVerifier {
  verify(did: string, unsignedBytes: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome>;
  /** Starts fetching `did`'s key if it is not known yet; never waits. */
  prefetch(did: string): void;
  /** The key changed (an #identity event): fetch it again next time. */
  invalidate(did: string): void;
  close(): Promise<void>;
}

export class InlineVerifier implements CommitVerifier {
  readonly #keys: SigningKeyCache;

  constructor(keys: SigningKeyCache) {
    this.#keys = keys;
  }

  verify(did: string, unsignedBytes: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome> {
    return this.#keys.verifyCommit(did, unsignedBytes, sig);
  }

  prefetch(did: string): void {
    if (this.#keys.has(did)) return;
    this.#keys.get(did).catch(() => {
      // verify() asks again and reports the outcome
    });
  }

  invalidate(did: string): void {
    this.#keys.invalidate(did);
  }

  async close(): Promise<void> {}
}

interface Job {
  readonly did: string;
  readonly unsigned: Uint8Array;
  readonly sig: Uint8Array;
  readonly resolve: (outcome: VerifyOutcome) => void;
}

/** Where the worker's module is when running from source. A compiled binary passes its own. */
const DEFAULT_WORKER_URL = new URL('./verify-worker.ts', import.meta.url);
const PREFETCH_BUFFER = 10_000;
/**
 * When jobs are sent: with the worker's next answer when it is busy, as soon as SEND_AT wait, or
 * after a hold at most. The hold is MAX_HOLD_MS (2 ms) under load, where the worker's answers pace
 * the messages anyway; below LIGHT_LOAD_PER_SECOND commits it is QUIET_HOLD_MS (10 ms), because a
 * message between threads costs more than the ~50 us check it carries (it wakes an idle core), so
 * a quiet firehose gathers a few commits per message instead of paying one message per commit.
 */
const SEND_AT = 64;
const MAX_HOLD_MS = 2;
const QUIET_HOLD_MS = 10;
const LIGHT_LOAD_PER_SECOND = 1_000;

export class WorkerVerifier implements CommitVerifier {
  readonly #plcUrl: string;
  readonly #log: Logger;
  readonly #workerUrl: URL;
  #worker: Worker;
  #ready: Promise<void>;
  readonly #pending = new Map<number, Job>();
  #nextId = 0;
  #outbox: { ids: number[]; prefetch: string[]; invalidate: string[] } | null = null;
  /** Jobs sent and not answered yet. */
  #unanswered = 0;
  #closed = false;
  #started = false;
  #rateSecond = 0;
  #currentSecondJobs = 0;
  #previousSecondJobs = 0;
  restarts = 0;

  private constructor(plcUrl: string, log: Logger, workerUrl: URL) {
    this.#plcUrl = plcUrl;
    this.#log = log;
    this.#workerUrl = workerUrl;
    [this.#worker, this.#ready] = this.#spawn();
  }

  /** Starts the worker and resolves once it answered. */
  static async start(plcUrl: string, log: Logger, workerUrl: URL = DEFAULT_WORKER_URL): Promise<WorkerVerifier> {
    const verifier = new WorkerVerifier(plcUrl, log, workerUrl);
    await verifier.#ready;
    verifier.#started = true;
    return verifier;
  }

  verify(did: string, unsigned: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome> {
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#pending.set(id, { did, unsigned, sig, resolve });
      const box = this.#box();
      box.ids.push(id);
      if (box.ids.length >= SEND_AT) this.#flush();
    });
  }

  prefetch(did: string): void {
    const box = this.#box();
    if (box.prefetch.length < PREFETCH_BUFFER) box.prefetch.push(did);
  }

  invalidate(did: string): void {
    this.#box().invalidate.push(did);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#worker.terminate();
    for (const job of this.#pending.values()) job.resolve('key-unavailable');
    this.#pending.clear();
  }

  #box() {
    if (!this.#outbox) {
      this.#outbox = { ids: [], prefetch: [], invalidate: [] };
      const box = this.#outbox;
      const quiet = this.#jobsPerSecond() < LIGHT_LOAD_PER_SECOND;
      if (!quiet) {
        queueMicrotask(() => {
          if (this.#outbox === box && this.#unanswered === 0) this.#flush();
        });
      }
      // the worker may be busy fetching keys for what it holds: never wait long on it
      setTimeout(() => {
        if (this.#outbox === box) this.#flush();
      }, quiet ? QUIET_HOLD_MS : MAX_HOLD_MS);
    }
    return this.#outbox;
  }

  /** Jobs sent over the last whole second and the current one, per second. */
  #jobsPerSecond(): number {
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#rateSecond) {
      this.#previousSecondJobs = second === this.#rateSecond + 1 ? this.#currentSecondJobs : 0;
      this.#currentSecondJobs = 0;
      this.#rateSecond = second;
    }
    return Math.max(this.#previousSecondJobs, this.#currentSecondJobs);
  }

  #flush(): void {
    const box = this.#outbox;
    this.#outbox = null;
    if (!box || this.#closed) return;
    this.#send(box.ids, box.prefetch, box.invalidate);
  }

  #send(ids: number[], prefetch: string[], invalidate: string[]): void {
    this.#unanswered += ids.length;
    this.#jobsPerSecond();
    this.#currentSecondJobs += ids.length;
    const message: JobsMessage = { type: 'jobs', ids: [], dids: [], unsigned: [], sigs: [], prefetch, invalidate };
    for (const id of ids) {
      const job = this.#pending.get(id);
      if (!job) continue;
      message.ids.push(id);
      message.dids.push(job.did);
      message.unsigned.push(job.unsigned);
      message.sigs.push(job.sig);
    }
    this.#worker.postMessage(message);
  }

  #spawn(): [Worker, Promise<void>] {
    const worker = new Worker(this.#workerUrl.href);
    const ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<ResultsMessage | { type: 'ready' }>) => {
        const message = event.data;
        if (message.type === 'ready') {
          resolve();
          return;
        }
        this.#unanswered = Math.max(0, this.#unanswered - message.ids.length);
        for (let index = 0; index < message.ids.length; index++) {
          const id = message.ids[index] as number;
          const job = this.#pending.get(id);
          if (!job) continue;
          this.#pending.delete(id);
          job.resolve(message.outcomes[index] as VerifyOutcome);
        }
        // what gathered while the worker was busy goes out with its answer
        if (this.#outbox) queueMicrotask(() => this.#flush());
      };
      worker.onerror = (event) => {
        reject(new Error(`the verification worker failed: ${event.message}`));
        // a worker that never started is a broken build: start-up fails instead of looping
        if (this.#started) this.#restart(event.message);
      };
    });
    const init: InitMessage = { type: 'init', plcUrl: this.#plcUrl };
    worker.postMessage(init);
    return [worker, ready];
  }

  #restart(reason: string): void {
    if (this.#closed) return;
    this.restarts++;
    this.#log.error('the verification worker died: starting a new one', { reason, pending: this.#pending.size });
    this.#worker.terminate();
    [this.#worker, this.#ready] = this.#spawn();
    this.#unanswered = 0;
    this.#ready.then(
      () => this.#send([...this.#pending.keys()], [], []),
      () => {
        // #spawn's own onerror restarts again
      },
    );
  }
}
