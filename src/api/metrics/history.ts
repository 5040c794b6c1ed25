/**
 * A fixed-size ring of recent samples (events/s and lag, one a second) for the sparklines.
 *
 * Memory is `capacity` samples whatever the uptime; reading returns them oldest first.
 */

export interface HistorySample {
  /** Wall-clock ms when taken. */
  readonly at: number;
  readonly eventsPerSecond: number;
  /** null while nothing has been committed. */
  readonly lagSeconds: number | null;
}

export class MetricsHistory {
  readonly capacity: number;
  readonly #ring: Array<HistorySample | undefined>;
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 2) throw new RangeError(`history capacity must be >= 2, got ${capacity}`);
    this.capacity = capacity;
    this.#ring = new Array<HistorySample | undefined>(capacity);
  }

  push(sample: HistorySample): void {
    this.#ring[this.#next] = sample;
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.#size + 1, this.capacity);
  }

  /** Oldest first. */
  samples(): HistorySample[] {
    const out: HistorySample[] = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) {
      const sample = this.#ring[(start + i) % this.capacity];
      if (sample) out.push(sample);
    }
    return out;
  }
}
