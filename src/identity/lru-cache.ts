// lru-cache: a bounded map with least-recently-used eviction and a per-entry time to live.
//
// Owns nothing but its entries. Promises: never holds more than `maxEntries`; an entry older than
// its TTL is never returned (it is dropped when touched); get/set/delete are O(1) (a Map keeps
// insertion order, and a hit re-inserts the key to mark it most recent).
export interface LruCacheOptions {
  maxEntries: number;
  /** default time to live of an entry, in ms */
  ttlMs: number;
  /** clock, injectable for tests (default Date.now) */
  now?: () => number;
}

interface Slot<V> {
  value: V;
  storedAt: number;
  expiresAt: number;
}

export class LruCache<K, V> {
  readonly #map = new Map<K, Slot<V>>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: LruCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value and when it was stored, or undefined when absent or expired. */
  entry(key: K): Readonly<{ value: V; storedAt: number }> | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.#now()) {
      this.#map.delete(key);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, slot);
    return slot;
  }

  get(key: K): V | undefined {
    return this.entry(key)?.value;
  }

  set(key: K, value: V, ttlMs: number = this.#ttlMs): void {
    const now = this.#now();
    this.#map.delete(key);
    this.#map.set(key, { value, storedAt: now, expiresAt: now + ttlMs });
    while (this.#map.size > this.#maxEntries) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }
}
