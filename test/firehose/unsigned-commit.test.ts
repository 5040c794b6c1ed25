import { describe, expect, test } from 'bun:test';
import { decode, encode, toBytes, toCidLink } from '@atcute/cbor';

import { CarIndex } from '../../src/firehose/car-index.ts';
import { decodeFrame, type CommitFrame } from '../../src/firehose/frame-decoder.ts';
import { cutUnsignedCommit } from '../../src/firehose/unsigned-commit.ts';
import { Rng } from '../../src/sim/rng.ts';
import { cidOf, DID, REV } from './fixtures.ts';
import { simulatorFrames } from './sim-frames.ts';

/** What the signature covers by definition: the decoded commit without sig, encoded again. */
const reencoded = (block: Uint8Array): Uint8Array => {
  const { sig: _sig, ...unsigned } = decode(block) as Record<string, unknown>;
  return encode(unsigned);
};

const commitBlocks = simulatorFrames({ seed: 'unsigned-commit', accounts: 200, commits: 1000 }).map((bytes) => {
  const frame = decodeFrame(bytes) as CommitFrame;
  const index = new CarIndex(frame.blocks);
  const block = index.find(frame.commit.bytes);
  if (block === -1) throw new Error('commit block not in CAR');
  return index.bytesOf(block);
});

const sigBytes = toBytes(new Uint8Array(64).fill(7));
const data = toCidLink(cidOf(new Uint8Array([1])));

describe('cutUnsignedCommit: the signed message cut out of the block', () => {
  test('1,000 simulator commits: exactly the re-encoding, and a new array', () => {
    for (const block of commitBlocks) {
      const cut = cutUnsignedCommit(block);
      expect(cut).toEqual(reencoded(block));
      expect(cut!.buffer).not.toBe(block.buffer);
    }
  });

  test('map heads across the 23/24 and 255/256 entry boundaries shrink by the right amount', () => {
    for (const count of [1, 2, 23, 24, 25, 255, 256, 257]) {
      const map: Record<string, unknown> = { sig: sigBytes };
      for (let i = 1; i < count; i++) map[`k${i}`] = i;
      const block = encode(map);
      expect(cutUnsignedCommit(block)).toEqual(reencoded(block));
    }
  });

  test('sig anywhere in the key order, nested values, every kind the decoder accepts but floats', () => {
    const block = encode({
      a: [1, -1, -(2 ** 40), 2 ** 53 - 1, 'x'.repeat(300), { nested: [null, true, false] }],
      did: DID,
      rev: REV,
      sig: sigBytes,
      data,
      prev: null,
      version: 3,
      zzzzzzzzzz: { bytes: toBytes(new Uint8Array(70000)), link: data },
      ünïcode: 'é',
    });
    expect(cutUnsignedCommit(block)).toEqual(reencoded(block));
  });

  const unsure: [string, Uint8Array][] = [
    ['a float (re-encoding may turn it into an integer)', encode({ sig: sigBytes, x: 1.5 })],
    ['no sig entry', encode({ did: DID, version: 3 })],
    ['not a map', encode([sigBytes])],
    ['empty input', new Uint8Array(0)],
    ['an empty map', encode({})],
    ['a non-shortest map head', Uint8Array.from([0xb8, 0x01, 0x63, 0x73, 0x69, 0x67, 0x40])],
    ['a non-shortest length', Uint8Array.from([0xa1, 0x63, 0x73, 0x69, 0x67, 0x58, 0x01, 0x00])],
    ['a head with an 8-byte argument past 2^53', Uint8Array.from([0xa2, 0x61, 0x61, 0x1b, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x63, 0x73, 0x69, 0x67, 0x40])],
    ['the smallest negative the decoder refuses', Uint8Array.from([0xa2, 0x61, 0x61, 0x3b, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x63, 0x73, 0x69, 0x67, 0x40])],
    ['an indefinite length', Uint8Array.from([0xa1, 0x63, 0x73, 0x69, 0x67, 0x5f, 0xff])],
    ['undefined', Uint8Array.from([0xa2, 0x61, 0x61, 0xf7, 0x63, 0x73, 0x69, 0x67, 0x40])],
    ['a truncated value', encode({ sig: sigBytes }).subarray(0, 20)],
    ['trailing bytes', Uint8Array.from([...encode({ sig: sigBytes }), 0x00])],
    ['a map with more entries than bytes', Uint8Array.from([0xb9, 0xff, 0xff, 0x63, 0x73, 0x69, 0x67, 0x40])],
    ['a non-text key', Uint8Array.from([0xa2, 0x01, 0x01, 0x63, 0x73, 0x69, 0x67, 0x40])],
  ];
  test.each(unsure)('%s: null, so the caller re-encodes', (_name, block) => {
    expect(cutUnsignedCommit(block)).toBeNull();
  });

  test('fuzzed blocks: whenever the decoder accepts a map with sig bytes, the cut is the re-encoding or null', () => {
    const rng = Rng.derive('unsigned-commit-fuzz', 'mutations');
    let compared = 0;
    for (let round = 0; round < 20000; round++) {
      const block = new Uint8Array(commitBlocks[round % commitBlocks.length]!);
      for (let n = rng.int(2) + 1; n > 0; n--) block[rng.int(block.length)] = rng.int(256);
      let value: unknown;
      try {
        value = decode(block);
      } catch {
        continue;
      }
      const sig = (value as Record<string, unknown>)?.sig;
      if (typeof value !== 'object' || value === null || Array.isArray(value) || sig === undefined) continue;
      const cut = cutUnsignedCommit(block);
      if (cut !== null) {
        expect(cut).toEqual(reencoded(block));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });
});
