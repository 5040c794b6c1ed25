/**
 * host-politeness: how the backfill asks a PDS (or the relay) for anything: a token bucket per
 * host, what the host says about its limits, and a pause for a host that keeps failing.
 *
 * Promises:
 * - `take(host)` waits for the host's next slot (identity/rate-limiter.ts: at most
 *   `burst + rate * T` requests over any interval T) and for the end of any pause; the default
 *   rate is `defaultRate` (3/s), `bigHostRate` (10/s) for the big hosting providers
 *   (`*.host.bsky.network`, `bsky.social`), and exactly `rates[host]` where the operator set one.
 * - `observe(host, response)` reads what the host said: a 429 or 503 pauses it for `Retry-After`
 *   (seconds or an HTTP date; 30 s when absent), and `ratelimit-remaining: 0` with
 *   `ratelimit-reset` (epoch seconds, as the reference PDS sends) pauses it until the reset; both
 *   are capped at an hour so a hostile host cannot park the queue for ever.
 * - `failed(host)` / `succeeded(host)`: from FAILURES_BEFORE_PAUSE failures in a row, the host is
 *   paused for 30 s doubling to 30 minutes; one success resets it. A paused host costs nothing
 *   while other hosts go on: waiting happens per host.
 * Bounded: state for at most `maxHosts` hosts; the oldest healthy ones are forgotten first.
 */
import { HostRateLimiter, abortableSleep } from '../identity/rate-limiter.ts';

export interface HostPolitenessOptions {
  readonly defaultRate?: number;
  readonly bigHostRate?: number;
  /** requests per second per host, set by the operator (BACKFILL_HOST_RATES) */
  readonly rates?: ReadonlyMap<string, number>;
  readonly maxHosts?: number;
  readonly now?: () => number;
}

export interface HostStanding {
  readonly host: string;
  readonly pausedForMs: number;
  readonly failuresInRow: number;
  readonly reason: string | null;
}

interface Standing {
  pausedUntil: number;
  failuresInRow: number;
  reason: string | null;
}

const FAILURES_BEFORE_PAUSE = 3;
const PAUSE_BASE_MS = 30_000;
const PAUSE_MAX_MS = 30 * 60_000;
const SAID_PAUSE_MAX_MS = 60 * 60_000;
const RETRY_AFTER_DEFAULT_MS = 30_000;
const BIG_HOST = /(^|\.)host\.bsky\.network$|^bsky\.social$/;

export class HostPoliteness {
  readonly #buckets: HostRateLimiter;
  readonly #standing = new Map<string, Standing>();
  readonly #maxHosts: number;
  readonly #now: () => number;

  constructor(options: HostPolitenessOptions = {}) {
    const bigHostRate = options.bigHostRate ?? 10;
    this.#now = options.now ?? Date.now;
    this.#maxHosts = options.maxHosts ?? 100_000;
    this.#buckets = new HostRateLimiter({
      defaultRate: options.defaultRate ?? 3,
      rates: options.rates ?? new Map(),
      rateFor: (host) => (BIG_HOST.test(host.replace(/:\d+$/, '')) ? bigHostRate : undefined),
      maxHosts: this.#maxHosts,
      now: this.#now,
    });
  }

  rateOf(host: string): number {
    return this.#buckets.rateOf(host);
  }

  /** Milliseconds before `host` may be asked again because it is paused (0: not paused). */
  pausedFor(host: string): number {
    return Math.max(0, (this.#standing.get(host)?.pausedUntil ?? 0) - this.#now());
  }

  /** Waits out the host's pause, then for its next slot. */
  async take(host: string, signal?: AbortSignal): Promise<void> {
    for (let paused = this.pausedFor(host); paused > 0; paused = this.pausedFor(host)) await abortableSleep(paused, signal);
    await this.#buckets.take(host, signal);
  }

  /** Reads the host's answer for what it says about its limits. */
  observe(host: string, response: Response): void {
    if (response.status === 429 || response.status === 503) {
      const after = retryAfterMs(response.headers.get('retry-after'), this.#now());
      this.#pause(host, Math.min(SAID_PAUSE_MAX_MS, after ?? RETRY_AFTER_DEFAULT_MS), `answered ${response.status}`);
      return;
    }
    if (response.headers.get('ratelimit-remaining') === '0') {
      const reset = Number(response.headers.get('ratelimit-reset'));
      if (Number.isFinite(reset) && reset > 0) this.#pause(host, Math.min(SAID_PAUSE_MAX_MS, reset * 1000 - this.#now()), 'rate limit spent');
    }
  }

  failed(host: string, reason: string): void {
    const standing = this.#get(host);
    standing.failuresInRow++;
    if (standing.failuresInRow >= FAILURES_BEFORE_PAUSE) {
      const ms = Math.min(PAUSE_MAX_MS, PAUSE_BASE_MS * 2 ** (standing.failuresInRow - FAILURES_BEFORE_PAUSE));
      this.#pause(host, ms, reason);
    }
  }

  succeeded(host: string): void {
    const standing = this.#standing.get(host);
    if (standing !== undefined) {
      standing.failuresInRow = 0;
      if (standing.pausedUntil <= this.#now()) this.#standing.delete(host);
    }
  }

  /** Hosts paused now or failing, worst first (for the metrics). */
  troubled(limit: number): HostStanding[] {
    const now = this.#now();
    return [...this.#standing]
      .map(([host, s]) => ({ host, pausedForMs: Math.max(0, s.pausedUntil - now), failuresInRow: s.failuresInRow, reason: s.reason }))
      .filter((s) => s.pausedForMs > 0 || s.failuresInRow > 0)
      .sort((a, b) => b.pausedForMs - a.pausedForMs || b.failuresInRow - a.failuresInRow)
      .slice(0, limit);
  }

  #pause(host: string, ms: number, reason: string): void {
    if (!(ms > 0)) return;
    const standing = this.#get(host);
    standing.pausedUntil = Math.max(standing.pausedUntil, this.#now() + ms);
    standing.reason = reason;
  }

  #get(host: string): Standing {
    let standing = this.#standing.get(host);
    if (standing === undefined) {
      if (this.#standing.size >= this.#maxHosts) {
        for (const [name, s] of this.#standing) {
          if (s.pausedUntil <= this.#now()) this.#standing.delete(name);
          if (this.#standing.size < this.#maxHosts) break;
        }
      }
      standing = { pausedUntil: 0, failuresInRow: 0, reason: null };
      this.#standing.set(host, standing);
    }
    return standing;
  }
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; null when unreadable. */
export function retryAfterMs(value: string | null, now: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
