// repo-stream: the streamed reader against the in-memory one (repo-snapshot.ts) over the same CARs,
// in memory and spilled, whole, shuffled and in odd chunks; and hostile bodies, each of which must
// leave no spill file open.
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tid } from '@atcute/tid';

import { CarIndex } from '../../src/firehose/car-index.ts';
import { CommitReadError, readRecordBlock } from '../../src/firehose/commit-reader.ts';
import { MstError } from '../../src/firehose/mst-node.ts';
import { readRepoSnapshot, type RepoSnapshot } from '../../src/firehose/repo-snapshot.ts';
import { readRepoStream, RepoStreamError, type RepoStreamOptions, type StreamedRepo } from '../../src/firehose/repo-stream.ts';
import { cborBlock, encodeCar, link, type Block } from '../../src/sim/block.ts';
import { EMPTY_NODE, MstNode as SimNode, mstNodes, mstPut } from '../../src/sim/mst.ts';
import { SimRepo, type RepoOp } from '../../src/sim/repo.ts';

const DID = 'did:plc:streamstreamstreamstream';
const EPOCH_US = Date.UTC(2024, 0, 1) * 1000;
const COLLECTIONS = ['app.bsky.feed.like', 'app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.feed.repost'];
// the reader does not check signatures: any 64 bytes will do
const signer = { sign: (message: Uint8Array): Uint8Array => new Uint8Array(64).fill(message.length & 0xff) };

const root = mkdtempSync(join(tmpdir(), 'repo-stream-test-'));
let dirs = 0;
/** A spill folder of its own (not created: the reader makes it when it spills). */
const spillDir = (): string => join(root, `spill-${dirs++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Descriptors of this process open on files in `dir` (an unlinked spill file still shows). */
const openIn = (dir: string): string[] =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return [];
    }
  });

const leftIn = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/** Deterministic PRNG (mulberry32). */
const prng = (seed: number): (() => number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** A repo of `count` records written by the simulator, exported as getRepo does; some records repeat. */
const repoCar = (count: number): Uint8Array => {
  const repo = new SimRepo(DID);
  const ops: RepoOp[] = [];
  for (let i = 0; i < count; i++) {
    const collection = COLLECTIONS[i % COLLECTIONS.length]!;
    // every 50th record is the same value: one block named by many keys
    const record = i % 50 === 7 ? { $type: collection, createdAt: '2024-01-01T00:00:00.000Z' } : { $type: collection, n: i, text: `record ${i}` };
    ops.push({ action: 'create', collection, rkey: tid(EPOCH_US + i * 1_000_000, i % 32), record });
  }
  repo.write(ops, tid(EPOCH_US + count * 1_000_000, 0), signer, true);
  return repo.exportCar()!;
};

interface CarParts {
  roots: Uint8Array[];
  blocks: Block[];
}

const partsOf = (car: Uint8Array): CarParts => {
  const index = new CarIndex(car);
  const blocks: Block[] = [];
  for (let b = 0; b < index.blockCount; b++) {
    const at = index.digestOffsetOf(b) - 4;
    blocks.push({ cid: car.slice(at, at + 36), bytes: index.bytesOf(b).slice() });
  }
  return { roots: index.roots, blocks };
};

const carOf = (root: Uint8Array, blocks: Iterable<Block>): Uint8Array => encodeCar(root, blocks);

const shuffled = (car: Uint8Array, seed: number): Uint8Array => {
  const { roots, blocks } = partsOf(car);
  const random = prng(seed);
  for (let i = blocks.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j]!, blocks[i]!];
  }
  return carOf(roots[0]!, blocks);
};

/** Records first, then the nodes, the commit last (the reverse of the simulator's order). */
const reversed = (car: Uint8Array): Uint8Array => {
  const { roots, blocks } = partsOf(car);
  return carOf(roots[0]!, blocks.reverse());
};

type Chunking = 'whole' | 'bytes' | 'random' | 'mixed';

interface Source {
  readonly body: ReadableStream<Uint8Array>;
  /** whether the reader cancelled the body */
  readonly cancelled: () => boolean;
}

const sourceOf = (car: Uint8Array, chunking: Chunking, seed = 1): Source => {
  const random = prng(seed);
  let at = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= car.length) return controller.close();
        const size =
          chunking === 'whole'
            ? car.length
            : chunking === 'bytes'
              ? 1
              : chunking === 'mixed'
                ? 1 + Math.floor(random() < 0.3 ? 300_000 + random() * 900_000 : random() * 5_000)
                : 1 + Math.floor(random() * random() * 20_000);
        // a copy: the reader must not rely on our buffer
        controller.enqueue(car.slice(at, at + size));
        at += size;
      },
      cancel() {
        cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { body, cancelled: () => cancelled };
};

const options = (dir: string, extra: Partial<RepoStreamOptions> = {}): RepoStreamOptions => ({ spillDir: dir, maxBytes: 1 << 30, ...extra });

interface Leaves {
  paths: string[];
  cids: string[];
}

const drain = async (repo: StreamedRepo, size: number, values: boolean): Promise<Leaves & { values: unknown[] }> => {
  const out = { paths: [] as string[], cids: [] as string[], values: [] as unknown[] };
  for await (const batch of repo.records(size)) {
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThanOrEqual(size);
    for (const record of batch) {
      out.paths.push(record.path);
      out.cids.push(record.cid);
      if (values) out.values.push(record.value());
    }
  }
  return out;
};

const expectSameCommit = (repo: StreamedRepo, snapshot: RepoSnapshot): void => {
  const [a, b] = [repo.commit, snapshot.commit];
  expect(a.did).toBe(b.did);
  expect(a.version).toBe(b.version);
  expect(a.rev).toBe(b.rev);
  expect(a.data.$link).toBe(b.data.$link);
  expect(a.prev).toEqual(b.prev);
  expect(Buffer.from(a.sig).equals(Buffer.from(b.sig))).toBe(true);
  expect(Buffer.from(a.unsignedBytes).equals(Buffer.from(b.unsignedBytes))).toBe(true);
};

/** Streams `car` and checks it reads as readRepoSnapshot reads it; returns whether it spilled. */
const expectSameAsSnapshot = async (car: Uint8Array, chunking: Chunking, memoryBytes: number | undefined, values: boolean): Promise<boolean> => {
  const snapshot = readRepoSnapshot(DID, car);
  const dir = spillDir();
  const repo = await readRepoStream(DID, sourceOf(car, chunking, car.length).body, options(dir, memoryBytes === undefined ? {} : { memoryBytes }));
  const spilled = repo.spilled;
  expect(openIn(dir).length).toBe(spilled ? 1 : 0);
  expect(leftIn(dir)).toEqual([]);
  try {
    expectSameCommit(repo, snapshot);
    expect(repo.carBytes).toBe(car.length);
    expect(repo.blockCount).toBe(snapshot.blocks.blockCount);
    const read = await drain(repo, 333, values);
    expect(read.paths).toEqual(snapshot.leaves.map((leaf) => leaf.path));
    expect(read.cids).toEqual(snapshot.leaves.map((leaf) => leaf.cid));
    if (values) expect(read.values).toEqual(snapshot.leaves.map((leaf) => readRecordBlock(snapshot.blocks, leaf.cid)));
    // the walk starts again from the top for each call
    const again = await drain(repo, 10_000, false);
    expect(again.paths.length).toBe(snapshot.leaves.length);
  } finally {
    await repo.close();
  }
  expect(openIn(dir)).toEqual([]);
  expect(leftIn(dir)).toEqual([]);
  return spilled;
};

const empty = repoCar(0);
const small = repoCar(300);
const large = repoCar(20_000);

describe('readRepoStream reads what readRepoSnapshot reads', () => {
  test('the CARs are what they claim', () => {
    expect(readRepoSnapshot(DID, empty).leaves.length).toBe(0);
    expect(readRepoSnapshot(DID, small).leaves.length).toBe(300);
    expect(readRepoSnapshot(DID, large).leaves.length).toBe(20_000);
    expect(large.length).toBeGreaterThan(1_000_000);
  });

  for (const [name, car] of [
    ['empty', empty],
    ['small', small],
  ] as const) {
    for (const chunking of ['whole', 'bytes', 'random'] as const) {
      test(`${name} repo, ${chunking} chunks, in memory`, async () => {
        expect(await expectSameAsSnapshot(car, chunking, undefined, true)).toBe(false);
      });
      test(`${name} repo, ${chunking} chunks, spilled`, async () => {
        expect(await expectSameAsSnapshot(car, chunking, 0, true)).toBe(true);
      });
    }
    test(`${name} repo, shuffled and reversed, in memory and spilled`, async () => {
      for (const variant of [shuffled(car, 7), reversed(car)]) {
        expect(await expectSameAsSnapshot(variant, 'random', undefined, true)).toBe(false);
        expect(await expectSameAsSnapshot(variant, 'random', variant.length >> 1, true)).toBe(true);
      }
    });
  }

  test('20k-record repo in memory, whole and in random chunks', async () => {
    expect(await expectSameAsSnapshot(large, 'whole', undefined, true)).toBe(false);
    expect(await expectSameAsSnapshot(large, 'random', undefined, false)).toBe(false);
  });

  test('20k-record repo spilled past 256 KiB, in random chunks, shuffled', async () => {
    expect(await expectSameAsSnapshot(large, 'random', 256 * 1024, true)).toBe(true);
    expect(await expectSameAsSnapshot(shuffled(large, 3), 'random', 256 * 1024, true)).toBe(true);
  });

  test('20k-record repo spilled, in chunks of a few bytes to a megabyte', async () => {
    expect(await expectSameAsSnapshot(large, 'mixed', 100_000, false)).toBe(true);
    expect(await expectSameAsSnapshot(large, 'mixed', 0, true)).toBe(true);
  });

  test('a header longer than 127 bytes (many roots), one byte at a time', async () => {
    const { roots, blocks } = partsOf(small);
    const many = concat(encodeHeader({ version: 1, roots: [roots[0]!, ...blocks.slice(1, 6).map((b) => b.cid)].map(link) }), small.subarray(headerFrameOf(small).length));
    expect(many[0]!).toBeGreaterThanOrEqual(0x80);
    expect(await expectSameAsSnapshot(many, 'bytes', undefined, false)).toBe(false);
    expect(await expectSameAsSnapshot(many, 'bytes', 0, false)).toBe(true);
  });

  test('20k-record repo, records before nodes, spilled from the first byte', async () => {
    expect(await expectSameAsSnapshot(reversed(large), 'random', 0, false)).toBe(true);
  });

  test('a CAR holding a block twice reads the same', async () => {
    const { roots, blocks } = partsOf(small);
    const doubled = carOf(roots[0]!, [...blocks, ...blocks.slice(0, 40)]);
    expect(await expectSameAsSnapshot(doubled, 'random', undefined, true)).toBe(false);
    expect(await expectSameAsSnapshot(doubled, 'random', 0, true)).toBe(true);
  });
});

interface Outcome {
  name: string;
  reason: string;
}

const outcomeOf = (err: unknown): Outcome => {
  if (err instanceof RepoStreamError || err instanceof CommitReadError || err instanceof MstError) return { name: err.name, reason: err.reason };
  throw err;
};

/** What readRepoSnapshot says of `car` (null: accepted). */
const snapshotOutcome = (car: Uint8Array): Outcome | null => {
  try {
    readRepoSnapshot(DID, car);
    return null;
  } catch (err) {
    return outcomeOf(err);
  }
};

/** What the streamed reader says of `car`, failing in readRepoStream or in the walk (null: accepted). */
const streamOutcome = async (car: Uint8Array, memoryBytes: number, chunking: Chunking = 'random'): Promise<Outcome | null> => {
  const dir = spillDir();
  const source = sourceOf(car, chunking, 5);
  let outcome: Outcome | null = null;
  try {
    const repo = await readRepoStream(DID, source.body, options(dir, { memoryBytes }));
    try {
      await drain(repo, 100, false);
    } finally {
      await repo.close();
    }
  } catch (err) {
    outcome = outcomeOf(err);
  }
  expect(openIn(dir)).toEqual([]);
  expect(leftIn(dir)).toEqual([]);
  return outcome;
};

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};

/** The CAR's header frame and its blocks, as raw bytes. */
const headerFrameOf = (car: Uint8Array): Uint8Array => {
  const index = new CarIndex(car);
  return car.slice(0, index.digestOffsetOf(0) - 4 - varint(36 + index.bytesOf(0).length).length);
};

const concat = (...parts: (Uint8Array | number[])[]): Uint8Array => Uint8Array.from(parts.flatMap((part) => [...part]));

describe('hostile bodies', () => {
  const header = headerFrameOf(small);
  const { roots, blocks } = partsOf(small);
  const commitCid = roots[0]!;
  const nodeBlocks = blocks.filter((block) => block.cid[1] === 0x71 && block.bytes[0] === 0xa2 && block.bytes[2] === 0x65);
  const isRecord = (block: Block): boolean => !nodeBlocks.includes(block) && !Buffer.from(block.cid).equals(Buffer.from(commitCid));
  const recordBlock = blocks.find(isRecord)!;

  // CARs that both readers refuse in the same words
  const refused: [string, Uint8Array][] = [
    ['a header that is not DAG-CBOR', concat([5, 0xff, 0xff, 0xff, 0xff, 0xff], small.subarray(header.length))],
    ['a CAR v2 header', concat(encodeHeader({ version: 2, roots: [] }), small.subarray(header.length))],
    ['an empty header', concat([0], small.subarray(header.length))],
    ['a varint of 9 bytes', concat(header, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['a block shorter than a CID', concat(header, [10, ...new Uint8Array(10)])],
    ['a block with a CIDv0', concat(header, varint(40), [0x12, 0x20], new Uint8Array(38))],
    ['garbage after the header', concat(header, prngBytes(5000, 9))],
    ['a root that is not in the CAR', carOf(cborBlock({ not: 'here' }).cid, blocks)],
    ['no root at all', concat(encodeHeader({ version: 1, roots: [] }), small.subarray(header.length))],
    ['the MST root as the first root', carOf(blocks[1]!.cid, blocks)],
    ['a commit of another repo', (() => {
      const repo = new SimRepo('did:plc:someoneelsesomeoneelse');
      repo.write([{ action: 'create', collection: 'app.bsky.feed.like', rkey: tid(EPOCH_US, 0), record: { n: 1 } }], tid(EPOCH_US, 1), signer, true);
      return repo.exportCar()!;
    })()],
    ['a missing MST node', carOf(commitCid, blocks.filter((block) => block !== nodeBlocks[nodeBlocks.length - 1]))],
    ['only the commit', carOf(commitCid, blocks.slice(0, 1))],
    ['a subtree linked twice (in every gap of the root)', twiceLinked()],
    ['a body cut at a block boundary', small.slice(0, header.length + blocks.slice(0, 3).reduce((sum, b) => sum + varint(36 + b.bytes.length).length + 36 + b.bytes.length, 0))],
  ];
  for (const [name, car] of refused) {
    test(`${name}: refused as readRepoSnapshot refuses it`, async () => {
      const expected = snapshotOutcome(car);
      expect(expected).not.toBeNull();
      for (const memoryBytes of [1 << 20, 0]) {
        expect(await streamOutcome(car, memoryBytes)).toEqual(expected);
        expect(await streamOutcome(car, memoryBytes, 'bytes')).toEqual(expected);
      }
    });
  }

  test('a record block that does not hash to its CID: bad-block as it streams past', async () => {
    const bad = blocks.map((block) => (block === recordBlock ? { cid: block.cid, bytes: flipped(block.bytes) } : block));
    const car = carOf(commitCid, bad);
    // the in-memory reader only sees it when the record is read
    expect(snapshotOutcome(car)).toBeNull();
    for (const memoryBytes of [1 << 20, 0]) expect(await streamOutcome(car, memoryBytes)).toEqual({ name: 'RepoStreamError', reason: 'bad-block' });
  });

  test('an MST node or the commit that does not hash to its CID: bad-block', async () => {
    for (const target of [nodeBlocks[0]!, blocks[0]!]) {
      const car = carOf(commitCid, blocks.map((block) => (block === target ? { cid: block.cid, bytes: flipped(block.bytes) } : block)));
      expect(snapshotOutcome(car)).not.toBeNull();
      for (const memoryBytes of [1 << 20, 0]) expect(await streamOutcome(car, memoryBytes)).toEqual({ name: 'RepoStreamError', reason: 'bad-block' });
    }
  });

  test('a body that ends inside the header or a block: truncated', async () => {
    const cuts = [0, 1, header.length - 1, header.length + 1, header.length + 10, Math.floor(small.length / 2), small.length - 1];
    for (const cut of cuts) {
      const car = small.slice(0, cut);
      expect(snapshotOutcome(car)).toEqual({ name: 'CommitReadError', reason: 'bad-car' });
      for (const memoryBytes of [1 << 20, 0]) expect(await streamOutcome(car, memoryBytes)).toEqual({ name: 'RepoStreamError', reason: 'truncated' });
    }
  });

  test('a body that fails mid-way: truncated, the spill file closed', async () => {
    const dir = spillDir();
    let sent = false;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent) return controller.error(new Error('connection reset'));
          controller.enqueue(small.slice(0, 5000));
          sent = true;
        },
      },
      { highWaterMark: 0 },
    );
    const err = await readRepoStream(DID, body, options(dir, { memoryBytes: 100 })).catch((e: unknown) => e);
    expect(outcomeOf(err)).toEqual({ name: 'RepoStreamError', reason: 'truncated' });
    expect(openIn(dir)).toEqual([]);
    expect(leftIn(dir)).toEqual([]);
  });

  test('a body that never ends: too-large past maxBytes, the body cancelled, the spill file closed', async () => {
    for (const memoryBytes of [1 << 30, 4096]) {
      const dir = spillDir();
      let cancelled = false;
      let sent = 0;
      // a header and a block that claims a terabyte, then bytes for ever
      const start = concat(header, varint(2 ** 40), commitCid);
      const body = new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            controller.enqueue(sent === 0 ? start : new Uint8Array(65_536));
            sent++;
          },
          cancel() {
            cancelled = true;
          },
        },
        { highWaterMark: 0 },
      );
      const err = await readRepoStream(DID, body, options(dir, { memoryBytes, maxBytes: 1_000_000 })).catch((e: unknown) => e);
      expect(outcomeOf(err)).toEqual({ name: 'RepoStreamError', reason: 'too-large' });
      expect(cancelled).toBe(true);
      // it stopped at the first chunk past the limit
      expect(sent).toBe(1 + Math.ceil((1_000_000 - start.length) / 65_536));
      expect(openIn(dir)).toEqual([]);
      expect(leftIn(dir)).toEqual([]);
      if (memoryBytes === 4096) expect(statSync(dir).mode & 0o777).toBe(0o700);
    }
  });

  test('a whole CAR one byte over maxBytes: too-large; at maxBytes: read', async () => {
    const dir = spillDir();
    const over = await readRepoStream(DID, sourceOf(small, 'random').body, options(dir, { maxBytes: small.length - 1 })).catch((e: unknown) => e);
    expect(outcomeOf(over)).toEqual({ name: 'RepoStreamError', reason: 'too-large' });
    const repo = await readRepoStream(DID, sourceOf(small, 'random').body, options(dir, { maxBytes: small.length }));
    expect((await drain(repo, 1000, false)).paths.length).toBe(300);
    await repo.close();
  });

  test('an abort mid-stream: aborted at once, though the body never answers; the spill file closed', async () => {
    const dir = spillDir();
    const controller = new AbortController();
    let cancelled = false;
    let openWhenAborted: string[] = [];
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(stream) {
          if (pulls++ === 0) return stream.enqueue(large.slice(0, 500_000));
          // the first chunk was read (highWaterMark 0: a pull only when a read waits): the file is open
          openWhenAborted = openIn(dir);
          controller.abort(new Error('shutting down'));
          return new Promise<void>(() => undefined);
        },
        cancel() {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const err = await readRepoStream(DID, body, options(dir, { memoryBytes: 100_000, signal: controller.signal })).catch((e: unknown) => e);
    expect(outcomeOf(err)).toEqual({ name: 'RepoStreamError', reason: 'aborted' });
    expect(openWhenAborted.length).toBe(1);
    expect(cancelled).toBe(true);
    expect(openIn(dir)).toEqual([]);
    expect(leftIn(dir)).toEqual([]);
  });

  test('an abort before the start, and one during the walk', async () => {
    const dir = spillDir();
    const early = new AbortController();
    early.abort();
    const source = sourceOf(small, 'whole');
    const err = await readRepoStream(DID, source.body, options(dir, { signal: early.signal })).catch((e: unknown) => e);
    expect(outcomeOf(err)).toEqual({ name: 'RepoStreamError', reason: 'aborted' });
    expect(source.cancelled()).toBe(true);

    const late = new AbortController();
    const repo = await readRepoStream(DID, sourceOf(large, 'random').body, options(dir, { memoryBytes: 0, signal: late.signal }));
    expect(openIn(dir).length).toBe(1);
    let batches = 0;
    const walked = (async () => {
      for await (const _batch of repo.records(1000)) if (++batches === 3) late.abort();
    })();
    expect(outcomeOf(await walked.catch((e: unknown) => e))).toEqual({ name: 'RepoStreamError', reason: 'aborted' });
    expect(batches).toBe(3);
    // a failed walk closes the repo
    expect(openIn(dir)).toEqual([]);
    await repo.close();
  });

  test('a record whose block is missing: listed, and value() says missing-record-block', async () => {
    const car = carOf(commitCid, blocks.filter((block) => block !== recordBlock));
    const snapshot = readRepoSnapshot(DID, car);
    for (const memoryBytes of [1 << 20, 0]) {
      const repo = await readRepoStream(DID, sourceOf(car, 'random').body, options(spillDir(), { memoryBytes }));
      let missing = 0;
      let paths = 0;
      for await (const batch of repo.records(64)) {
        for (const record of batch) {
          paths++;
          try {
            record.value();
          } catch (err) {
            expect(outcomeOf(err)).toEqual({ name: 'CommitReadError', reason: 'missing-record-block' });
            missing++;
          }
        }
      }
      expect(paths).toBe(snapshot.leaves.length);
      expect(missing).toBeGreaterThan(0);
      await repo.close();
    }
  });

  test('value() after close() throws', async () => {
    const repo = await readRepoStream(DID, sourceOf(small, 'whole').body, options(spillDir(), { memoryBytes: 0 }));
    const first = (await repo.records(5).next()).value!;
    expect(first[0]!.value()).toBeInstanceOf(Object);
    await repo.close();
    expect(() => first[1]!.value()).toThrow('closed');
  });
});

/** A tree whose root names its first subtree in every gap: its keys come round again, out of order. */
function twiceLinked(): Uint8Array {
  let tree = EMPTY_NODE;
  for (let i = 0; i < 300; i++) tree = mstPut(tree, `app.bsky.feed.like/${tid(EPOCH_US + i * 1_000_000, 0)}`, cborBlock({ n: i }).cid, 1);
  const first = tree.gaps.find((gap) => gap !== null)!;
  const root = new SimNode(tree.height, tree.keys, tree.values, tree.gaps.map(() => first), 2);
  const commit = cborBlock({ did: DID, version: 3, data: link(root.cid), rev: tid(EPOCH_US, 1), prev: null, sig: new Uint8Array(64) });
  return carOf(commit.cid, [commit, ...[...mstNodes(root)].map((node) => ({ cid: node.cid, bytes: node.bytes }))]);
}

function encodeHeader(value: unknown): Uint8Array {
  const bytes = cborBlock(value).bytes;
  return concat(varint(bytes.length), bytes);
}

function prngBytes(length: number, seed: number): Uint8Array {
  const random = prng(seed);
  return Uint8Array.from({ length }, () => Math.floor(random() * 256));
}

function flipped(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  copy[copy.length - 1] ^= 0x01;
  return copy;
}
