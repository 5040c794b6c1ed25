import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import * as CBOR from '@atcute/cbor';
import { MemoryBlockStore, NodeStore, NodeWrangler } from '@atcute/mst';
import { GroundTruthBuilder, isValidRecord, type TruthOp } from '../../src/sim/ground-truth.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { decodeFrame, linkOf, publicKeyFor, readCar, readFrames, tryDecode, verifyCommit } from './helpers.ts';
import { parsePublicMultikey } from '@atcute/crypto';

const FAULTS = { malformed: 0.03, badSignature: 0.03, unknownCollection: 0.03, invalidRecord: 0.03, duplicate: 0.03, replay: 0.03 };

interface Outcome {
  accepted: number;
  badSignature: number;
  undecodable: number;
  badCar: number;
  stale: number;
  inverted: number;
  invalidRecords: number;
  unknownCollection: number;
}

/** The consumer a correct indexer would be, written from the protocol docs, not from the simulator. */
const recount = async (sim: Simulator, frames: Uint8Array[]): Promise<{ truth: GroundTruthBuilder; outcome: Outcome }> => {
  const truth = new GroundTruthBuilder();
  const outcome: Outcome = { accepted: 0, badSignature: 0, undecodable: 0, badCar: 0, stale: 0, inverted: 0, invalidRecords: 0, unknownCollection: 0 };
  const seenDids = new Set<string>();
  const keyOf = async (did: string): Promise<Uint8Array> => {
    const res = await fetch(`${sim.url}/${did}`);
    if (res.status === 410) {
      // tombstoned by the end of the run: the key it signed with is no longer published
      const account = sim.network.directory.byDid(did)!;
      return parsePublicMultikey(account.multikey).publicKeyBytes;
    }
    return publicKeyFor(sim.url, did);
  };
  let maxSeq = 0;
  for (const bytes of frames) {
    const frame = tryDecode(bytes);
    if (frame === null || frame.header.op !== 1 || typeof frame.body.seq !== 'number') {
      outcome.undecodable++;
      continue;
    }
    const { body } = frame;
    const seq = body.seq as number;
    if (seq <= maxSeq) {
      outcome.stale++;
      continue;
    }
    maxSeq = seq;
    truth.noteSeq(seq);
    const did = (body.repo ?? body.did) as string;
    switch (frame.header.t) {
      case '#commit': {
        let car;
        try {
          car = await readCar(CBOR.fromBytes(body.blocks as CBOR.Bytes));
        } catch {
          outcome.badCar++;
          continue;
        }
        const commitCid = linkOf(body.commit)!;
        expect(car.roots).toEqual([commitCid]);
        const commitBytes = car.blocks.get(commitCid);
        expect(commitBytes).toBeDefined();
        const commit = CBOR.decode(commitBytes!) as Record<string, unknown>;
        expect(CBOR.encode(commit)).toEqual(new Uint8Array(commitBytes!)); // canonical DAG-CBOR
        expect(commit.did).toBe(did);
        expect(commit.version).toBe(3);
        expect(commit.prev).toBeNull();
        expect(commit.rev).toBe(body.rev as string);
        if (!(await verifyCommit(commit, await keyOf(did)))) {
          outcome.badSignature++;
          continue;
        }
        const ops = body.ops as { action: 'create' | 'update' | 'delete'; path: string; cid: unknown; prev?: unknown }[];
        const truthOps: TruthOp[] = [];
        for (const op of ops) {
          const [collection, rkey] = op.path.split('/') as [string, string];
          let record: unknown = null;
          if (op.action !== 'delete') {
            const block = car.blocks.get(linkOf(op.cid)!);
            expect(block).toBeDefined();
            record = CBOR.decode(block!);
            if (!collection.startsWith('app.bsky.')) outcome.unknownCollection++;
            else if (!isValidRecord(collection, record)) outcome.invalidRecords++;
          } else {
            expect(op.cid).toBeNull();
          }
          truthOps.push({ action: op.action, collection, rkey, record });
        }
        // invert the ops against the slice alone: must land exactly on prevData
        const ns = new NodeStore(new MemoryBlockStore(new Map(car.blocks as Map<string, Uint8Array<ArrayBuffer>>)));
        const wrangler = new NodeWrangler(ns);
        let root = linkOf(commit.data)!;
        for (const op of [...ops].reverse()) {
          root = op.action === 'create' ? await wrangler.deleteRecord(root, op.path) : await wrangler.putRecord(root, op.path, op.prev as never);
        }
        expect(root).toBe(linkOf(body.prevData)!);
        outcome.inverted++;
        if (!seenDids.has(did)) {
          seenDids.add(did);
          const res = await fetch(`${sim.url}/${did}`);
          const handle = res.status === 200 ? ((await res.json()) as { alsoKnownAs: string[] }).alsoKnownAs[0]!.slice(5) : sim.network.directory.byDid(did)!.handle;
          truth.applyIdentity(did, handle);
        }
        truth.applyCommit(did, truthOps);
        outcome.accepted++;
        break;
      }
      case '#identity':
        truth.applyIdentity(did, body.handle as string | undefined);
        break;
      case '#account':
        expect(typeof body.active).toBe('boolean');
        truth.applyAccount(did, body.status as string | undefined);
        break;
      case '#sync': {
        const car = await readCar(CBOR.fromBytes(body.blocks as CBOR.Bytes));
        expect(car.blocks.size).toBe(1);
        break;
      }
      default:
        throw new Error(`unexpected frame type ${frame.header.t}`);
    }
  }
  return { truth, outcome };
};

describe('firehose with faults, identity and account events', () => {
  let sim: Simulator;
  let frames: Uint8Array[];

  beforeAll(async () => {
    sim = await startSimulator({
      seed: 7,
      accounts: 80,
      commits: 600,
      pregenerate: true,
      faults: FAULTS,
      identityShare: 0.02,
      accountShare: 0.02,
      syncShare: 0.01,
    });
    frames = await readFrames(`${sim.wsUrl}?cursor=0`, sim.framesReleased);
  });
  afterAll(async () => {
    await sim.stop();
  });

  test('cursor=0 replays every frame', () => {
    expect(sim.commitsGenerated).toBe(600);
    expect(frames.length).toBe(sim.framesReleased);
    expect(sim.eventsSent).toBeGreaterThanOrEqual(frames.length);
  });

  test('frames are header + body DAG-CBOR with the lexicon fields', () => {
    for (const bytes of frames) {
      const f = tryDecode(bytes);
      if (f === null || f.header.t !== '#commit') continue;
      const b = f.body;
      expect(Object.keys(b).sort()).toEqual(
        ['blobs', 'blocks', 'commit', 'ops', 'prevData', 'rebase', 'repo', 'rev', 'seq', 'since', 'time', 'tooBig'].sort(),
      );
      expect(b.rebase).toBe(false);
      expect(b.tooBig).toBe(false);
      expect(b.blobs).toEqual([]);
      expect(typeof b.time).toBe('string');
      expect(Number.isNaN(Date.parse(b.time as string))).toBe(false);
      expect(b.since === null || typeof b.since === 'string').toBe(true);
    }
  });

  test('signatures verify, slices invert to prevData, and the recount equals the ground truth', async () => {
    const { truth, outcome } = await recount(sim, frames);
    expect(outcome.badSignature).toBe(sim.stats.faults.badSignature);
    expect(outcome.accepted).toBe(sim.stats.acceptedCommits);
    expect(outcome.inverted).toBe(outcome.accepted);
    expect(outcome.unknownCollection).toBe(sim.stats.faults.unknownCollection);
    expect(outcome.invalidRecords).toBe(sim.stats.faults.invalidRecord);
    expect(outcome.undecodable + outcome.badCar).toBe(sim.stats.faults.malformed);
    expect(outcome.stale).toBe(sim.stats.faults.duplicate + sim.stats.faults.replay);
    expect(truth.result()).toEqual(sim.groundTruth());
  }, 120_000);

  test('faults appear near the requested rates', () => {
    const n = sim.commitsGenerated;
    for (const [kind, rate] of Object.entries(FAULTS)) {
      const seen = sim.stats.faults[kind as keyof typeof FAULTS];
      // binomial: mean n*p, sd ~ sqrt(n*p); allow 4 sd
      const mean = n * rate;
      expect(Math.abs(seen - mean)).toBeLessThanOrEqual(4 * Math.sqrt(mean) + 1);
    }
  });

  test('the ground truth has the promised shape', () => {
    const gt = sim.groundTruth();
    expect(gt.lastSeq).toBe(sim.lastSeq);
    expect(gt.actorCount).toBe(Object.keys(gt.actors).length);
    expect(gt.records['app.bsky.feed.like']).toBeGreaterThan(0);
    expect(gt.records['app.bsky.feed.post']).toBe(Object.keys(gt.posts).length);
    const postsCount = Object.values(gt.actors).reduce((s, a) => s + a.postsCount, 0);
    expect(postsCount).toBeLessThanOrEqual(gt.records['app.bsky.feed.post']);
  });
});

describe('a clean stream', () => {
  test('every record is lexicon-valid and every collection of the mix shows up', async () => {
    const sim = await startSimulator({ seed: 3, accounts: 300, commits: 3000, pregenerate: true });
    try {
      const frames = await readFrames(`${sim.wsUrl}?cursor=0`, sim.framesReleased);
      const collections = new Set<string>();
      let multiOp = 0;
      for (const bytes of frames) {
        const { header, body } = decodeFrame(bytes);
        expect(header).toEqual({ op: 1, t: '#commit' });
        const car = await readCar(CBOR.fromBytes(body.blocks as CBOR.Bytes));
        const ops = body.ops as { action: string; path: string; cid: unknown }[];
        if (ops.length > 1) multiOp++;
        for (const op of ops) {
          const collection = op.path.split('/')[0]!;
          collections.add(`${collection}:${op.action}`);
          if (op.action === 'delete') continue;
          const record = CBOR.decode(car.blocks.get(linkOf(op.cid)!)!);
          expect({ collection, valid: isValidRecord(collection, record) }).toEqual({ collection, valid: true });
        }
      }
      for (const expected of [
        'app.bsky.feed.like:create', 'app.bsky.feed.like:delete', 'app.bsky.feed.post:create', 'app.bsky.feed.post:delete',
        'app.bsky.feed.repost:create', 'app.bsky.graph.follow:create', 'app.bsky.graph.follow:delete', 'app.bsky.graph.block:create',
        'app.bsky.actor.profile:create', 'app.bsky.actor.profile:update', 'app.bsky.graph.listitem:create', 'app.bsky.graph.list:create',
        'app.bsky.feed.threadgate:create',
      ]) {
        expect(collections.has(expected)).toBe(true);
      }
      expect(multiOp).toBeGreaterThan(0);
      const newShare = sim.stats.newAccountCommits / sim.stats.commits;
      expect(newShare).toBeGreaterThan(0.07);
      expect(newShare).toBeLessThan(0.13);
    } finally {
      await sim.stop();
    }
  }, 120_000);
});
