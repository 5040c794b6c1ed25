/**
 * The PLC directory's export, followed: signing keys learned a page of up to 1,000 operations at a
 * time instead of one DID document fetch per brand-new account.
 *
 * Owns one loop of `GET {plcUrl}/export?count=1000&after={createdAt}` requests (JSON lines of
 * `{did, operation, nullified, createdAt}`, oldest first) and the waits on it. Promises:
 * - reading starts `startAt` (default: LOOKBACK_MS before now) and moves to the newest `createdAt`
 *   it has read; a full page is followed at once by the next, a short one (caught up) by an idle
 *   wait of `idlePollMs`, cut short when someone waits for a key (at most one request per
 *   `minGapMs` then);
 * - every operation read is handed to `learn(did, signingKey)`: the `#atproto` key it sets, or
 *   null when it removes it or tombstones the DID; nullified operations are skipped. A DID someone
 *   waits for (`awaitKey`) is answered instead of learned;
 * - `awaitKey(did)` answers the key the next pages bring for `did`, or undefined once a page read
 *   after the call came back short without it, after `maxWaitMs`, or at once while the directory
 *   fails: the caller then fetches the DID's document as before. It never rejects;
 * - nothing from the directory is trusted: a line that is not a well-formed operation is counted
 *   (`badLines`) and skipped, a page is at most MAX_PAGE_BYTES; a failing directory (network,
 *   timeout, 429, 5xx) is retried after a backoff from 1 s to 60 s; a directory without the export
 *   (400, 404, 405, 501) stops the loop for good, with one warning;
 * - `stop()` ends the loop and answers every wait with undefined.
 *
 * Operations that share one millisecond across a page boundary can be missed (the directory reads
 * `after` as "created strictly later"): a missed key is fetched like any other. The keys go into
 * the signing-key cache, which is bounded, so following the export costs no memory of its own.
 */
import type { Logger } from '../log.ts';
import { isObject } from '../lib/is-object.ts';
import { PLC_DID } from './did-resolver.ts';
import { httpGet, type FetchLike } from './http-get.ts';

export interface PlcExportOptions {
  readonly plcUrl: string;
  readonly fetch: FetchLike;
  readonly learn: (did: string, signingKey: string | null) => void;
  readonly log: Logger;
  readonly startAt?: Date;
  readonly idlePollMs?: number;
  readonly minGapMs?: number;
  readonly maxWaitMs?: number;
}

export interface PlcExportFigures {
  /** false once the directory said it has no export */
  readonly following: boolean;
  /** the newest `createdAt` read */
  readonly position: string;
  readonly pages: number;
  readonly operations: number;
  readonly badLines: number;
  readonly failures: number;
  /** waits answered with a key, and waits that fell back to a document fetch */
  readonly waitsAnswered: number;
  readonly waitsMissed: number;
}

/** How far back reading starts: a new account's operation precedes its first commit. */
export const LOOKBACK_MS = 10 * 60_000;
const PAGE_SIZE = 1000;
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
const TIMEOUT_MS = 15_000;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
const NO_EXPORT_STATUSES = new Set([400, 404, 405, 501]);

interface Wait {
  /** requests started before the wait began do not count against it */
  readonly afterRequest: number;
  readonly deadline: number;
  readonly answer: (signingKey: string | null | undefined) => void;
}

export class PlcExport {
  readonly #options: PlcExportOptions;
  readonly #idlePollMs: number;
  readonly #minGapMs: number;
  readonly #maxWaitMs: number;
  readonly #waits = new Map<string, Wait[]>();
  readonly #stopped = new AbortController();
  /** the newest `createdAt` read, in ms since the epoch */
  #positionMs: number;
  #following = true;
  #failing = false;
  #requestsStarted = 0;
  #lastRequestAt = -Infinity;
  /** ends the current sleep; `#wakeIdle` only while the loop is idle (caught up) */
  #wakeAny: (() => void) | null = null;
  #wakeIdle: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  #pages = 0;
  #operations = 0;
  #badLines = 0;
  #failures = 0;
  #waitsAnswered = 0;
  #waitsMissed = 0;

  constructor(options: PlcExportOptions) {
    this.#options = options;
    this.#idlePollMs = options.idlePollMs ?? 5000;
    this.#minGapMs = options.minGapMs ?? 100;
    this.#maxWaitMs = options.maxWaitMs ?? 3000;
    this.#positionMs = (options.startAt ?? new Date(Date.now() - LOOKBACK_MS)).getTime();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    this.#wakeAny?.();
    await this.#loop;
    this.#releaseAll();
  }

  get figures(): PlcExportFigures {
    return {
      following: this.#following,
      position: new Date(this.#positionMs).toISOString(),
      pages: this.#pages,
      operations: this.#operations,
      badLines: this.#badLines,
      failures: this.#failures,
      waitsAnswered: this.#waitsAnswered,
      waitsMissed: this.#waitsMissed,
    };
  }

  /** The key the next pages bring for `did` (null: it has none); undefined: fetch it instead. */
  awaitKey(did: string): Promise<string | null | undefined> {
    if (this.#loop === null || !this.#following || this.#failing || this.#stopped.signal.aborted || !PLC_DID.test(did)) {
      return Promise.resolve(undefined);
    }
    return new Promise((answer) => {
      const wait: Wait = { afterRequest: this.#requestsStarted, deadline: performance.now() + this.#maxWaitMs, answer };
      const list = this.#waits.get(did);
      if (list) list.push(wait);
      else this.#waits.set(did, [wait]);
      this.#wakeIdle?.();
    });
  }

  async #run(): Promise<void> {
    let backoffMs = FIRST_BACKOFF_MS;
    while (!this.#stopped.signal.aborted && this.#following) {
      const request = ++this.#requestsStarted;
      this.#lastRequestAt = performance.now();
      const lines = await this.#page();
      if (this.#stopped.signal.aborted) break;
      if (lines === null) {
        this.#failing = true;
        this.#releaseAll();
        await this.#sleep(backoffMs, false);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        continue;
      }
      this.#failing = false;
      backoffMs = FIRST_BACKOFF_MS;
      this.#pages++;
      for (const line of lines) this.#apply(line);
      const caughtUp = lines.length < PAGE_SIZE;
      this.#settleWaits(caughtUp ? request : 0);
      if (!caughtUp) continue;
      if (this.#waits.size === 0) await this.#sleep(this.#idlePollMs, true);
      const gap = this.#lastRequestAt + this.#minGapMs - performance.now();
      if (gap > 0) await this.#sleep(gap, false);
    }
    this.#releaseAll();
  }

  /** The page after the position as lines, or null when the directory failed. */
  async #page(): Promise<string[] | null> {
    const after = encodeURIComponent(new Date(this.#positionMs).toISOString());
    const url = `${this.#options.plcUrl.replace(/\/+$/, '')}/export?count=${PAGE_SIZE}&after=${after}`;
    let status: number;
    let text: string;
    try {
      ({ status, text } = await httpGet(url, {
        fetch: this.#options.fetch,
        timeoutMs: TIMEOUT_MS,
        maxBytes: MAX_PAGE_BYTES,
        signal: this.#stopped.signal,
      }));
    } catch (error) {
      if (this.#stopped.signal.aborted) return null;
      this.#fail(error instanceof Error ? error.message : String(error));
      return null;
    }
    if (status === 200) return text === '' ? [] : text.split('\n');
    if (NO_EXPORT_STATUSES.has(status)) {
      this.#following = false;
      this.#options.log.warn('the PLC directory has no export to follow: each new account is resolved on its own', { plcUrl: this.#options.plcUrl, status });
      return [];
    }
    this.#fail(`status ${status}`);
    return null;
  }

  #fail(reason: string): void {
    this.#failures++;
    if (!this.#failing) this.#options.log.warn('the PLC directory export failed: retrying with a backoff', { plcUrl: this.#options.plcUrl, reason });
  }

  #apply(line: string): void {
    if (line.trim() === '') return;
    let read: ExportEntry | null;
    try {
      read = readEntry(JSON.parse(line));
    } catch {
      read = null;
    }
    if (read === null) {
      this.#badLines++;
      return;
    }
    if (read.createdAtMs > this.#positionMs) this.#positionMs = read.createdAtMs;
    if (read.nullified) return;
    this.#operations++;
    const waits = this.#waits.get(read.did);
    if (waits) {
      this.#waits.delete(read.did);
      this.#waitsAnswered += waits.length;
      for (const wait of waits) wait.answer(read.signingKey);
      return;
    }
    this.#options.learn(read.did, read.signingKey);
  }

  /** Answers undefined to waits past their deadline, and to those request `caughtUpRequest` covered. */
  #settleWaits(caughtUpRequest: number): void {
    const now = performance.now();
    for (const [did, waits] of this.#waits) {
      const left = waits.filter((wait) => {
        if (wait.afterRequest >= caughtUpRequest && wait.deadline > now) return true;
        this.#waitsMissed++;
        wait.answer(undefined);
        return false;
      });
      if (left.length === 0) this.#waits.delete(did);
      else this.#waits.set(did, left);
    }
  }

  #releaseAll(): void {
    for (const waits of this.#waits.values()) {
      this.#waitsMissed += waits.length;
      for (const wait of waits) wait.answer(undefined);
    }
    this.#waits.clear();
  }

  /** Sleeps `ms`, or less: `stop()` always ends it, a new wait for a key only when `idle`. */
  #sleep(ms: number, idle: boolean): Promise<void> {
    if (this.#stopped.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakeAny = null;
        this.#wakeIdle = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeAny = done;
      if (idle) this.#wakeIdle = done;
    });
  }
}

interface ExportEntry {
  readonly did: string;
  readonly createdAtMs: number;
  readonly nullified: boolean;
  readonly signingKey: string | null;
}

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** One export line's meaning, or null when it is not a well-formed PLC operation. */
export const readEntry = (entry: unknown): ExportEntry | null => {
  if (!isObject(entry) || !isObject(entry.operation)) return null;
  const { did, createdAt, nullified, operation } = entry;
  if (typeof did !== 'string' || !PLC_DID.test(did)) return null;
  const createdAtMs = typeof createdAt === 'string' && ISO_DATETIME.test(createdAt) ? Date.parse(createdAt) : Number.NaN;
  if (Number.isNaN(createdAtMs)) return null;
  if (nullified !== undefined && typeof nullified !== 'boolean') return null;
  let signingKey: unknown;
  switch (operation.type) {
    case 'plc_operation':
      if (operation.verificationMethods !== undefined && !isObject(operation.verificationMethods)) return null;
      signingKey = operation.verificationMethods?.atproto ?? null;
      break;
    case 'create':
      signingKey = operation.signingKey;
      break;
    case 'plc_tombstone':
      signingKey = null;
      break;
    default:
      return null;
  }
  if (signingKey !== null && (typeof signingKey !== 'string' || !signingKey.startsWith('did:key:'))) return null;
  return { did, createdAtMs, nullified: nullified === true, signingKey };
};
