import { describe, expect, test } from 'bun:test';
import { fromUint8Array } from '@atcute/car';
import { encode } from '@atcute/cbor';

import { CarIndex, CarIndexError } from '../../src/firehose/car-index.ts';
import { decodeFrame, type CommitFrame } from '../../src/firehose/frame-decoder.ts';
import { Rng } from '../../src/sim/rng.ts';
import { blockOf, cidOf, post, writeCar, type Block } from './fixtures.ts';
import { simulatorFrames } from './sim-frames.ts';

interface Listed {
  cid: number[];
  bytes: number[];
}

/** Every block as @atcute/car's reader sees it, or 'throws'. */
const referenceBlocks = (car: Uint8Array): Listed[] | 'throws' => {
  try {
    return [...fromUint8Array(car)].map((entry) => ({ cid: [...entry.cid.bytes], bytes: [...entry.bytes] }));
  } catch {
    return 'throws';
  }
};

/** Every block as CarIndex sees it, or 'throws' (only ever a CarIndexError). */
const indexedBlocks = (car: Uint8Array): Listed[] | 'throws' => {
  let index: CarIndex;
  try {
    index = new CarIndex(car);
  } catch (err) {
    expect(err).toBeInstanceOf(CarIndexError);
    return 'throws';
  }
  const blocks: Listed[] = [];
  for (let block = 0; block < index.blockCount; block++) {
    const cidAt = index.digestOffsetOf(block) - 4;
    blocks.push({ cid: [...car.subarray(cidAt, cidAt + 36)], bytes: [...index.bytesOf(block)] });
  }
  return blocks;
};

const cars = simulatorFrames({ seed: 'car-index', accounts: 100, commits: 300 }).map((frame) => (decodeFrame(frame) as CommitFrame).blocks);

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const header = [...varint(encode({ version: 1, roots: [] }).length), ...encode({ version: 1, roots: [] })];
const record = blockOf(post('hello'));
const blockEntry = (block: Block, length = block.cid.bytes.length + block.bytes.length): number[] => [
  ...varint(length),
  ...block.cid.bytes,
  ...block.bytes,
];
const withCid = (edit: (cid: Uint8Array) => void): Block => {
  const cid = new Uint8Array(record.cid.bytes);
  edit(cid);
  return { cid: { ...record.cid, bytes: cid }, bytes: record.bytes };
};

describe('CarIndex: the blocks @atcute/car reads, as offsets', () => {
  test('simulator CARs: the same blocks in the same order', () => {
    for (const car of cars) expect(indexedBlocks(car)).toEqual(referenceBlocks(car));
  });

  test('find answers the block with that CID, the first of duplicates, -1 for others', () => {
    const other = blockOf(post('other'));
    const car = writeCar([record.cid], [other, record, { cid: record.cid, bytes: encode(post('second copy')) }]);
    const index = new CarIndex(car);
    expect(index.find(record.cid.bytes)).toBe(1);
    expect(index.find(other.cid.bytes)).toBe(0);
    expect(index.find(cidOf(encode(post('absent'))).bytes)).toBe(-1);
    expect(index.find(record.cid.bytes.subarray(0, 35))).toBe(-1);
  });

  test('past the scan limit: found through the digest map, blocks sharing digest bytes kept apart', () => {
    const blocks = Array.from({ length: 40 }, (_, i) => blockOf(post(`many ${i}`)));
    // a decoy with the same first digest bytes as block 30 but another CID
    const decoyCid = new Uint8Array(blocks[30]!.cid.bytes);
    decoyCid[35]! ^= 0xff;
    const decoy: Block = { cid: { ...blocks[30]!.cid, bytes: decoyCid }, bytes: encode(post('decoy')) };
    const car = writeCar([], [decoy, ...blocks, blocks[7]!]);
    const index = new CarIndex(car);
    for (let i = 0; i < blocks.length; i++) expect(index.find(blocks[i]!.cid.bytes)).toBe(i + 1);
    expect(index.find(decoyCid)).toBe(0);
  });

  const malformed: [string, number[]][] = [
    ['empty', []],
    ['header length a truncated varint', [0x80]],
    ['header length zero', [0x00]],
    ['header past the end', [0x20, 0xa0]],
    ['header not DAG-CBOR', [0x01, 0xff]],
    ['header not a CAR v1 header', [...varint(encode({ version: 2, roots: [] }).length), ...encode({ version: 2, roots: [] })]],
    ['header a map without roots', [...varint(encode({ version: 1 }).length), ...encode({ version: 1 })]],
    ['block length a truncated varint', [...header, 0xff, 0xff]],
    ['block length a 9-byte varint', [...header, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['block shorter than a CID', [...header, ...blockEntry(record, 35)]],
    ['block length past the end', [...header, ...blockEntry(record, 36 + record.bytes.length + 1)]],
    ['CID cut short', [...header, ...varint(40), ...record.cid.bytes.subarray(0, 20)]],
    ['CID version 0', [...header, ...blockEntry(withCid((cid) => void (cid[0] = 0)))]],
    ['CID codec dag-pb', [...header, ...blockEntry(withCid((cid) => void (cid[1] = 0x70)))]],
    ['CID hash sha-512', [...header, ...blockEntry(withCid((cid) => void (cid[2] = 0x13)))]],
    ['CID digest length 31', [...header, ...blockEntry(withCid((cid) => void (cid[3] = 31)))]],
    ['a good block, then a bad one', [...header, ...blockEntry(record), ...blockEntry(withCid((cid) => void (cid[0] = 2)))]],
  ];
  test.each(malformed)('%s: throws CarIndexError, as @atcute/car throws', (_name, bytes) => {
    const car = Uint8Array.from(bytes);
    expect(referenceBlocks(car)).toBe('throws');
    expect(() => new CarIndex(car)).toThrow(CarIndexError);
  });

  test('a CID of raw codec, a non-minimal varint and a block of only a CID are read as @atcute/car reads them', () => {
    const raw = withCid((cid) => void (cid[1] = 0x55));
    const car = Uint8Array.from([...header, ...blockEntry(raw), 0xa4, 0x80, 0x00, ...record.cid.bytes, ...record.bytes.subarray(0, 0x24 - 36), ...varint(36), ...record.cid.bytes]);
    expect(indexedBlocks(car)).toEqual(referenceBlocks(car));
    expect(indexedBlocks(car)).not.toBe('throws');
  });

  test('fuzzed CARs (bytes changed, cut short, extended): accepted and rejected as @atcute/car does, same blocks', () => {
    const rng = Rng.derive('car-index-fuzz', 'mutations');
    for (let round = 0; round < 3000; round++) {
      const car = new Uint8Array(cars[round % cars.length]!);
      let mutated: Uint8Array = car;
      const kind = rng.int(3);
      if (kind === 0) {
        for (let n = rng.int(3) + 1; n > 0; n--) car[rng.int(Math.min(car.length, 120))] = rng.int(256);
      } else if (kind === 1) {
        mutated = car.subarray(0, rng.int(car.length));
      } else {
        mutated = Uint8Array.from([...car, ...Array.from({ length: rng.int(40) + 1 }, () => rng.int(256))]);
      }
      expect(indexedBlocks(mutated)).toEqual(referenceBlocks(mutated));
    }
  });
});
