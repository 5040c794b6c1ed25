/**
 * A counting semaphore: at most `limit` holders at once, waiters served first come, first served.
 *
 * The pipeline, the database pool and the identity workers all bound their concurrency with it,
 * and all expose `active`, `waiting` and `limit` live so metrics show the knobs as they really are.
 */
export class Semaphore {
  readonly limit: number;
  #active = 0;
  #waiters: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
    this.limit = limit;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves once a slot is held; the caller must call `release()` exactly once. */
  acquire(): Promise<void> {
    if (this.#active < this.limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else if (this.#active > 0) this.#active--;
    else throw new Error('semaphore released more often than acquired');
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
