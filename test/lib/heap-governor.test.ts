import { describe, expect, test } from 'bun:test';
import { edenGC, fullGC, heapSize } from 'bun:jsc';
import { HeapGovernor } from '../../src/lib/heap-governor.ts';

const MB = 1024 * 1024;

/** 24 MB of buffers held long enough to survive an eden collection, as queued frames are. */
const holder: { buffers: Uint8Array[] } = { buffers: [] };
function promoteBuffers(): void {
  for (let i = 0; i < 240; i++) holder.buffers.push(new Uint8Array(100 * 1024).fill(i));
  edenGC();
}

describe('HeapGovernor', () => {
  test('collects once the heap has grown by the threshold, and the garbage goes', () => {
    fullGC();
    const governor = new HeapGovernor({ growthBytes: 16 * MB, intervalMs: 1_000 });
    expect(governor.check()).toBe(false); // sets the low point
    promoteBuffers();
    const grown = heapSize();
    holder.buffers = [];
    expect(governor.check()).toBe(true);
    expect(governor.collections).toBe(1);
    expect(heapSize()).toBeLessThan(grown - 16 * MB);
    expect(governor.check()).toBe(false); // the low point is the collected heap
  });

  test('leaves a heap that grew less than the threshold alone', () => {
    fullGC();
    const governor = new HeapGovernor({ growthBytes: 64 * MB, intervalMs: 1_000 });
    governor.check();
    promoteBuffers();
    expect(governor.check()).toBe(false);
    expect(governor.collections).toBe(0);
    holder.buffers = [];
  });
});
