/**
 * Deterministic pseudo-random numbers for the simulator.
 *
 * Owns: a seeded sfc32 generator (seeded through a string hash, so `--seed 1` and `--seed "1"`
 * agree) and the few draws the workload needs.
 * Promises: the same seed always yields the same sequence, on every platform and Bun version;
 * nothing here reads the clock or `Math.random`.
 */

/** 32-bit FNV-1a over the UTF-16 code units, mixed by splitmix32 to fill the generator state. */
const seedWords = (seed: string): [number, number, number, number] => {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const out: number[] = [];
  let x = h >>> 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out.push((z ^ (z >>> 16)) >>> 0);
  }
  return [out[0]!, out[1]!, out[2]!, out[3]!];
};

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: string | number) {
    [this.#a, this.#b, this.#c, this.#d] = seedWords(String(seed));
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A fresh generator whose sequence depends only on this seed and `label`. */
  static derive(seed: string | number, label: string): Rng {
    return new Rng(`${seed}\u0000${label}`);
  }

  /** Uniform 32-bit unsigned integer (sfc32). */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** Integer in [0, n) biased towards 0: `exponent` 1 is uniform, larger is more skewed. */
  skewed(n: number, exponent: number): number {
    return Math.min(n - 1, Math.floor(n * this.float() ** exponent));
  }

  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    let total = 0;
    for (const k in weights) total += weights[k];
    let x = this.float() * total;
    let last: K | undefined;
    for (const k in weights) {
      last = k;
      x -= weights[k];
      if (x < 0) return k;
    }
    if (last === undefined) throw new RangeError('weighted pick from an empty table');
    return last;
  }

  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v & 255;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 255;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 255;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}
