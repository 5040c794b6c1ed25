import { describe, expect, test } from 'bun:test';
import { embeddedPostgresSettings, sharedBuffersMb } from '../../src/db/postgres-settings.ts';

const GB = 1024 ** 3;

describe('the embedded server is sized to the memory it may use', () => {
  test.each([
    [0.25 * GB, 128],
    [1 * GB, 256],
    [2 * GB, 512],
    [8 * GB, 2048],
    [24 * GB, 4096],
    [256 * GB, 4096],
  ])('%d bytes: shared_buffers %d MB', (memory, mb) => {
    expect(sharedBuffersMb(memory)).toBe(mb);
    expect(embeddedPostgresSettings(100, false, memory).shared_buffers).toBe(`${mb}MB`);
  });
});

test('DURABLE_COMMITS turns synchronous_commit on; it is off by default', () => {
  expect(embeddedPostgresSettings(100).synchronous_commit).toBe('off');
  expect(embeddedPostgresSettings(100, true).synchronous_commit).toBe('on');
});
