import { expect, test } from 'bun:test';

import { LruCache } from '../../src/identity/lru-cache.ts';

const clock = () => {
  let now = 1000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

test('evicts the least recently used entry beyond maxEntries', () => {
  const cache = new LruCache<string, number>({ maxEntries: 2, ttlMs: 1000 });
  cache.set('a', 1);
  cache.set('b', 2);
  expect(cache.get('a')).toBe(1); // a is now the most recent
  cache.set('c', 3);
  expect(cache.size).toBe(2);
  expect(cache.get('b')).toBeUndefined();
  expect(cache.get('a')).toBe(1);
  expect(cache.get('c')).toBe(3);
});

test('expires entries after their TTL, per-entry TTL overrides the default', () => {
  const c = clock();
  const cache = new LruCache<string, number>({ maxEntries: 10, ttlMs: 100, now: c.now });
  cache.set('a', 1);
  cache.set('b', 2, 500);
  c.advance(99);
  expect(cache.entry('a')).toEqual({ value: 1, storedAt: 1000, expiresAt: 1100 } as never);
  c.advance(1);
  expect(cache.get('a')).toBeUndefined();
  expect(cache.size).toBe(1);
  expect(cache.get('b')).toBe(2);
});

test('delete and clear', () => {
  const cache = new LruCache<string, number>({ maxEntries: 10, ttlMs: 100 });
  cache.set('a', 1);
  cache.set('b', 2);
  expect(cache.delete('a')).toBe(true);
  expect(cache.delete('a')).toBe(false);
  cache.clear();
  expect(cache.size).toBe(0);
});

test('rejects a non-positive bound', () => {
  expect(() => new LruCache({ maxEntries: 0, ttlMs: 1 })).toThrow(RangeError);
});
