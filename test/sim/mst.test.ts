import { describe, expect, test } from 'bun:test';
import * as CID from '@atcute/cid';
import { MemoryBlockStore, NodeStore, NodeWrangler, getKeyHeight } from '@atcute/mst';
import { EMPTY_NODE, keyHeight, mstDelete, mstGet, mstPut, type MstNode } from '../../src/sim/mst.ts';
import { Rng } from '../../src/sim/rng.ts';

const rootString = (node: MstNode): string => CID.toString(CID.decode(node.cid));

const valueFor = async (i: number): Promise<Uint8Array> => (await CID.create(0x71, new TextEncoder().encode(`value-${i}`))).bytes;

describe('sim MST agrees with @atcute/mst', () => {
  test('key heights', async () => {
    for (const key of ['app.bsky.feed.post/3jqfcqzm3fo2j', 'com.example.record/3jqfcqzm3fs2j', 'a/b', 'blue/3jqfcqzm3fx2j']) {
      expect(keyHeight(key)).toBe(await getKeyHeight(key));
    }
  });

  test('the empty tree', async () => {
    const ns = new NodeStore(new MemoryBlockStore());
    expect(rootString(EMPTY_NODE)).toBe((await (await ns.get(null)).cid()).$link);
  });

  for (const seed of [1, 2, 3]) {
    test(`random puts, updates and deletes give the same roots (seed ${seed})`, async () => {
      const rng = new Rng(seed);
      const wrangler = new NodeWrangler(new NodeStore(new MemoryBlockStore()));
      let theirs: string | null = null;
      let ours = EMPTY_NODE;
      const live: string[] = [];
      for (let i = 0; i < 400; i++) {
        const roll = rng.float();
        if (roll < 0.6 || live.length === 0) {
          const key = `app.bsky.feed.like/${rng.u32().toString(36)}${i.toString(36)}`;
          const value = await valueFor(i);
          theirs = await wrangler.putRecord(theirs, key, CID.toCidLink(CID.decode(value)));
          ours = mstPut(ours, key, value, i + 1);
          live.push(key);
        } else if (roll < 0.75) {
          const key = rng.pick(live);
          const value = await valueFor(i + 10_000);
          theirs = await wrangler.putRecord(theirs, key, CID.toCidLink(CID.decode(value)));
          ours = mstPut(ours, key, value, i + 1);
        } else {
          const idx = rng.int(live.length);
          const key = live[idx]!;
          live.splice(idx, 1);
          theirs = await wrangler.deleteRecord(theirs, key);
          ours = mstDelete(ours, key, i + 1);
        }
        expect(rootString(ours)).toBe(theirs!);
      }
      for (const key of live) expect(mstGet(ours, key)).not.toBeNull();
      expect(mstGet(ours, 'app.bsky.feed.like/missing')).toBeNull();
    });
  }

  test('deleting an absent key and deleting everything', () => {
    let root = EMPTY_NODE;
    const keys = Array.from({ length: 50 }, (_, i) => `app.bsky.graph.follow/k${i.toString().padStart(3, '0')}`);
    for (const [i, key] of keys.entries()) root = mstPut(root, key, new Uint8Array(36).fill(i), 1);
    expect(mstDelete(root, 'app.bsky.graph.follow/absent', 2)).toBe(root);
    for (const key of keys) root = mstDelete(root, key, 3);
    expect(root).toBe(EMPTY_NODE);
  });
});
