/**
 * repo-state: what the event processor remembers per repo, in one bounded table of typed arrays:
 * the last revision indexed (the revision guard), the last revision to arrive (to see a commit
 * that does not follow it: a gap) and when its signing key prefetch was asked.
 *
 * Promises: at most `capacity` repos (DidSlots, CLOCK eviction: a repo that keeps committing
 * stays); forgetting a repo is always safe (a replay is then indexed again, idempotently; a
 * prefetch is asked again). A revision is a TID, 13 base32-sortable characters, kept as two
 * exact numbers (the first 3 characters, 15 bits, and the last 10, 50 bits) whose order is the
 * strings' order, so nothing per repo is a string or an object. A revision of any other shape
 * (the frame decoder rejects them) is compared as a string and then forgotten, never stored.
 */
import { DidSlots, withLength } from '../lib/did-slots.ts';

const SORTABLE_BASE32 = '234567abcdefghijklmnopqrstuvwxyz';
const TID_LENGTH = 13;
const HIGH_CHARS = 3;
/** revHigh of a repo without a revision (a real one is below 2^15) */
const NO_REV = 0xffff;

const SORTABLE_VALUE = new Int8Array(128).fill(-1);
for (const [index, char] of [...SORTABLE_BASE32].entries()) SORTABLE_VALUE[char.charCodeAt(0)] = index;

export interface RepoStateOptions {
  readonly capacity: number;
  /** how long a prefetch counts as asked, in ms */
  readonly prefetchTtlMs: number;
  /** clock, injectable for tests (default Date.now) */
  readonly now?: () => number;
}

export class RepoStateTable {
  readonly #slots: DidSlots;
  #revHigh: Uint16Array;
  #revLow: Float64Array;
  /** the last revision to arrive, verified or not (`arrive`) */
  #arrivedHigh: Uint16Array;
  #arrivedLow: Float64Array;
  /** ms; NaN = never asked */
  #prefetchedAt: Float64Array;
  readonly #prefetchTtlMs: number;
  readonly #now: () => number;
  // the last revision parsed by #parseRev
  #high = 0;
  #low = 0;

  constructor(options: RepoStateOptions) {
    this.#slots = new DidSlots(options.capacity);
    this.#revHigh = new Uint16Array(this.#slots.allocated);
    this.#revLow = new Float64Array(this.#slots.allocated);
    this.#arrivedHigh = new Uint16Array(this.#slots.allocated);
    this.#arrivedLow = new Float64Array(this.#slots.allocated);
    this.#prefetchedAt = new Float64Array(this.#slots.allocated);
    this.#prefetchTtlMs = options.prefetchTtlMs;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Whether a revision was recorded for `did` and `rev` is not above it. */
  isStale(did: string, rev: string): boolean {
    const order = this.#compareRecorded(did, rev);
    return order !== null && order <= 0;
  }

  /** Whether a revision above `rev` was recorded for `did`. */
  recordedAbove(did: string, rev: string): boolean {
    const order = this.#compareRecorded(did, rev);
    return order !== null && order < 0;
  }

  /** `rev` compared with the revision recorded for `did` (negative: below it); null when none is. */
  #compareRecorded(did: string, rev: string): number | null {
    const slot = this.#slots.find(did);
    if (slot < 0) return null;
    const high = this.#revHigh[slot]!;
    if (high === NO_REV) return null;
    if (!this.#parseRev(rev)) {
      const recorded = formatRev(high, this.#revLow[slot]!);
      return rev < recorded ? -1 : rev > recorded ? 1 : 0;
    }
    return this.#high !== high ? this.#high - high : this.#low - this.#revLow[slot]!;
  }

  /**
   * Records `rev` as the last revision to arrive for `did`, in firehose order (called before any
   * wait, so in the order frames arrive), and says whether the commit leaves a gap: its `since` is
   * not the revision that arrived before it. False when nothing arrived before (a restart, an
   * eviction, a repo's first commit), when either revision is not a TID, and for a replay (a
   * revision not above the last to arrive), which changes nothing.
   */
  arrive(did: string, since: string | null, rev: string): boolean {
    const slot = this.#slotOf(did);
    const beforeHigh = this.#arrivedHigh[slot]!;
    const beforeLow = this.#arrivedLow[slot]!;
    if (!this.#parseRev(rev)) {
      this.#arrivedHigh[slot] = NO_REV;
      return false;
    }
    const [revHigh, revLow] = [this.#high, this.#low];
    if (beforeHigh !== NO_REV && (revHigh < beforeHigh || (revHigh === beforeHigh && revLow <= beforeLow))) return false;
    this.#arrivedHigh[slot] = revHigh;
    this.#arrivedLow[slot] = revLow;
    if (since === null || beforeHigh === NO_REV) return false;
    return !this.#parseRev(since) || this.#high !== beforeHigh || this.#low !== beforeLow;
  }

  /** Records `rev` as the last revision indexed for `did` (also when it is lower: a #sync reset). */
  recordRev(did: string, rev: string): void {
    const slot = this.#slotOf(did);
    if (this.#parseRev(rev)) {
      this.#revHigh[slot] = this.#high;
      this.#revLow[slot] = this.#low;
    } else {
      this.#revHigh[slot] = NO_REV;
    }
  }

  /** True once per `prefetchTtlMs` per repo: whether its key prefetch should be asked now. */
  claimPrefetch(did: string): boolean {
    const slot = this.#slotOf(did);
    const now = this.#now();
    const askedAt = this.#prefetchedAt[slot]!;
    if (now - askedAt < this.#prefetchTtlMs) return false;
    this.#prefetchedAt[slot] = now;
    return true;
  }

  #slotOf(did: string): number {
    let slot = this.#slots.find(did);
    if (slot < 0) {
      slot = this.#slots.add(did);
      if (this.#slots.allocated > this.#revHigh.length) {
        this.#revHigh = withLength(this.#revHigh, this.#slots.allocated);
        this.#revLow = withLength(this.#revLow, this.#slots.allocated);
        this.#arrivedHigh = withLength(this.#arrivedHigh, this.#slots.allocated);
        this.#arrivedLow = withLength(this.#arrivedLow, this.#slots.allocated);
        this.#prefetchedAt = withLength(this.#prefetchedAt, this.#slots.allocated);
      }
      this.#revHigh[slot] = NO_REV;
      this.#arrivedHigh[slot] = NO_REV;
      this.#prefetchedAt[slot] = NaN;
    }
    return slot;
  }

  /** Whether `rev` is 13 sortable base32 characters; if so its value is in #high and #low. */
  #parseRev(rev: string): boolean {
    if (rev.length !== TID_LENGTH) return false;
    let high = 0;
    let low = 0;
    for (let index = 0; index < TID_LENGTH; index++) {
      const code = rev.charCodeAt(index);
      const digit = code < 128 ? SORTABLE_VALUE[code]! : -1;
      if (digit < 0) return false;
      if (index < HIGH_CHARS) high = high * 32 + digit;
      else low = low * 32 + digit;
    }
    this.#high = high;
    this.#low = low;
    return true;
  }
}

function formatRev(high: number, low: number): string {
  let chars = '';
  for (let index = TID_LENGTH - HIGH_CHARS; index > 0; index--) {
    chars = SORTABLE_BASE32[low % 32] + chars;
    low = Math.floor(low / 32);
  }
  for (let index = HIGH_CHARS; index > 0; index--) {
    chars = SORTABLE_BASE32[high % 32] + chars;
    high = Math.floor(high / 32);
  }
  return chars;
}
