/**
 * Commit verification for the pipeline: where signatures are checked and keys fetched.
 *
 * `WorkerVerifier` keeps the one signing-key cache on the calling thread (the pipeline's) and a
 * worker thread (`verify-worker.ts`) beside it. While the firehose is light (below
 * LIGHT_LOAD_PER_SECOND commits) a commit is checked right here, ~70 us, and a key not cached is
 * fetched right here too (through this thread's own resolver, with circuit breakers and a
 * document cache of its own): a message to an idle thread wakes it, and its answer wakes this one,
 * which costs both threads more than the work. When it is busy, checks go to the worker with their
 * key in batches (see SEND_AT), packed into one transferred buffer (the protocol is in
 * verify-worker.ts), so the thread that reads the socket and writes batches spends ~2 us per
 * commit on verification instead of ~50 us; keys not cached are fetched by the worker (a prefetch
 * waits its turn behind other prefetches; a commit waiting for its key hurries it). A failed check
 * is decided by the cache's policy (a refetch of a key that is not fresh), on this thread: bad
 * signatures are rare. If the worker dies, a new one is started and what it held (checks and
 * fetches) is sent again: nothing is lost or answered twice. With `followExport`, the PLC
 * directory's export (plc-export.ts) feeds the key cache here, and a repo's first commit waits for
 * its next pages before a document is fetched: a storm of new accounts costs one request per page
 * of up to 1,000 of them.
 *
 * `InlineVerifier` does everything on the calling thread (tests).
 */
import type { CheckedMessage, InitMessage, ResolveAnswer, ResolvedMessage, WorkMessage } from './verify-worker.ts';
import { keyFailure, SigningKeyCache, type KeyAnswer, type KeyResolver, type VerifyOutcome } from './signing-keys.ts';
import { DidResolutionError } from '../identity/did-resolver.ts';
import { PlcExport, type PlcExportFigures } from '../identity/plc-export.ts';
import { commitKeyResolver } from './guarded-key-resolver.ts';
import type { Logger } from '../log.ts';

export interface CommitVerifier {
  verify(did: string, unsignedBytes: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome>;
  /** Starts fetching `did`'s key if it is not known yet (`newRepo`: its first commit); never waits. */
  prefetch(did: string, newRepo?: boolean): void;
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

/** A check waiting for the worker's answer. */
interface Check {
  /** its request id, the key of `#checks` */
  readonly id: number;
  readonly unsigned: Uint8Array;
  readonly sig: Uint8Array;
  readonly key: Uint8Array;
  readonly resolve: (valid: boolean) => void;
}

/** A document fetch waiting for the worker's answer. */
interface Resolution {
  readonly did: string;
  readonly prefetch: boolean;
  readonly resolve: (answer: KeyAnswer) => void;
  readonly reject: (error: unknown) => void;
}

interface Outbox {
  checks: number[];
  resolutions: number[];
  hurry: string[];
  invalidate: string[];
}

/** Where the worker's module is when running from source. A compiled binary passes its own. */
const DEFAULT_WORKER_URL = new URL('./verify-worker.ts', import.meta.url);
/**
 * When work is sent: with the worker's next answer when it is busy, as soon as SEND_AT checks
 * wait, or after a hold at most: MAX_HOLD_MS (2 ms) under load, where the worker's answers pace the
 * messages anyway; QUIET_HOLD_MS when the firehose is light and only document fetches go out, so a
 * few new repos share one message.
 */
const SEND_AT = 64;
const MAX_HOLD_MS = 2;
const QUIET_HOLD_MS = 10;
const LIGHT_LOAD_PER_SECOND = 1_000;

export interface WorkerVerifierOptions {
  /** The worker's module; a compiled binary passes its own. */
  readonly workerUrl?: URL;
  /** Follow the directory's export (PLC_FOLLOW_EXPORT). */
  readonly followExport?: boolean;
  /** ALLOW_PRIVATE_HOSTS: did:web hosts reached whatever they resolve to */
  readonly allowPrivateHosts?: readonly string[];
}

export class WorkerVerifier implements CommitVerifier {
  readonly #plcUrl: string;
  readonly #allowPrivateHosts: readonly string[];
  readonly #log: Logger;
  readonly #workerUrl: URL;
  readonly #keys: SigningKeyCache;
  readonly #export: PlcExport | null;
  #worker: Worker;
  #ready: Promise<void>;
  readonly #checks = new Map<number, Check>();
  readonly #resolutions = new Map<number, Resolution>();
  /** DIDs with a prefetch sent and not answered: a commit waiting for one hurries it */
  readonly #prefetching = new Set<string>();
  #nextId = 0;
  #outbox: Outbox | null = null;
  /** Checks sent and not answered yet. */
  #unanswered = 0;
  #closed = false;
  #started = false;
  #rateSecond = 0;
  #currentSecondCommits = 0;
  #previousSecondCommits = 0;
  restarts = 0;
  /** Checks the worker answered (the busy firehose's path). */
  checksOnWorker = 0;
  /** Documents the worker fetched (the busy firehose's path). */
  fetchesOnWorker = 0;

  private constructor(plcUrl: string, log: Logger, workerUrl: URL, followExport: boolean, allowPrivateHosts: readonly string[]) {
    this.#plcUrl = plcUrl;
    this.#allowPrivateHosts = allowPrivateHosts;
    this.#log = log;
    this.#workerUrl = workerUrl;
    const here = commitKeyResolver(plcUrl, allowPrivateHosts);
    const resolver: KeyResolver = {
      resolve: async (did, purpose) => {
        if (purpose === 'new-repo' && this.#export) {
          const signingKey = await this.#export.awaitKey(did);
          if (signingKey !== undefined) return { signingKey };
        }
        return this.#commitsPerSecond(0) < LIGHT_LOAD_PER_SECOND ? here.resolve(did) : this.#resolve(did, purpose !== undefined);
      },
      invalidate: (did) => {
        here.invalidate(did);
        this.#box().invalidate.push(did);
      },
    };
    this.#keys = new SigningKeyCache(resolver);
    this.#export = followExport
      ? new PlcExport({ plcUrl, fetch: globalThis.fetch, log, learn: (did, signingKey) => this.#keys.learn(did, signingKey) })
      : null;
    [this.#worker, this.#ready] = this.#spawn();
  }

  /** Starts the worker (and the export's loop) and resolves once the worker answered. */
  static async start(plcUrl: string, log: Logger, options: WorkerVerifierOptions = {}): Promise<WorkerVerifier> {
    const verifier = new WorkerVerifier(plcUrl, log, options.workerUrl ?? DEFAULT_WORKER_URL, options.followExport === true, options.allowPrivateHosts ?? []);
    await verifier.#ready;
    verifier.#started = true;
    verifier.#export?.start();
    return verifier;
  }

  /** What following the directory's export has done; null when it is not followed. */
  /** Signing keys that could not be used, by reason (signing-keys.ts). */
  get unusableKeys(): ReadonlyMap<string, number> {
    return this.#keys.unusableKeys;
  }

  get exportFigures(): PlcExportFigures | null {
    return this.#export?.figures ?? null;
  }

  verify(did: string, unsigned: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome> {
    if (this.#commitsPerSecond(1) < LIGHT_LOAD_PER_SECOND) {
      const outcome = this.#keys.verifyCached(did, unsigned, sig);
      if (outcome !== null) return Promise.resolve(outcome);
      if (this.#prefetching.delete(did)) this.#box().hurry.push(did);
      return this.#keys.verifyCommit(did, unsigned, sig);
    }
    return this.#verifyOnWorker(did, unsigned, sig);
  }

  prefetch(did: string, newRepo = false): void {
    if (this.#keys.has(did)) return;
    this.#keys.get(did, newRepo ? 'new-repo' : 'prefetch').catch(() => {
      // verify() asks again and reports the outcome
    });
  }

  invalidate(did: string): void {
    this.#keys.invalidate(did);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#export?.stop();
    this.#worker.terminate();
    for (const check of this.#checks.values()) check.resolve(false);
    this.#checks.clear();
    for (const resolution of this.#resolutions.values()) resolution.reject(new DidResolutionError('network', resolution.did, 'the verifier closed'));
    this.#resolutions.clear();
  }

  async #verifyOnWorker(did: string, unsigned: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome> {
    if (this.#prefetching.delete(did)) this.#box().hurry.push(did);
    let key;
    try {
      key = await this.#keys.get(did);
    } catch (error) {
      return keyFailure(error);
    }
    const valid = await new Promise<boolean>((resolve) => {
      const id = this.#nextId++;
      // the worker tells the curves apart by the key's length (verify-worker.ts)
      this.#checks.set(id, { id, unsigned, sig, key: key.type === 'secp256k1' ? key.uncompressed : key.publicKey, resolve });
      const box = this.#box();
      box.checks.push(id);
      if (box.checks.length >= SEND_AT) this.#flush();
    });
    if (valid) return 'ok';
    // a failed check: the cache's policy decides, here
    return this.#keys.verifyCommit(did, unsigned, sig);
  }

  #resolve(did: string, prefetch: boolean): Promise<KeyAnswer> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#resolutions.set(id, { did, prefetch, resolve, reject });
      if (prefetch) this.#prefetching.add(did);
      this.#box().resolutions.push(id);
    });
  }

  #box(): Outbox {
    if (!this.#outbox) {
      this.#outbox = { checks: [], resolutions: [], hurry: [], invalidate: [] };
      const box = this.#outbox;
      const quiet = this.#commitsPerSecond(0) < LIGHT_LOAD_PER_SECOND;
      if (!quiet) {
        queueMicrotask(() => {
          if (this.#outbox === box && this.#unanswered === 0) this.#flush();
        });
      }
      // the worker may be busy for what it holds: never wait long on it
      setTimeout(() => {
        if (this.#outbox === box) this.#flush();
      }, quiet ? QUIET_HOLD_MS : MAX_HOLD_MS);
    }
    return this.#outbox;
  }

  /** Commits verified over the last whole second and the current one, per second; counts `add` more. */
  #commitsPerSecond(add: number): number {
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#rateSecond) {
      this.#previousSecondCommits = second === this.#rateSecond + 1 ? this.#currentSecondCommits : 0;
      this.#currentSecondCommits = 0;
      this.#rateSecond = second;
    }
    this.#currentSecondCommits += add;
    return Math.max(this.#previousSecondCommits, this.#currentSecondCommits);
  }

  #flush(): void {
    const box = this.#outbox;
    this.#outbox = null;
    if (!box || this.#closed) return;
    this.#send(box);
  }

  #send(box: Outbox): void {
    const checks: Check[] = [];
    let byteLength = 0;
    for (const id of box.checks) {
      const check = this.#checks.get(id);
      if (!check) continue;
      checks.push(check);
      byteLength += check.key.length + check.sig.length + check.unsigned.length;
    }
    const count = checks.length;
    this.#unanswered += count;
    // the checks packed into one buffer, transferred: see the protocol in verify-worker.ts
    const buffer = new ArrayBuffer(count * 20 + byteLength);
    const ids = new Float64Array(buffer, 0, count);
    const sizes = new Uint32Array(buffer, count * 8, count * 3);
    const bytes = new Uint8Array(buffer, count * 20);
    let at = 0;
    checks.forEach((check, index) => {
      ids[index] = check.id;
      sizes[3 * index] = check.key.length;
      sizes[3 * index + 1] = check.sig.length;
      sizes[3 * index + 2] = check.unsigned.length;
      bytes.set(check.key, at);
      at += check.key.length;
      bytes.set(check.sig, at);
      at += check.sig.length;
      bytes.set(check.unsigned, at);
      at += check.unsigned.length;
    });
    const message: WorkMessage = {
      type: 'work',
      ids,
      sizes,
      bytes,
      resolveIds: [],
      resolveDids: [],
      prefetch: [],
      hurry: box.hurry,
      invalidate: box.invalidate,
    };
    for (const id of box.resolutions) {
      const resolution = this.#resolutions.get(id);
      if (!resolution) continue;
      message.resolveIds.push(id);
      message.resolveDids.push(resolution.did);
      message.prefetch.push(resolution.prefetch);
    }
    this.#worker.postMessage(message, [buffer]);
  }

  #answerChecks(message: CheckedMessage): void {
    this.#unanswered = Math.max(0, this.#unanswered - message.ids.length);
    for (let index = 0; index < message.ids.length; index++) {
      const id = message.ids[index]!;
      const check = this.#checks.get(id);
      if (!check) continue;
      this.#checks.delete(id);
      this.checksOnWorker++;
      check.resolve(message.valid[index] === 1);
    }
  }

  #answerResolutions(message: ResolvedMessage): void {
    for (let index = 0; index < message.ids.length; index++) {
      const id = message.ids[index]!;
      const resolution = this.#resolutions.get(id);
      if (!resolution) continue;
      this.#resolutions.delete(id);
      this.fetchesOnWorker++;
      if (resolution.prefetch) this.#prefetching.delete(resolution.did);
      const answer = message.answers[index] as ResolveAnswer;
      if ('signingKey' in answer) resolution.resolve(answer);
      else {
        const { reason, status, message: text } = answer.failure;
        resolution.reject(reason === null ? new Error(text) : new DidResolutionError(reason, resolution.did, text, { status: status ?? undefined }));
      }
    }
  }

  #spawn(): [Worker, Promise<void>] {
    const worker = new Worker(this.#workerUrl.href);
    const ready = new Promise<void>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<CheckedMessage | ResolvedMessage | { type: 'ready' }>) => {
        const message = event.data;
        if (message.type === 'ready') {
          resolve();
          return;
        }
        if (message.type === 'checked') this.#answerChecks(message);
        else this.#answerResolutions(message);
        // what gathered while the worker was busy goes out with its answer
        if (this.#outbox) queueMicrotask(() => this.#flush());
      };
      worker.onerror = (event) => {
        reject(new Error(`the verification worker failed: ${event.message}`));
        // a worker that never started is a broken build: start-up fails instead of looping
        if (this.#started) this.#restart(event.message);
      };
    });
    const init: InitMessage = { type: 'init', plcUrl: this.#plcUrl, allowPrivateHosts: this.#allowPrivateHosts };
    worker.postMessage(init);
    return [worker, ready];
  }

  #restart(reason: string): void {
    if (this.#closed) return;
    this.restarts++;
    this.#log.error('the verification worker died: starting a new one', { reason, checks: this.#checks.size, fetches: this.#resolutions.size });
    this.#worker.terminate();
    [this.#worker, this.#ready] = this.#spawn();
    this.#unanswered = 0;
    this.#ready.then(
      () => this.#send({ checks: [...this.#checks.keys()], resolutions: [...this.#resolutions.keys()], hurry: [], invalidate: [] }),
      () => {
        // #spawn's own onerror restarts again
      },
    );
  }
}
