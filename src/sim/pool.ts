/**
 * A set with O(1) add, remove and random pick, for the workload's "things that exist" lists.
 *
 * Owns: the items' `slot` field (their position in the backing array).
 * Promises: `pick` draws uniformly; `pickSkewed` favours later slots, which for append-mostly pools
 * means recently added items (fresh posts get most of the likes).
 */
import type { Rng } from './rng.ts';

export interface Slotted {
  slot: number;
}

export class Pool<T extends Slotted> {
  #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  has(item: T): boolean {
    return item.slot >= 0 && this.#items[item.slot] === item;
  }

  add(item: T): void {
    if (this.has(item)) return;
    item.slot = this.#items.length;
    this.#items.push(item);
  }

  remove(item: T): void {
    if (!this.has(item)) return;
    const last = this.#items.pop()!;
    if (last !== item) {
      this.#items[item.slot] = last;
      last.slot = item.slot;
    }
    item.slot = -1;
  }

  pick(rng: Rng): T | undefined {
    return this.#items.length === 0 ? undefined : this.#items[rng.int(this.#items.length)];
  }

  /** Biased towards the end (exponent > 1 = stronger bias). */
  pickSkewed(rng: Rng, exponent: number): T | undefined {
    const n = this.#items.length;
    return n === 0 ? undefined : this.#items[n - 1 - rng.skewed(n, exponent)];
  }

  /** Biased towards the start. */
  pickEarly(rng: Rng, exponent: number): T | undefined {
    const n = this.#items.length;
    return n === 0 ? undefined : this.#items[rng.skewed(n, exponent)];
  }
}
