// circuit-breaker: stop asking a host that keeps failing, probe it now and then, resume when it heals.
//
// Owns one state per failing host. Promises: a host is closed (requests pass) until
// `failureThreshold` consecutive failures; then open for `cooldownMs`, during which `enter` throws
// CircuitOpenError with the time it may be retried; after the cooldown exactly one request (the
// probe) passes: its success closes the circuit, its failure reopens it with the cooldown doubled
// (capped at `maxCooldownMs`). Every `enter` that returned must be followed by exactly one of
// `success`, `failure` or `abandon` (the last releases a probe without a verdict). Healthy hosts
// keep no state, so memory is bounded by the hosts failing at once.
export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitOpenError extends Error {
  override readonly name = 'CircuitOpenError';
  readonly host: string;
  /** epoch ms when a request may be tried again */
  readonly retryAt: number;

  constructor(host: string, retryAt: number) {
    super(`circuit open for ${host}`);
    this.host = host;
    this.retryAt = retryAt;
  }
}

export interface CircuitBreakerOptions {
  /** consecutive failures that open the circuit (default 5) */
  failureThreshold?: number;
  /** first open period (default 10 s) */
  cooldownMs?: number;
  /** longest open period (default 5 min) */
  maxCooldownMs?: number;
  now?: () => number;
}

interface HostState {
  failures: number;
  /** 0 while closed */
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
}

export class CircuitBreakers {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #maxCooldownMs: number;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();

  constructor(options: CircuitBreakerOptions = {}) {
    this.#threshold = options.failureThreshold ?? 5;
    this.#cooldownMs = options.cooldownMs ?? 10_000;
    this.#maxCooldownMs = Math.max(this.#cooldownMs, options.maxCooldownMs ?? 5 * 60_000);
    this.#now = options.now ?? Date.now;
    if (!Number.isSafeInteger(this.#threshold) || this.#threshold < 1) throw new RangeError('failureThreshold must be >= 1');
  }

  state(host: string): CircuitState {
    const state = this.#hosts.get(host);
    if (state === undefined || state.openUntil === 0) return 'closed';
    return this.#now() < state.openUntil || state.probing ? 'open' : 'half-open';
  }

  /** When an open circuit lets its probe through (epoch ms); 0 when closed or half-open. */
  retryAt(host: string): number {
    const state = this.#hosts.get(host);
    if (state === undefined || state.openUntil === 0) return 0;
    if (state.probing) return this.#now() + state.cooldownMs;
    return state.openUntil > this.#now() ? state.openUntil : 0;
  }

  /** Hosts whose circuit is not closed. */
  get openHosts(): number {
    let n = 0;
    for (const state of this.#hosts.values()) if (state.openUntil !== 0) n++;
    return n;
  }

  /**
   * Throws CircuitOpenError unless a request to `host` may go out now; returns true when this
   * request is the probe of a half-open circuit.
   */
  enter(host: string): boolean {
    const state = this.#hosts.get(host);
    if (state === undefined || state.openUntil === 0) return false;
    const now = this.#now();
    if (now < state.openUntil) throw new CircuitOpenError(host, state.openUntil);
    if (state.probing) throw new CircuitOpenError(host, now + state.cooldownMs);
    state.probing = true;
    return true;
  }

  success(host: string): void {
    this.#hosts.delete(host);
  }

  failure(host: string): void {
    const now = this.#now();
    let state = this.#hosts.get(host);
    if (state === undefined) {
      state = { failures: 0, openUntil: 0, cooldownMs: this.#cooldownMs, probing: false };
      this.#hosts.set(host, state);
    }
    if (state.probing) {
      state.probing = false;
      state.cooldownMs = Math.min(this.#maxCooldownMs, state.cooldownMs * 2);
      state.openUntil = now + state.cooldownMs;
      return;
    }
    state.failures++;
    if (state.openUntil === 0 && state.failures >= this.#threshold) state.openUntil = now + state.cooldownMs;
  }

  /** Releases a probe that ended without telling anything about the host (e.g. shutdown). */
  abandon(host: string): void {
    const state = this.#hosts.get(host);
    if (state !== undefined) state.probing = false;
  }
}
