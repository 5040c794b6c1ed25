// rate-limiter: a token bucket per host, so identity work never asks one server too often.
//
// Owns one bucket per host (`name[:port]`). Promises: over any interval of length T a host is
// granted at most `burst + rate * T` requests (the rate is per second, the burst defaults to one
// second's worth); callers are served first come, first served (each one reserves the next free
// slot and sleeps until it); an abort while waiting gives the slot back and rejects with the
// signal's reason. Buckets that are full again are dropped once more than `maxHosts` exist, so
// memory stays bounded. The clock and the sleep are injectable for tests.
export interface RateLimiterOptions {
  /** requests per second for hosts without their own rate */
  defaultRate: number;
  /** requests per second for particular hosts (e.g. the PLC directory) */
  rates?: ReadonlyMap<string, number>;
  /** requests per second for a host not in `rates` (undefined: `defaultRate`), e.g. by domain */
  rateFor?: (host: string) => number | undefined;
  /** bucket size in requests (default: max(1, rate)) */
  burst?: (rate: number) => number;
  /** buckets kept before idle ones are dropped (default 10_000) */
  maxHosts?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface Bucket {
  readonly rate: number;
  readonly burst: number;
  /** may go negative: slots reserved by waiters */
  tokens: number;
  updatedAt: number;
}

const checkRate = (rate: number, what: string): number => {
  if (!Number.isFinite(rate) || rate <= 0) throw new RangeError(`${what} must be a positive number, got ${rate}`);
  return rate;
};

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export const abortableSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class HostRateLimiter {
  readonly #defaultRate: number;
  readonly #rates: ReadonlyMap<string, number>;
  readonly #rateFor: (host: string) => number | undefined;
  readonly #burst: (rate: number) => number;
  readonly #maxHosts: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    this.#defaultRate = checkRate(options.defaultRate, 'defaultRate');
    for (const [host, rate] of options.rates ?? []) checkRate(rate, `rate of ${host}`);
    this.#rates = options.rates ?? new Map();
    this.#rateFor = options.rateFor ?? (() => undefined);
    this.#burst = options.burst ?? ((rate) => Math.max(1, rate));
    this.#maxHosts = options.maxHosts ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? abortableSleep;
  }

  get hosts(): number {
    return this.#buckets.size;
  }

  rateOf(host: string): number {
    return this.#rates.get(host) ?? this.#rateFor(host) ?? this.#defaultRate;
  }

  /** Milliseconds a request to `host` would wait if it asked now (0: a token is free). */
  delayOf(host: string): number {
    const bucket = this.#buckets.get(host);
    if (bucket === undefined) return 0;
    this.#refill(bucket);
    return bucket.tokens >= 1 ? 0 : Math.ceil(((1 - bucket.tokens) / bucket.rate) * 1000);
  }

  /** Waits for the next slot of `host`. */
  async take(host: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const bucket = this.#bucket(host);
    this.#refill(bucket);
    bucket.tokens -= 1;
    if (bucket.tokens >= 0) return;
    const waitMs = Math.ceil((-bucket.tokens / bucket.rate) * 1000);
    try {
      await this.#sleep(waitMs, signal);
    } catch (err) {
      bucket.tokens += 1; // give the reserved slot back
      throw err;
    }
  }

  #refill(bucket: Bucket): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - bucket.updatedAt);
    bucket.tokens = Math.min(bucket.burst, bucket.tokens + (elapsed / 1000) * bucket.rate);
    bucket.updatedAt = now;
  }

  #bucket(host: string): Bucket {
    let bucket = this.#buckets.get(host);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxHosts) this.#prune();
      const rate = this.rateOf(host);
      const burst = Math.max(1, this.#burst(rate));
      bucket = { rate, burst, tokens: burst, updatedAt: this.#now() };
      this.#buckets.set(host, bucket);
    }
    return bucket;
  }

  /** Drops buckets that are full again: forgetting them changes nothing. */
  #prune(): void {
    for (const [host, bucket] of this.#buckets) {
      this.#refill(bucket);
      if (bucket.tokens >= bucket.burst) this.#buckets.delete(host);
    }
  }
}
