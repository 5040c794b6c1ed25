/**
 * The relay's outbox: every frame emitted, in emission order, kept for cursor replay.
 *
 * Owns: encoded frames (bytes exactly as sent) and, per frame, the highest seq emitted up to and
 * including it ("watermark"; frames without a seq of their own, like garbage, and re-sent old
 * frames do not raise it).
 * Promises: positions are absolute and never reused; `startAfter(cursor)` is the first position a
 * subscriber with that cursor must receive; at most `retain` frames are kept (the oldest are dropped
 * first), and `firstSeq` tells a subscriber whether its cursor fell out of the window.
 */
export class EventLog {
  readonly retain: number;
  #frames: Uint8Array[] = [];
  #marks: number[] = [];
  /** absolute position of #frames[0] */
  #base = 0;
  #lastSeq = 0;
  #firstSeq = 0;

  constructor(retain: number) {
    this.retain = Math.max(1, retain);
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** lowest seq still replayable (0 while nothing was dropped) */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** absolute position of the oldest retained frame */
  get start(): number {
    return this.#base;
  }

  /** absolute position after the newest frame */
  get end(): number {
    return this.#base + this.#frames.length;
  }

  append(frame: Uint8Array, seq: number | null): void {
    if (seq !== null && seq > this.#lastSeq) this.#lastSeq = seq;
    this.#frames.push(frame);
    this.#marks.push(this.#lastSeq);
    const excess = this.#frames.length - this.retain;
    // drop in chunks so appends stay amortised O(1)
    if (excess > 0 && excess >= Math.min(4096, this.retain)) {
      this.#frames.splice(0, excess);
      this.#marks.splice(0, excess);
      this.#base += excess;
      this.#firstSeq = this.#marks[0] ?? this.#lastSeq;
    }
  }

  at(position: number): Uint8Array | undefined {
    return this.#frames[position - this.#base];
  }

  /** Watermark at an absolute position (highest seq emitted up to it). */
  markAt(position: number): number | undefined {
    return this.#marks[position - this.#base];
  }

  /** First retained position whose watermark is above `cursor` (binary search). */
  startAfter(cursor: number): number {
    let lo = 0;
    let hi = this.#marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#marks[mid]! > cursor) hi = mid;
      else lo = mid + 1;
    }
    return this.#base + lo;
  }
}
