import { describe, expect, test } from 'bun:test';
import { CidLinkWrapper } from '@atcute/cbor';
import * as CID from '@atcute/cid';
import { CarIndex } from '../../src/firehose/car-index.ts';
import { proveCommit, type ProofOp } from '../../src/firehose/commit-proof.ts';
import { readCommit } from '../../src/firehose/commit-reader.ts';
import { decodeFirst } from '../../src/firehose/dag-cbor-decode.ts';
import { decodeFrame } from '../../src/firehose/frame-decoder.ts';
import { readRepoSnapshot } from '../../src/firehose/repo-snapshot.ts';
import { cborBlock } from '../../src/sim/block.ts';
import { EMPTY_NODE, mstBuild, mstPut } from '../../src/sim/mst.ts';
import { Network, type NetworkOptions } from '../../src/sim/network.ts';
import { GIANT_MIN, preloadSizes } from '../../src/sim/preload.ts';
import { Rng } from '../../src/sim/rng.ts';
import { FAULT_KINDS, type FaultRates } from '../../src/sim/workload.ts';

const network = (options: Partial<NetworkOptions>): Network =>
  new Network({
    seed: 'preload',
    accounts: 100,
    newAccountShare: 0.1,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as FaultRates,
    identityShare: 0,
    accountShare: 0,
    syncShare: 0,
    retain: Number.MAX_SAFE_INTEGER,
    epochMs: Date.UTC(2025, 0, 1),
    groundTruth: true,
    keyForms: {},
    ...options,
  });

describe('preloaded repos', () => {
  test('mstBuild makes the tree mstPut makes, key by key', () => {
    const rng = new Rng('mst-build');
    for (const n of [0, 1, 2, 17, 300, 3000]) {
      const keys = new Set<string>();
      while (keys.size < n) keys.add(`app.bsky.feed.${rng.pick(['like', 'post', 'repost'])}/3l${rng.int(2 ** 40).toString(36).padStart(11, 'a')}`);
      const sorted = [...keys].sort();
      const values = sorted.map((k) => cborBlock({ k }).cid);
      let incremental = EMPTY_NODE;
      // inserted in a random order: the tree depends on the set alone
      const order = [...sorted.keys()].sort(() => rng.float() - 0.5);
      for (const i of order) incremental = mstPut(incremental, sorted[i]!, values[i]!, 1);
      expect(CID.toString(CID.decode(mstBuild(sorted, values, 1).cid))).toBe(CID.toString(CID.decode(incremental.cid)));
    }
    expect(() => mstBuild(['b', 'a'], [cborBlock(1).cid, cborBlock(2).cid], 1)).toThrow(RangeError);
  });

  test('the size spread for a seed: exact total, most repos small, a long tail, a few giants', () => {
    const sizes = preloadSizes('1', 12_000, { records: 1_500_000 });
    expect(sizes.length).toBe(10_800);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1_500_000);
    const sorted = [...sizes].sort((a, b) => a - b);
    const share = (pred: (n: number) => boolean): number => sorted.filter(pred).length / sorted.length;
    expect(sorted[0]).toBeGreaterThanOrEqual(1);
    expect(share((n) => n < 100)).toBeGreaterThan(0.75);
    expect(share((n) => n > 1000)).toBeGreaterThan(0.005);
    expect(sorted.filter((n) => n >= GIANT_MIN).length).toBe(3);
    expect(sorted.at(-4)!).toBeLessThan(100_000);
    // deterministic, and configurable
    expect(preloadSizes('1', 12_000, { records: 1_500_000 })).toEqual(sizes);
    const flat = preloadSizes('1', 1000, { records: 50_000, accounts: 500, giants: 0, tailExponent: 3 });
    expect(flat.length).toBe(500);
    expect(flat.reduce((a, b) => a + b, 0)).toBe(50_000);
    expect(() => preloadSizes('1', 10, { records: 100_000, giants: 1 })).toThrow(RangeError);
  });

  test('a preloaded repo is in the repo and the ground truth, with no frame for it', () => {
    const net = network({ preload: { records: 4000 } });
    expect(net.log.end).toBe(0);
    expect(net.preloaded!.sizes.length).toBe(90);
    let records = 0;
    for (let i = 0; i < 90; i++) {
      const account = net.directory.at(i);
      expect(account.hasRepo).toBe(true);
      expect(account.repo.recordCount).toBe(net.preloaded!.sizes[i]!);
      records += account.repo.recordCount;
      const snapshot = readRepoSnapshot(account.did, account.repo.exportCar()!);
      expect(snapshot.leaves.length).toBe(account.repo.recordCount);
      expect(snapshot.commit.rev).toBe(account.repo.rev!);
      // dated before the simulation
      expect(new Date(TIDtime(account.repo.rev!)).getTime()).toBeLessThan(Date.UTC(2025, 0, 1));
    }
    expect(records).toBe(4000);
    expect(net.directory.at(90).hasRepo).toBe(false);
    const truth = net.groundTruth();
    expect(Object.values(truth.records).reduce((a, b) => a + b, 0)).toBe(4000);
    expect(truth.actorCount).toBe(90);
    expect(truth.acceptedCommits).toBe(0);
  });

  test('live commits chain from the preloaded rev and MST, and their proofs hold', () => {
    const net = network({ preload: { records: 3000 }, newAccountShare: 0.05 });
    const before = new Map<string, { rev: string; data: string }>();
    for (let i = 0; i < 90; i++) {
      const repo = net.directory.at(i).repo;
      before.set(repo.did, { rev: repo.rev!, data: CID.toString(CID.decode(repo.data)) });
    }
    for (let i = 0; i < 600; i++) net.step();
    const seen = new Set<string>();
    let chained = 0;
    for (let position = net.log.start; position < net.log.end; position++) {
      const bytes = net.log.at(position)!;
      const frame = decodeFrame(bytes);
      if (frame.kind !== 'commit') continue;
      const [, rest] = decodeFirst(bytes);
      const [body] = decodeFirst(rest) as [{ since: string | null; prevData: CidLinkWrapper; ops: { action: ProofOp['action']; path: string; cid: CidLinkWrapper | null; prev?: CidLinkWrapper }[] }, Uint8Array];
      const ops = body.ops.map((op): ProofOp => ({ action: op.action, path: op.path, cid: op.cid?.bytes ?? null, prev: op.prev?.bytes ?? null }));
      const { commit } = readCommit(frame);
      expect(proveCommit({ data: commit.data.bytes, prevData: body.prevData.bytes, ops, blocks: new CarIndex(frame.blocks) })).toBe('inverted');
      const preloaded = before.get(frame.repo);
      if (preloaded === undefined || seen.has(frame.repo)) continue;
      seen.add(frame.repo);
      chained++;
      expect(body.since).toBe(preloaded.rev);
      expect(CID.toString(CID.decode(body.prevData.bytes))).toBe(preloaded.data);
      expect(frame.rev > preloaded.rev).toBe(true);
    }
    expect(chained).toBeGreaterThan(20);
    // an update of a preloaded profile is an update (the workload knows the profile exists)
    const truth = net.groundTruth();
    expect(truth.actorCount).toBeGreaterThanOrEqual(90);
  });

  test('with hostile hosts the truth leaves out the repos no host hands out', () => {
    const clean = network({ preload: { records: 3000 }, hosts: 4 });
    const hostile = network({ preload: { records: 3000 }, hosts: 4, hostFaults: { 1: 'garbage', 2: 'rate-limited' } });
    const onHost1 = [...Array(90).keys()].filter((i) => hostile.hostOf[i] === 1);
    expect(onHost1.length).toBeGreaterThan(0);
    const lost = onHost1.reduce((sum, i) => sum + hostile.preloaded!.sizes[i]!, 0);
    const total = (n: Network): number => Object.values(n.groundTruth().records).reduce((a, b) => a + b, 0);
    expect(total(clean)).toBe(3000);
    expect(total(hostile)).toBe(3000 - lost);
    expect(hostile.groundTruth().actorCount).toBe(90 - onHost1.length);
  });
});

/** ms since the epoch of a TID. */
const TIDtime = (tid: string): number => {
  const alphabet = '234567abcdefghijklmnopqrstuvwxyz';
  let n = 0n;
  for (const ch of tid) n = n * 32n + BigInt(alphabet.indexOf(ch));
  return Number(n >> 10n) / 1000;
};
