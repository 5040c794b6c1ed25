/**
 * atproto interop vectors, mst/*, against the MST code in the repository.
 *
 * Key heights: src/sim/mst.ts `keyHeight` (the only height Aqueduct computes; the firehose path
 * does not walk MSTs) and @atcute/mst `getKeyHeight`, the reference test/sim/mst.test.ts compares
 * the simulator with. key_heights.json gives heights; in example_keys.txt the digit after the
 * letter is the key's height (see gen_keys.py). Common prefix: the simulator computes it only while
 * it writes a node's entries (`p` beside the suffix `k`), so common_prefix.json checks the byte-wise
 * prefix function used here, and that function checks every `p` of a tree of the example keys,
 * whose root must also equal @atcute/mst's and whose keys must sit at nodes of their height.
 */
import { describe, expect, test } from 'bun:test';
import * as CID from '@atcute/cid';
import { BytesWrapper } from '@atcute/cbor';
import { getKeyHeight, MemoryBlockStore, NodeStore, NodeWrangler } from '@atcute/mst';

import { decode } from '../../src/firehose/dag-cbor-decode.ts';
import { EMPTY_NODE, keyHeight, mstNodes, mstPut, type MstNode } from '../../src/sim/mst.ts';
import { interopFile, interopJson } from '../support/interop.ts';
import { show } from './vectors.ts';

interface HeightVector {
  readonly key: string;
  readonly height: number;
}
interface PrefixVector {
  readonly left: string;
  readonly right: string;
  readonly len: number;
}

const HEIGHTS = interopJson<HeightVector[]>('mst/key_heights.json');
const PREFIXES = interopJson<PrefixVector[]>('mst/common_prefix.json');
const EXAMPLE_KEYS = interopFile('mst/example_keys.txt')
  .split('\n')
  .filter((line) => line !== '');

const heightRows = HEIGHTS.map(({ key, height }): [string, string, number] => [show(key), key, height]);
const exampleRows = EXAMPLE_KEYS.map((key): [string, string, number] => [key, key, Number(key[1])]);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Shared leading bytes of two keys, as MST entries count them. */
const commonPrefixLength = (left: string, right: string): number => {
  const a = encoder.encode(left);
  const b = encoder.encode(right);
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};

describe('key_heights.json', () => {
  test('the file has vectors', () => expect(HEIGHTS.length).toBeGreaterThan(0));
  test.each(heightRows)('sim keyHeight(%s)', (_name, key, height) => expect(keyHeight(key)).toBe(height));
  test.each(heightRows)('@atcute/mst getKeyHeight(%s)', async (_name, key, height) => expect(await getKeyHeight(key)).toBe(height));
});

describe('example_keys.txt', () => {
  test('the file has keys of heights 0 to 5', () => expect(new Set(exampleRows.map(([, , height]) => height))).toEqual(new Set([0, 1, 2, 3, 4, 5])));
  test.each(exampleRows)('sim keyHeight(%s)', (_name, key, height) => expect(keyHeight(key)).toBe(height));
  test.each(exampleRows)('@atcute/mst getKeyHeight(%s)', async (_name, key, height) => expect(await getKeyHeight(key)).toBe(height));
});

describe('common_prefix.json', () => {
  test('the file has vectors', () => expect(PREFIXES.length).toBeGreaterThan(0));
  test.each(PREFIXES.map((vector): [string, PrefixVector] => [`${show(vector.left)} ${show(vector.right)}`, vector]))('prefix of %s', (_name, vector) => {
    expect(commonPrefixLength(vector.left, vector.right)).toBe(vector.len);
  });
});

describe('a tree of the example keys', () => {
  const value = (i: number): Uint8Array => CID.fromDigest(0x71, new Uint8Array(32).fill(i)).bytes;
  let root: MstNode = EMPTY_NODE;
  for (const [i, key] of EXAMPLE_KEYS.entries()) root = mstPut(root, key, value(i), 1);
  const nodes = [...mstNodes(root)];

  test('has the root @atcute/mst builds', async () => {
    const wrangler = new NodeWrangler(new NodeStore(new MemoryBlockStore()));
    let theirs: string | null = null;
    for (const [i, key] of EXAMPLE_KEYS.entries()) theirs = await wrangler.putRecord(theirs, key, CID.toCidLink(CID.decode(value(i))));
    expect(CID.toString(CID.decode(root.cid))).toBe(theirs!);
  });

  test('puts every key in a node of its height', () => {
    const heightOf = new Map<string, number>();
    for (const node of nodes) for (const key of node.keys) heightOf.set(key, node.height);
    expect(Object.fromEntries(heightOf)).toEqual(Object.fromEntries(exampleRows.map(([, key, height]) => [key, height])));
  });

  test('writes each entry as the common prefix with the entry before it and the rest of the key', () => {
    let entries = 0;
    for (const node of nodes) {
      const data = decode(node.bytes) as { e: Array<{ p: number; k: BytesWrapper }> };
      let previous = '';
      data.e.forEach((entry, index) => {
        const key = node.keys[index]!;
        expect(entry.p).toBe(commonPrefixLength(previous, key));
        expect(previous.slice(0, entry.p) + decoder.decode(entry.k.buf)).toBe(key);
        previous = key;
        entries++;
      });
    }
    expect(entries).toBe(EXAMPLE_KEYS.length);
  });
});
