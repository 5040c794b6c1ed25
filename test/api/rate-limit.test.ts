import { describe, expect, test } from 'bun:test';
import { createApp } from '../../src/api/app.ts';
import { clientAddress, RateLimiter } from '../../src/api/rate-limit.ts';
import { silentLogger } from '../../src/log.ts';

describe('RateLimiter', () => {
  test('a client gets its limit, then 429s until the bucket refills; clients are apart', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(3, 300, () => now);
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    const refused = limiter.take('a');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBe(100); // one token every 100 s
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-policy': '3;w=300' });
    expect(limiter.take('b').allowed).toBe(true);
    now += 100_000;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });
});

describe('clientAddress', () => {
  const proxy = new Set(['10.0.0.2']);
  test.each([
    ['a direct client', '203.0.113.7', null, '203.0.113.7'],
    ['a direct client that forges X-Forwarded-For', '203.0.113.7', '1.2.3.4', '203.0.113.7'],
    ['behind the trusted proxy', '10.0.0.2', '198.51.100.9', '198.51.100.9'],
    ['behind the proxy, a forged hop before the real one', '10.0.0.2', '1.2.3.4, 198.51.100.9', '198.51.100.9'],
    ['an IPv4-mapped peer', '::ffff:10.0.0.2', '198.51.100.9', '198.51.100.9'],
    ['garbage forwarded', '10.0.0.2', 'not an address', '10.0.0.2'],
  ])('%s', (_name, peer, forwarded, expected) => {
    expect(clientAddress(peer, forwarded, proxy)).toBe(expected);
  });
});

test('the app answers 429 with the headers past the limit, on /xrpc/ only', async () => {
  const app = createApp({ log: silentLogger, readiness: {}, rateLimit: { limit: 2, windowSeconds: 300, peerOf: () => '203.0.113.7' } });
  const call = () => app.handle(new Request('http://localhost/xrpc/app.bsky.actor.getProfile?actor=alice.test'));
  const first = await call();
  expect(first.headers.get('ratelimit-limit')).toBe('2');
  expect(first.headers.get('ratelimit-remaining')).toBe('1');
  await call();
  const third = await call();
  expect(third.status).toBe(429);
  expect(await third.json()).toEqual({ error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' });
  expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await app.handle(new Request('http://localhost/health'))).status).toBe(200);
});
