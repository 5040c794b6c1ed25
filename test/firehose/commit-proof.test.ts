import { describe, expect, test } from 'bun:test';
import { CidLinkWrapper } from '@atcute/cbor';
import * as CID from '@atcute/cid';
import { getKeyHeight } from '@atcute/mst';
import fc from 'fast-check';

import { CarIndex } from '../../src/firehose/car-index.ts';
import { readCommit } from '../../src/firehose/commit-reader.ts';
import { CommitProofError, proveCommit, type ProofOp } from '../../src/firehose/commit-proof.ts';
import { decodeFirst } from '../../src/firehose/dag-cbor-decode.ts';
import { decodeFrame } from '../../src/firehose/frame-decoder.ts';
import { commonPrefixLength, EMPTY_TREE_CID, keyHeight, mstKey } from '../../src/firehose/mst-node.ts';
import { blockOf, cborBlock, encodeCar, link, type Block } from '../../src/sim/block.ts';
import { collectPath, EMPTY_NODE, keyHeight as simKeyHeight, mstDelete, mstNodes, mstPut, type MstNode } from '../../src/sim/mst.ts';
import { interopFile, interopJson } from '../support/interop.ts';
import { simulatorFrames } from './sim-frames.ts';

const cidString = (cid: Uint8Array): string => CID.toString(CID.decode(cid));
const cidBytes = (cid: string): Uint8Array => CID.fromString(cid).bytes;
const valueCid = (n: number): Uint8Array => cborBlock({ $type: 'test.record', n }).cid;

const blocksOf = (blocks: Iterable<Block>): CarIndex => {
  const list = [...blocks];
  return new CarIndex(encodeCar(list[0]?.cid ?? EMPTY_TREE_CID.bytes(), list));
};
const nodeBlock = (node: MstNode): Block => ({ cid: node.cid, bytes: node.bytes });

/** The reason a proof fails with, or what it proved ('inverted', 'ops-only'). */
const outcome = (run: () => unknown): string => {
  try {
    return String(run());
  } catch (err) {
    if (err instanceof CommitProofError) return err.reason;
    throw err;
  }
};

interface Built {
  before: MstNode;
  after: MstNode;
  ops: ProofOp[];
  /** the covering proof of every op's path in the new tree (what a PDS sends) */
  proof: Set<MstNode>;
}

/** A commit over the sim MST: each change sets a path to a value, or deletes it (null). */
const buildCommit = (state: Map<string, Uint8Array>, before: MstNode, changes: readonly [string, Uint8Array | null][]): Built => {
  let after = before;
  const ops: ProofOp[] = [];
  for (const [path, value] of changes) {
    const prev = state.get(path) ?? null;
    if (value === null) {
      after = mstDelete(after, path, 1);
      ops.push({ action: 'delete', path, cid: null, prev });
    } else {
      after = mstPut(after, path, value, 1);
      ops.push({ action: prev === null ? 'create' : 'update', path, cid: value, prev });
    }
  }
  const proof = new Set<MstNode>();
  for (const [path] of changes) collectPath(after, path, proof);
  proof.add(after);
  return { before, after, ops, proof };
};

const treeOf = (entries: Iterable<[string, Uint8Array]>): MstNode => {
  let root = EMPTY_NODE;
  for (const [key, value] of entries) root = mstPut(root, key, value, 1);
  return root;
};

const prove = (built: Built, ops: readonly ProofOp[] = built.ops, blocks: Iterable<MstNode> = built.proof, prevData: Uint8Array | null = built.before.cid): string =>
  outcome(() => proveCommit({ data: built.after.cid, prevData, ops, blocks: blocksOf([...blocks].map(nodeBlock)) }));

const permutations = <T>(items: readonly T[]): T[][] =>
  items.length <= 1 ? [[...items]] : items.flatMap((item, i) => permutations(items.toSpliced(i, 1)).map((rest) => [item, ...rest]));

interface ProofFixture {
  comment: string;
  leafValue: string;
  keys: string[];
  adds: string[];
  dels: string[];
  rootBeforeCommit: string;
  rootAfterCommit: string;
  blocksInProof: string[];
}

describe('proveCommit: the interop commit-proof fixtures', () => {
  for (const fixture of interopJson<ProofFixture[]>('firehose/commit-proof-fixtures.json')) {
    test(fixture.comment, () => {
      const leaf = cidBytes(fixture.leafValue);
      const state = new Map(fixture.keys.map((key) => [key, leaf] as [string, Uint8Array]));
      const before = treeOf(state);
      expect(cidString(before.cid)).toBe(fixture.rootBeforeCommit);
      const changes: [string, Uint8Array | null][] = [...fixture.adds.map((key) => [key, leaf] as [string, Uint8Array]), ...fixture.dels.map((key) => [key, null] as [string, null])];
      const built = buildCommit(state, before, changes);
      expect(cidString(built.after.cid)).toBe(fixture.rootAfterCommit);
      // the simulator's covering proofs are the reference's
      expect([...built.proof].map((node) => cidString(node.cid)).sort()).toEqual([...fixture.blocksInProof].sort());

      const nodes = new Map([...mstNodes(built.after)].map((node) => [cidString(node.cid), node]));
      const proofNodes = fixture.blocksInProof.map((cid) => nodes.get(cid)!);
      // every order of undoing the ops proves with exactly the fixture's blocks
      for (const order of permutations(built.ops)) expect(prove(built, order, proofNodes)).toBe('inverted');
      // each block is either needed (dropping it is a missing block) or not read at all; the
      // covering proofs hold some nodes an inversion never opens (a merge with an empty side)
      const needed = proofNodes.filter((_, drop) => {
        const result = prove(built, built.ops, proofNodes.toSpliced(drop, 1));
        expect(['missing-block', 'inverted']).toContain(result);
        return result === 'missing-block';
      });
      expect(needed).toContain(built.after);
      for (const order of permutations(built.ops)) expect(prove(built, order, needed)).toBe('inverted');
      // only one fixture has such nodes: the new key's right neighbour sits two layers down, alone
      expect(proofNodes.length - needed.length).toBe(fixture.comment === 'add on edge with neighbor two layers down' ? 2 : 0);
    });
  }
});

describe('key heights and prefixes agree with the interop MST fixtures', () => {
  test('key_heights.json', async () => {
    for (const { key, height } of interopJson<{ key: string; height: number }[]>('mst/key_heights.json')) {
      expect({ key, height: keyHeight(mstKey(key)) }).toEqual({ key, height });
      expect(await getKeyHeight(key)).toBe(height);
    }
  });

  test('common_prefix.json', () => {
    for (const { left, right, len } of interopJson<{ left: string; right: string; len: number }[]>('mst/common_prefix.json')) {
      expect({ left, right, len: commonPrefixLength(mstKey(left), mstKey(right)) }).toEqual({ left, right, len });
    }
  });

  test('example_keys.txt: the digit after the letter is the height', () => {
    const keys = interopFile('mst/example_keys.txt').split('\n').filter((line) => line.length > 0);
    expect(keys.length).toBeGreaterThan(100);
    for (const key of keys) {
      expect({ key, height: keyHeight(mstKey(key)) }).toEqual({ key, height: Number(key[1]) });
      expect(simKeyHeight(key)).toBe(Number(key[1]));
    }
  });

  test('a path is keyed by its UTF-8 bytes', () => {
    expect(mstKey('app.bsky.feed.post/abc')).toEqual(new TextEncoder().encode('app.bsky.feed.post/abc'));
    expect([...mstKey('a/é')]).toEqual([0x61, 0x2f, 0xc3, 0xa9]);
  });
});

describe('proveCommit: real simulator frames', () => {
  test('every commit of a simulator run proves from its prevData', () => {
    const frames = simulatorFrames({ seed: 'proof', accounts: 60, commits: 3000 });
    const counts = { commits: 0, create: 0, update: 0, delete: 0, multi: 0 };
    for (const bytes of frames) {
      const frame = decodeFrame(bytes);
      if (frame.kind !== 'commit') continue;
      // the frame decoder does not read prevData (nor keeps op cids binary): read them from the body
      const [, rest] = decodeFirst(bytes);
      const [body] = decodeFirst(rest) as [{ prevData?: CidLinkWrapper; ops: { action: ProofOp['action']; path: string; cid: CidLinkWrapper | null; prev?: CidLinkWrapper }[] }, Uint8Array];
      expect(body.prevData).toBeInstanceOf(CidLinkWrapper);
      // Sync 1.1 on the wire: prev on every update and delete, none on a create
      for (const op of body.ops) expect({ action: op.action, prev: op.prev !== undefined }).toEqual({ action: op.action, prev: op.action !== 'create' });
      const ops = body.ops.map((op): ProofOp => ({ action: op.action, path: op.path, cid: op.cid?.bytes ?? null, prev: op.prev?.bytes ?? null }));
      const { commit } = readCommit(frame);
      const input = { data: commit.data.bytes, prevData: body.prevData!.bytes, ops, blocks: new CarIndex(frame.blocks) };
      expect(outcome(() => proveCommit(input))).toBe('inverted');
      if (ops.length > 1) {
        counts.multi++;
        expect(outcome(() => proveCommit({ ...input, ops: ops.slice(1) }))).toBe('prev-data-mismatch');
      }
      counts.commits++;
      for (const op of ops) counts[op.action]++;
    }
    expect(counts.commits).toBeGreaterThan(2500);
    expect(counts.update).toBeGreaterThan(0);
    expect(counts.delete).toBeGreaterThan(0);
    expect(counts.multi).toBeGreaterThan(0);
  });
});

describe('proveCommit: tampered and legacy commits', () => {
  const state = new Map<string, Uint8Array>();
  for (let i = 0; i < 400; i++) state.set(`app.bsky.feed.like/3k${i.toString(36).padStart(4, '0')}aaaaa2`, valueCid(i));
  const before = treeOf(state);
  const present = [...state.keys()];
  const built = buildCommit(state, before, [
    ['app.bsky.feed.post/3lnew0000000a', valueCid(1000)],
    [present[10]!, valueCid(1001)],
    [present[200]!, null],
  ]);
  const allNodes = [...mstNodes(built.after)];
  const [create, update, del] = built.ops as [ProofOp, ProofOp, ProofOp];

  test('the honest commit proves, in any order', () => {
    for (const order of permutations(built.ops)) expect(prove(built, order)).toBe('inverted');
  });

  test('a wrong prevData', () => {
    expect(prove(built, built.ops, built.proof, valueCid(5))).toBe('prev-data-mismatch');
    expect(prove(built, built.ops, built.proof, built.after.cid)).toBe('prev-data-mismatch');
  });

  test('a wrong op cid', () => {
    expect(prove(built, [{ ...create, cid: valueCid(6) }, update, del])).toBe('op-mismatch');
    expect(prove(built, [create, { ...update, cid: valueCid(6) }, del])).toBe('op-mismatch');
  });

  test('a wrong op prev', () => {
    expect(prove(built, [create, { ...update, prev: valueCid(6) }, del])).toBe('prev-data-mismatch');
    expect(prove(built, [create, update, { ...del, prev: valueCid(6) }])).toBe('prev-data-mismatch');
  });

  test('an op left out', () => {
    for (let i = 0; i < 3; i++) expect(prove(built, built.ops.toSpliced(i, 1))).toBe('prev-data-mismatch');
  });

  test('an op made up', () => {
    const far = present[350]!;
    // with only the covering proofs, a made-up op walks into nodes the commit did not send
    expect(prove(built, [...built.ops, { action: 'delete', path: far, cid: null, prev: state.get(far)! }])).toBe('missing-block');
    // with every node at hand, a made-up op is caught by the tree itself
    expect(prove(built, [...built.ops, { action: 'update', path: far, cid: valueCid(7), prev: state.get(far)! }], allNodes)).toBe('op-mismatch');
    expect(prove(built, [...built.ops, { action: 'create', path: 'app.bsky.feed.post/3lnew0000000b', cid: valueCid(7), prev: null }], allNodes)).toBe('op-mismatch');
    expect(prove(built, [...built.ops, { action: 'delete', path: 'app.bsky.feed.post/3lnew0000000b', cid: null, prev: valueCid(7) }], allNodes)).toBe(
      'prev-data-mismatch',
    );
    // a create that was really an update (the new tree holds its cid: only the root tells), a
    // delete of a path that is still there
    expect(prove(built, [{ ...update, action: 'create', prev: null }, create, del], allNodes)).toBe('prev-data-mismatch');
    expect(prove(built, [create, update, { ...del, path: present[201]! }], allNodes)).toBe('op-mismatch');
  });

  test('a swapped block: right CID, other bytes', () => {
    const blocks = [...built.proof].map(nodeBlock);
    for (let i = 0; i < blocks.length; i++) {
      const swapped = blocks.with(i, { cid: blocks[i]!.cid, bytes: blocks[(i + 1) % blocks.length]!.bytes });
      expect(outcome(() => proveCommit({ data: built.after.cid, prevData: before.cid, ops: built.ops, blocks: blocksOf(swapped) }))).toBe('bad-node');
    }
  });

  test('legacy commits are checked forwards only', () => {
    expect(prove(built, built.ops, built.proof, null)).toBe('ops-only');
    expect(prove(built, [create, { ...update, prev: null }, del])).toBe('ops-only');
    expect(prove(built, [create, update, { ...del, prev: null }])).toBe('ops-only');
    // forwards, a wrong cid or a path still present is still caught
    expect(prove(built, [{ ...create, cid: valueCid(6) }, update, del], built.proof, null)).toBe('op-mismatch');
    expect(prove(built, [create, update, { ...del, path: present[201]! }], allNodes, null)).toBe('op-mismatch');
    // but an op left out is not
    expect(prove(built, [create, update], built.proof, null)).toBe('ops-only');
  });

  test('ops of the wrong shape', () => {
    const reasons: [string, ProofOp[]][] = [
      ['create with prev', [{ ...create, prev: valueCid(1) }]],
      ['create without cid', [{ ...create, cid: null }]],
      ['update without cid', [{ ...update, cid: null }]],
      ['delete with cid', [{ ...del, cid: valueCid(1) }]],
      ['short cid', [{ ...create, cid: create.cid!.subarray(0, 35) }]],
      ['short prev', [{ ...del, prev: del.prev!.subarray(1) }]],
      ['a path twice', [create, { ...create, action: 'update', prev: valueCid(1) }]],
    ];
    for (const [what, ops] of reasons) expect({ what, outcome: prove(built, ops) }).toEqual({ what, outcome: 'bad-op' });
  });

  test('a commit without ops proves only when nothing changed', () => {
    const same = { ...built, before: built.after };
    expect(prove(same, [], [built.after], built.after.cid)).toBe('inverted');
    expect(prove(built, [])).toBe('prev-data-mismatch');
  });

  test('the first commit of a repo inverts to the empty tree', () => {
    const empty = new Map<string, Uint8Array>();
    const first = buildCommit(empty, EMPTY_NODE, [['app.bsky.actor.profile/self', valueCid(1)], ['app.bsky.feed.post/3l0000000000a', valueCid(2)]]);
    expect(cidString(EMPTY_TREE_CID.bytes())).toBe(cidString(EMPTY_NODE.cid));
    expect(prove(first)).toBe('inverted');
    // and deleting every record leaves the empty tree, which needs no block
    const gone = buildCommit(new Map([['app.bsky.actor.profile/self', valueCid(1)]]), treeOf([['app.bsky.actor.profile/self', valueCid(1)]]), [
      ['app.bsky.actor.profile/self', null],
    ]);
    expect(gone.after.cid).toEqual(EMPTY_TREE_CID.bytes());
    expect(prove(gone, gone.ops, [])).toBe('inverted');
  });
});

describe('proveCommit: malformed MST nodes', () => {
  const encoder = new TextEncoder();
  /** Keys of one height, sharing a prefix. */
  const keysAt = (height: number, count: number, prefix = 'com.example.thing/'): string[] => {
    const keys: string[] = [];
    for (let i = 0; keys.length < count; i++) if (keyHeight(mstKey(`${prefix}${i}`)) === height) keys.push(`${prefix}${i}`);
    return keys.sort();
  };
  interface EntryShape {
    key: string;
    prefix?: number;
    tree?: Uint8Array | null;
  }
  /** A node, encoded by the simulator's DAG-CBOR writer (prefix compression as given). */
  const node = (entries: EntryShape[], left: Uint8Array | null = null): Block => {
    let prev = '';
    const e = entries.map(({ key, prefix, tree }) => {
      const p = prefix ?? commonPrefixLength(encoder.encode(prev), encoder.encode(key));
      prev = key;
      return { k: encoder.encode(key.slice(p)), p, t: tree ? link(tree) : null, v: link(valueCid(1)) };
    });
    return cborBlock({ e, l: left ? link(left) : null });
  };
  const attempt = (root: Block, others: Block[], ops: ProofOp[] = []): string =>
    outcome(() => proveCommit({ data: root.cid, prevData: valueCid(9), ops, blocks: blocksOf([root, ...others]) }));
  const createOf = (key: string): ProofOp => ({ action: 'create', path: key, cid: valueCid(1), prev: null });

  const [a0, b0] = keysAt(0, 2) as [string, string];
  const [c1] = keysAt(1, 1) as [string];
  // a key that sorts first: its path goes down every node's left link
  const [firstKey] = keysAt(0, 1, 'a.a/') as [string];
  const first = createOf(firstKey);

  test('a well-formed hand-made node reads (control)', () => {
    const leaf = node([{ key: firstKey }, { key: a0 }, { key: b0 }]);
    expect(attempt(leaf, [], [first])).toBe('prev-data-mismatch');
    const top = node([{ key: c1 }], leaf.cid);
    expect(attempt(top, [leaf], [first])).toBe('prev-data-mismatch');
  });

  test('each broken rule is a bad node', () => {
    const leaf = node([{ key: a0 }]);
    const cases: [string, Block, Block[], ProofOp[]][] = [
      ['keys out of order', node([{ key: b0 }, { key: a0 }]), [], []],
      ['a key twice', node([{ key: a0 }, { key: a0 }]), [], []],
      // the third key's first own byte is compared with one the second key shares with the first
      ['keys out of order, two back', node([{ key: 'com.example.x/aab' }, { key: 'com.example.x/aac' }, { key: 'com.example.x/a0' }]), [], []],
      ['a short prefix, two back', node([{ key: 'com.example.x/aab' }, { key: 'com.example.x/aac' }, { key: 'com.example.x/ad', prefix: 14 }]), [], []],
      ['prefix not the whole common prefix', node([{ key: a0 }, { key: b0, prefix: 3 }]), [], []],
      ['prefix longer than the previous key', node([{ key: a0, prefix: 2 }]), [], []],
      ['a subtree below height 0', node([{ key: a0, tree: leaf.cid }]), [leaf], []],
      ['an untrimmed root', node([], leaf.cid), [leaf], []],
      ['a record where a node belongs', cborBlock({ $type: 'app.bsky.feed.like', subject: 'x' }), [], []],
      ['a key without a slash', node([{ key: 'com.example.thing' }]), [], []],
      ['a key with two slashes', node([{ key: 'com.example/thing/1' }]), [], []],
      ['a key ending in its slash', node([{ key: 'com.example.thing/' }]), [], []],
      ['a key starting with its slash', node([{ key: '/com.example.thing' }]), [], []],
      ['a key with a space', node([{ key: 'com.example.thing/a b' }]), [], []],
      ['a key of 1,025 bytes', node([{ key: `com.example.thing/${'a'.repeat(1025 - 18)}` }]), [], []],
      ['an empty node inside the tree', node([{ key: c1 }], cborBlock({ e: [], l: null }).cid), [cborBlock({ e: [], l: null })], [first]],
    ];
    for (const [what, root, others, ops] of cases) expect({ what, outcome: attempt(root, others, ops) }).toEqual({ what, outcome: 'bad-node' });
  });

  test('a non-canonical encoding with the right hash is a bad node', () => {
    const good = node([{ key: a0 }]);
    // the same map with `p: 0` written as a one-byte argument (0x18 0x00): valid CBOR, not DAG-CBOR
    const at = Buffer.from(good.bytes).indexOf(Buffer.from([0x61, 0x70, 0x00])) + 2;
    expect(at).toBeGreaterThan(2);
    const bytes = Uint8Array.from([...good.bytes.subarray(0, at), 0x18, ...good.bytes.subarray(at)]);
    expect(attempt(blockOf(bytes), [])).toBe('bad-node');
    // trailing bytes
    expect(attempt(blockOf(Uint8Array.from([...good.bytes, 0])), [])).toBe('bad-node');
    // a root CID of the raw codec (an MST node is DAG-CBOR)
    const raw = { cid: Uint8Array.from([1, 0x55, ...good.cid.subarray(2)]), bytes: good.bytes };
    expect(outcome(() => proveCommit({ data: raw.cid, prevData: null, ops: [], blocks: blocksOf([raw]) }))).toBe('bad-node');
  });

  test('a missing root is a missing block', () => {
    expect(outcome(() => proveCommit({ data: valueCid(3), prevData: valueCid(4), ops: [], blocks: blocksOf([]) }))).toBe('missing-block');
  });
});

describe('proveCommit: properties', () => {
  const collections = ['app.bsky.feed.like', 'app.bsky.feed.post', 'app.bsky.graph.follow'];
  const pathArb = fc.tuple(fc.constantFrom(...collections), fc.stringMatching(/^[a-z2-7]{1,6}$/)).map(([c, r]) => `${c}/${r}`);
  const intentArb = fc.record({ kind: fc.constantFrom('create', 'update', 'delete'), pick: fc.nat(), fresh: pathArb });

  test('honest commits prove (ops forwards or backwards); dropping any one op breaks the proof', () => {
    let serial = 0;
    fc.assert(
      fc.property(fc.uniqueArray(pathArb, { maxLength: 300, size: 'max' }), fc.array(intentArb, { minLength: 1, maxLength: 10 }), fc.nat(), (paths, intents, dropAt) => {
        const state = new Map(paths.map((path) => [path, valueCid(serial++)] as [string, Uint8Array]));
        const before = treeOf(state);
        const changes: [string, Uint8Array | null][] = [];
        const used = new Set<string>();
        for (const { kind, pick, fresh } of intents) {
          const path = kind === 'create' || paths.length === 0 ? fresh : paths[pick % paths.length]!;
          if (used.has(path) || (kind === 'create' && state.has(path))) continue;
          used.add(path);
          changes.push([path, kind === 'delete' && state.has(path) ? null : valueCid(serial++)]);
        }
        fc.pre(changes.length > 0);
        const built = buildCommit(state, before, changes);
        expect(prove(built)).toBe('inverted');
        expect(prove(built, built.ops.toReversed())).toBe('inverted');
        expect(prove(built, built.ops.toSpliced(dropAt % built.ops.length, 1))).toBe('prev-data-mismatch');
      }),
      { numRuns: 300 },
    );
  });

  test('a deep tree: 5,000 records, 300 random commits', () => {
    const rng = fc.sample(fc.array(fc.nat(), { minLength: 2000, maxLength: 2000 }), { numRuns: 1, seed: 7 })[0]!;
    const state = new Map<string, Uint8Array>();
    for (let i = 0; i < 5000; i++) state.set(`app.bsky.feed.post/3k${(i * 7919).toString(36).padStart(6, '0')}bbb2`, valueCid(i));
    let root = treeOf(state);
    let next = 0;
    const draw = (): number => rng[next++ % rng.length]!;
    for (let commit = 0; commit < 300; commit++) {
      const keys = [...state.keys()];
      const changes: [string, Uint8Array | null][] = [];
      const count = 1 + (draw() % 3);
      for (let j = 0; j < count; j++) {
        const roll = draw() % 3;
        const path = roll === 0 ? `app.bsky.feed.like/3l${commit}x${j}` : keys[draw() % keys.length]!;
        if (changes.some(([p]) => p === path)) continue;
        changes.push([path, roll === 2 ? null : valueCid(10_000 + commit * 10 + j)]);
      }
      const built = buildCommit(state, root, changes);
      expect(prove(built)).toBe('inverted');
      for (const [path, value] of changes) {
        if (value === null) state.delete(path);
        else state.set(path, value);
      }
      root = built.after;
    }
    expect(root.height).toBeGreaterThanOrEqual(4);
  });
});
