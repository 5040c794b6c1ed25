/**
 * Rate limits on the public API: a token bucket per client address for every /xrpc/ request.
 *
 * Owns the buckets (at most MAX_CLIENTS, the least recently seen dropped first) and the headers.
 * Promises: a client gets `limit` requests per `windowSeconds`, refilled smoothly; every XRPC
 * answer carries `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (Unix seconds when the
 * bucket is full again) and `ratelimit-policy` as the reference PDS sends them; past the limit the
 * answer is 429 `RateLimitExceeded` with `retry-after`. The client address is the connection's
 * peer; `X-Forwarded-For` is believed only when that peer is one of `trustProxy` (TRUST_PROXY),
 * and then its last address not itself a trusted proxy is the client.
 */
import { Elysia } from 'elysia';
import { isIP } from 'node:net';

export interface RateLimitOptions {
  /** requests per window per client (RATE_LIMIT) */
  readonly limit: number;
  readonly windowSeconds: number;
  /** proxies whose X-Forwarded-For is believed (TRUST_PROXY) */
  readonly trustProxy?: readonly string[];
  /** the connection's peer address (the server's, in production; injected by tests) */
  readonly peerOf?: (request: Request) => string | null;
  readonly now?: () => number;
}

const MAX_CLIENTS = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #limit: number;
  readonly #refillPerMs: number;
  readonly #windowSeconds: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: number, windowSeconds: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowSeconds = windowSeconds;
    this.#refillPerMs = limit / (windowSeconds * 1000);
    this.#now = now;
  }

  /** Takes one token for `client`; the headers to send, and whether the request may go on. */
  take(client: string): { allowed: boolean; headers: Record<string, string>; retryAfterSeconds: number } {
    const now = this.#now();
    let bucket = this.#buckets.get(client);
    if (bucket) this.#buckets.delete(client);
    else {
      bucket = { tokens: this.#limit, at: now };
      if (this.#buckets.size >= MAX_CLIENTS) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    bucket.tokens = Math.min(this.#limit, bucket.tokens + (now - bucket.at) * this.#refillPerMs);
    bucket.at = now;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.#buckets.set(client, bucket);
    const fullInMs = (this.#limit - bucket.tokens) / this.#refillPerMs;
    const retryAfterSeconds = allowed ? 0 : Math.ceil((1 - bucket.tokens) / this.#refillPerMs / 1000);
    return {
      allowed,
      retryAfterSeconds,
      headers: {
        'ratelimit-limit': String(this.#limit),
        'ratelimit-remaining': String(Math.floor(bucket.tokens)),
        'ratelimit-reset': String(Math.ceil((now + fullInMs) / 1000)),
        'ratelimit-policy': `${this.#limit};w=${this.#windowSeconds}`,
      },
    };
  }
}

/** The client's address: the peer, or with a trusted proxy in front, what it forwarded. */
export function clientAddress(peer: string | null, forwardedFor: string | null, trustProxy: ReadonlySet<string>): string {
  const direct = normalize(peer ?? 'unknown');
  if (!trustProxy.has(direct) || !forwardedFor) return direct;
  const hops = forwardedFor.split(',').map((hop) => normalize(hop.trim())).filter((hop) => isIP(hop) !== 0);
  for (let index = hops.length - 1; index >= 0; index--) if (!trustProxy.has(hops[index]!)) return hops[index]!;
  return direct;
}

const normalize = (address: string): string => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '').toLowerCase();

export function rateLimitRoutes(options: RateLimitOptions) {
  const limiter = new RateLimiter(options.limit, options.windowSeconds, options.now);
  const trusted = new Set((options.trustProxy ?? []).map(normalize));
  return new Elysia({ name: 'rate-limit' }).onRequest(({ request, server, set }) => {
    if (!new URL(request.url).pathname.startsWith('/xrpc/')) return;
    const peer = options.peerOf ? options.peerOf(request) : (server?.requestIP(request)?.address ?? null);
    const verdict = limiter.take(clientAddress(peer, request.headers.get('x-forwarded-for'), trusted));
    Object.assign(set.headers, verdict.headers);
    if (verdict.allowed) return;
    set.status = 429;
    set.headers['retry-after'] = String(verdict.retryAfterSeconds);
    set.headers['content-type'] = 'application/json';
    return { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' };
  });
}
