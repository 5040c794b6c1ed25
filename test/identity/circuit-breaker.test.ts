import { describe, expect, test } from 'bun:test';

import { CircuitBreakers, CircuitOpenError } from '../../src/identity/circuit-breaker.ts';
import { HostGate } from '../../src/identity/host-gate.ts';
import { HostRateLimiter } from '../../src/identity/rate-limiter.ts';

const clock = () => {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

const openError = (fn: () => unknown): CircuitOpenError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CircuitOpenError);
    return err as CircuitOpenError;
  }
  throw new Error('expected CircuitOpenError');
};

describe('CircuitBreakers', () => {
  test('opens after the threshold, probes after the cooldown, closes on success', () => {
    const c = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 3, cooldownMs: 1000, now: c.now });
    for (let i = 0; i < 2; i++) {
      expect(breakers.enter('plc')).toBe(false);
      breakers.failure('plc');
    }
    expect(breakers.state('plc')).toBe('closed');
    breakers.enter('plc');
    breakers.failure('plc');
    expect(breakers.state('plc')).toBe('open');
    expect(breakers.openHosts).toBe(1);
    expect(openError(() => breakers.enter('plc')).retryAt).toBe(c.now() + 1000);
    expect(breakers.state('other')).toBe('closed');

    c.advance(1000);
    expect(breakers.state('plc')).toBe('half-open');
    expect(breakers.enter('plc')).toBe(true); // the probe
    openError(() => breakers.enter('plc')); // only one probe at a time
    breakers.success('plc');
    expect(breakers.state('plc')).toBe('closed');
    expect(breakers.openHosts).toBe(0);
  });

  test('a failed probe reopens with a doubled cooldown, capped', () => {
    const c = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 1000, maxCooldownMs: 3000, now: c.now });
    breakers.failure('h');
    const cooldowns: number[] = [];
    for (let i = 0; i < 4; i++) {
      const retryAt = openError(() => breakers.enter('h')).retryAt;
      cooldowns.push(retryAt - c.now());
      c.advance(retryAt - c.now());
      expect(breakers.enter('h')).toBe(true);
      breakers.failure('h');
    }
    expect(cooldowns).toEqual([1000, 2000, 3000, 3000]);
  });

  test('an abandoned probe lets the next request probe', () => {
    const c = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 10, now: c.now });
    breakers.failure('h');
    c.advance(10);
    expect(breakers.enter('h')).toBe(true);
    breakers.abandon('h');
    expect(breakers.enter('h')).toBe(true);
  });
});

describe('HostGate', () => {
  test('counts failures by verdict, refuses at once while open, and spends no token then', async () => {
    const c = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 2, cooldownMs: 1000, now: c.now });
    const limiter = new HostRateLimiter({ defaultRate: 100, now: c.now });
    const gate = new HostGate(limiter, breakers);
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('boom'));
    };
    for (let i = 0; i < 2; i++) await expect(gate.run('h', failing, () => 'failure')).rejects.toThrow('boom');
    await expect(gate.run('h', failing, () => 'failure')).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
    c.advance(1000);
    expect(await gate.run('h', async () => 'ok', () => 'success')).toBe('ok');
    expect(breakers.state('h')).toBe('closed');
    // a neutral verdict on a probe releases it without closing or reopening
    for (let i = 0; i < 2; i++) await expect(gate.run('h', failing, () => 'failure')).rejects.toThrow('boom');
    c.advance(2000);
    await expect(gate.run('h', failing, () => 'neutral')).rejects.toThrow('boom');
    expect(breakers.state('h')).toBe('half-open');
  });
});
