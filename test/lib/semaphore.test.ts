import { expect, test } from 'bun:test';
import { Semaphore } from '../../src/lib/semaphore.ts';

test('never more than `limit` holders, waiters served in order', async () => {
  const semaphore = new Semaphore(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, (_, index) =>
      semaphore.run(async () => {
        running++;
        peak = Math.max(peak, running);
        order.push(index);
        await Bun.sleep(1);
        running--;
      }),
    ),
  );
  expect(peak).toBe(2);
  expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect([semaphore.active, semaphore.waiting]).toEqual([0, 0]);
});

test('a failing task releases its slot', async () => {
  const semaphore = new Semaphore(1);
  await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  expect(semaphore.active).toBe(0);
  expect(() => semaphore.release()).toThrow(/more often than acquired/);
  expect(() => new Semaphore(0)).toThrow(RangeError);
});
