import { describe, expect, test } from 'bun:test';

import { HostRateLimiter } from '../../src/identity/rate-limiter.ts';

/** A clock that only moves when a sleeper sleeps: each take() returns at once, time is virtual. */
const virtualTime = () => {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      now += ms;
    },
    advance: (ms: number) => void (now += ms),
  };
};

describe('HostRateLimiter', () => {
  test('grants the burst at once, then one request per 1/rate seconds', async () => {
    const clock = virtualTime();
    const limiter = new HostRateLimiter({ defaultRate: 5, now: clock.now, sleep: clock.sleep });
    const times: number[] = [];
    for (let i = 0; i < 25; i++) {
      await limiter.take('pds.example');
      times.push(clock.now());
    }
    expect(times.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(times[5]).toBe(200);
    expect(times[24]).toBe(4000);
    // any one-second window holds at most burst + rate requests
    for (const start of times) expect(times.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(10);
  });

  test('hosts have separate buckets and their own rates', async () => {
    const clock = virtualTime();
    const limiter = new HostRateLimiter({ defaultRate: 1, rates: new Map([['plc.test', 100]]), now: clock.now, sleep: clock.sleep });
    for (let i = 0; i < 100; i++) await limiter.take('plc.test');
    expect(clock.now()).toBe(0);
    await limiter.take('a.test');
    expect(clock.now()).toBe(0);
    await limiter.take('a.test');
    expect(clock.now()).toBe(1000);
    expect(limiter.rateOf('plc.test')).toBe(100);
    expect(limiter.rateOf('other.test')).toBe(1);
  });

  test('refills with time, never above the burst', async () => {
    const clock = virtualTime();
    const limiter = new HostRateLimiter({ defaultRate: 2, now: clock.now, sleep: clock.sleep });
    await limiter.take('h');
    await limiter.take('h');
    expect(limiter.delayOf('h')).toBe(500);
    clock.advance(60_000);
    expect(limiter.delayOf('h')).toBe(0);
    await limiter.take('h');
    await limiter.take('h');
    expect(clock.now()).toBe(60_000);
    await limiter.take('h');
    expect(clock.now()).toBe(60_500);
  });

  test('concurrent takers are spaced in arrival order (real clock)', async () => {
    const limiter = new HostRateLimiter({ defaultRate: 50 });
    const started = performance.now();
    const done: number[] = [];
    await Promise.all(Array.from({ length: 75 }, (_, i) => limiter.take('h').then(() => done.push(i))));
    const elapsed = performance.now() - started;
    // 50 from the burst, 25 more at 50/s: at least ~500 ms (a lower bound cannot flake)
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(done).toEqual(Array.from({ length: 75 }, (_, i) => i));
  });

  test('an aborted waiter gives its slot back', async () => {
    const limiter = new HostRateLimiter({ defaultRate: 1 });
    await limiter.take('h');
    const controller = new AbortController();
    const waiting = limiter.take('h', controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(limiter.delayOf('h')).toBeLessThanOrEqual(1000);
  });

  test('rejects nonsense rates', () => {
    expect(() => new HostRateLimiter({ defaultRate: 0 })).toThrow(RangeError);
    expect(() => new HostRateLimiter({ defaultRate: 1, rates: new Map([['h', Number.NaN]]) })).toThrow(RangeError);
  });

  test('drops full buckets beyond maxHosts', async () => {
    const clock = virtualTime();
    const limiter = new HostRateLimiter({ defaultRate: 10, maxHosts: 3, now: clock.now, sleep: clock.sleep });
    for (const host of ['a', 'b', 'c']) await limiter.take(host);
    clock.advance(10_000);
    await limiter.take('d');
    expect(limiter.hosts).toBe(1);
  });
});
