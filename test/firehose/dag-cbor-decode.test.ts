import { describe, expect, test } from 'bun:test';
import * as atcute from '@atcute/cbor';

import { CarIndex } from '../../src/firehose/car-index.ts';
import { decode, decodeFirst } from '../../src/firehose/dag-cbor-decode.ts';
import { Rng } from '../../src/sim/rng.ts';
import { cidOf } from './fixtures.ts';
import { simulatorFrames } from './sim-frames.ts';

type Outcome = { value: unknown; rest: number } | 'throws';

const outcome = (first: (bytes: Uint8Array) => [unknown, Uint8Array], bytes: Uint8Array): Outcome => {
  try {
    const [value, rest] = first(bytes);
    return { value, rest: rest.length };
  } catch {
    return 'throws';
  }
};
const whole = (one: (bytes: Uint8Array) => unknown, bytes: Uint8Array): unknown => {
  try {
    return { value: one(bytes) };
  } catch {
    return 'throws';
  }
};

/** Same value (classes included) or both throw, for decodeFirst and decode. */
const expectSame = (bytes: Uint8Array): void => {
  expect(outcome(decodeFirst, bytes)).toStrictEqual(outcome(atcute.decodeFirst, bytes));
  expect(whole(decode, bytes)).toStrictEqual(whole(atcute.decode, bytes));
};

const frames = simulatorFrames({ seed: 'dag-cbor', accounts: 200, commits: 1500 });
const blocks: Uint8Array[] = [];
for (const frame of frames.slice(0, 500)) {
  const [, body] = atcute.decodeFirst(frame);
  const car = ((atcute.decode(body) as { blocks: atcute.BytesWrapper }).blocks).buf;
  const index = new CarIndex(car);
  for (let block = 0; block < index.blockCount; block++) blocks.push(index.bytesOf(block));
}

describe('dag-cbor-decode: the same values and the same refusals as @atcute/cbor', () => {
  test('simulator frames (header, then body) and every block of their CARs', () => {
    for (const frame of frames) {
      expectSame(frame);
      expectSame(atcute.decodeFirst(frame)[1]);
    }
    for (const block of blocks) expectSame(block);
  });

  test('the values decoded are the library classes', () => {
    const value = decode(atcute.encode({ b: atcute.toBytes(new Uint8Array([1])), c: atcute.toCidLink(cidOf(new Uint8Array([2]))) })) as Record<string, unknown>;
    expect(value.b).toBeInstanceOf(atcute.BytesWrapper);
    expect(value.c).toBeInstanceOf(atcute.CidLinkWrapper);
  });

  const edgeCases: [string, number[]][] = [
    ['empty input', []],
    ['non-shortest argument', [0x18, 0x01]],
    ['integer past 2^53', [0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0]],
    ['-(2^53)', [0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    ['float NaN', [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]],
    ['float 1.5', [0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]],
    ['half float', [0xf9, 0x3c, 0x00]],
    ['undefined', [0xf7]],
    ['indefinite array', [0x9f, 0xff]],
    ['tag other than 42', [0xd8, 0x2b, 0x40]],
    ['cid of 36 bytes', [0xd8, 0x2a, 0x58, 0x24, ...new Array(36).fill(0)]],
    ['cid without the 0x00 prefix', [0xd8, 0x2a, 0x58, 0x25, 0x01, 0x01, 0x71, 0x12, 0x20, ...new Array(32).fill(1)]],
    ['cid version 2', [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x02, 0x71, 0x12, 0x20, ...new Array(32).fill(1)]],
    ['cid raw codec', [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x55, 0x12, 0x20, ...new Array(32).fill(1)]],
    ['cid sha-512', [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x13, 0x20, ...new Array(32).fill(1)]],
    ['cid of a 31-byte digest', [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x1f, ...new Array(32).fill(1)]],
    ['cid as text', [0xd8, 0x2a, 0x61, 0x61]],
    ['keys out of order', [0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]],
    ['duplicate keys', [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02]],
    ['shorter key after a longer one', [0xa2, 0x62, 0x61, 0x61, 0x01, 0x61, 0x62, 0x02]],
    ['non-text key', [0xa1, 0x01, 0x02]],
    ['__proto__ key', [0xa1, 0x69, ...new TextEncoder().encode('__proto__'), 0xa1, 0x61, 0x78, 0x01]],
    ['invalid UTF-8 key', [0xa1, 0x62, 0xc3, 0x28, 0x01]],
    ['invalid UTF-8 long string', [0x78, 0x1a, ...new Array(25).fill(0x61), 0xff]],
    ['BOM kept', [0x63, 0xef, 0xbb, 0xbf]],
    ['ASCII string past 24 bytes', [0x78, 0x40, ...new Array(64).fill(0x61)]],
    ['NUL, control characters and DEL', [0x64, 0x00, 0x01, 0x7f, 0x61]],
    ['non-ASCII string past 24 bytes', [0x78, 0x1b, ...new Array(25).fill(0x61), 0xc3, 0xa9]],
    ['non-ASCII short string', [0x63, 0x61, 0xc3, 0xa9]],
    ['non-ASCII key', [0xa1, 0x62, 0xc3, 0xa9, 0x01]],
    ['25-byte key', [0xa1, 0x78, 0x19, ...new Array(25).fill(0x6b), 0x01]],
    ['array longer than the input', [0x9a, 0x00, 0x01, 0x00, 0x00]],
    ['trailing bytes', [0x01, 0x02]],
    ['map value missing', [0xa1, 0x61, 0x61]],
  ];
  test.each(edgeCases)('%s', (_name, bytes) => expectSame(Uint8Array.from(bytes)));

  test('the key cache tells apart keys that share a slot or a length', () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i.toString(36)}`);
    for (const key of keys) expectSame(atcute.encode({ [key]: 1, [`${key}x`]: 2 }));
  });

  test('fuzzed frames and blocks (bytes changed, cut short)', () => {
    const rng = Rng.derive('dag-cbor-fuzz', 'mutations');
    const inputs = [...frames.slice(0, 300), ...blocks.slice(0, 700)];
    for (let round = 0; round < 20000; round++) {
      const source = inputs[round % inputs.length]!;
      const bytes = new Uint8Array(source);
      let mutated: Uint8Array = bytes;
      if (rng.chance(0.8)) {
        for (let n = rng.int(3) + 1; n > 0; n--) bytes[rng.int(bytes.length)] = rng.int(256);
      } else {
        mutated = bytes.subarray(0, rng.int(bytes.length));
      }
      expectSame(mutated);
    }
  });
});
