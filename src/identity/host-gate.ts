// host-gate: every outgoing identity request passes here: circuit breaker first, then the host's
// rate limit, then the request, then the verdict back to the breaker.
//
// Owns nothing but the pairing of a HostRateLimiter and CircuitBreakers. Promises: a request to a
// host whose circuit is open is refused at once with CircuitOpenError (no token spent); a request
// that waited for a token is refused if the circuit opened meanwhile; every admitted request
// reports exactly one verdict, given by the caller's `judge` ('failure' counts against the host,
// 'success' closes it, 'neutral' tells nothing, e.g. an abort or a cached answer).
import { CircuitBreakers, CircuitOpenError } from './circuit-breaker.ts';
import type { HostRateLimiter } from './rate-limiter.ts';

export type Verdict = 'success' | 'failure' | 'neutral';
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export class HostGate {
  readonly limiter: HostRateLimiter;
  readonly breakers: CircuitBreakers;

  constructor(limiter: HostRateLimiter, breakers: CircuitBreakers) {
    this.limiter = limiter;
    this.breakers = breakers;
  }

  async run<T>(host: string, task: () => Promise<T>, judge: (outcome: Outcome<T>) => Verdict, signal?: AbortSignal): Promise<T> {
    const probe = this.breakers.enter(host);
    try {
      await this.limiter.take(host, signal);
      if (!probe && this.breakers.state(host) === 'open') throw new CircuitOpenError(host, this.breakers.retryAt(host));
    } catch (err) {
      if (probe) this.breakers.abandon(host);
      throw err;
    }
    let outcome: Outcome<T>;
    try {
      outcome = { ok: true, value: await task() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const verdict = judge(outcome);
    if (verdict === 'success') this.breakers.success(host);
    else if (verdict === 'failure') this.breakers.failure(host);
    else if (probe) this.breakers.abandon(host);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }
}
