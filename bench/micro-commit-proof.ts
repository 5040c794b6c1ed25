// micro-commit-proof: per-commit cost of the Sync 1.1 inductive proof (src/firehose/commit-proof.ts).
// Run: bun bench/micro-commit-proof.ts   (single thread; numbers are per proof on this machine)
// Each line proves 500 distinct commits against one repo (100 or 10,000 records), their CAR slices
// holding what a PDS sends (the covering proofs of the ops' paths, indexed once beforehand, as the
// pipeline's CarIndex already is); the last lines run the simulator's mix from its real frames.
import { create as tid } from '@atcute/tid';
import type { CidLinkWrapper } from '@atcute/cbor';

import { CarIndex } from '../src/firehose/car-index.ts';
import { proveCommit, type CommitProofInput, type ProofOp } from '../src/firehose/commit-proof.ts';
import { readCommit } from '../src/firehose/commit-reader.ts';
import { decodeFirst } from '../src/firehose/dag-cbor-decode.ts';
import { decodeFrame } from '../src/firehose/frame-decoder.ts';
import { cborBlock, encodeCar } from '../src/sim/block.ts';
import { collectPath, EMPTY_NODE, mstDelete, mstPut, type MstNode } from '../src/sim/mst.ts';
import { simulatorFrames } from '../test/firehose/sim-frames.ts';

const COMMITS = 500;
const COLLECTIONS = ['app.bsky.feed.like', 'app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.feed.repost'];
const EPOCH_US = Date.UTC(2024, 0, 1) * 1000;

let serial = 0;
const value = (): Uint8Array => cborBlock({ $type: 'bench.record', n: serial++ }).cid;

interface Repo {
  root: MstNode;
  paths: string[];
  values: Map<string, Uint8Array>;
}

const repoOf = (records: number): Repo => {
  let root = EMPTY_NODE;
  const paths: string[] = [];
  const values = new Map<string, Uint8Array>();
  for (let i = 0; i < records; i++) {
    const path = `${COLLECTIONS[i % COLLECTIONS.length]}/${tid(EPOCH_US + i * 60_000_000, i % 32)}`;
    const cid = value();
    root = mstPut(root, path, cid, 1);
    paths.push(path);
    values.set(path, cid);
  }
  return { root, paths, values };
};

type Change = [path: string, cid: Uint8Array | null];

/** The proof input of one commit on `repo` (the repo itself is left as it was). */
const commitOn = (repo: Repo, changes: Change[]): CommitProofInput => {
  let after = repo.root;
  const ops: ProofOp[] = [];
  for (const [path, cid] of changes) {
    const prev = repo.values.get(path) ?? null;
    after = cid === null ? mstDelete(after, path, 2) : mstPut(after, path, cid, 2);
    ops.push({ action: cid === null ? 'delete' : prev === null ? 'create' : 'update', path, cid, prev });
  }
  const nodes = new Set<MstNode>([after]);
  for (const [path] of changes) collectPath(after, path, nodes);
  const blocks = [...nodes].map((node) => ({ cid: node.cid, bytes: node.bytes }));
  return { data: after.cid, prevData: repo.root.cid, ops, blocks: new CarIndex(encodeCar(after.cid, blocks)) };
};

const kinds: Record<string, (repo: Repo, i: number) => Change[]> = {
  '1 create': (_, i) => [[`app.bsky.feed.like/${tid(EPOCH_US + 1e12 + i, 1)}`, value()]],
  '3 creates (post, threadgate, postgate)': (_, i) => {
    const rkey = tid(EPOCH_US + 1e12 + i, 2);
    return ['app.bsky.feed.post', 'app.bsky.feed.threadgate', 'app.bsky.feed.postgate'].map((c) => [`${c}/${rkey}`, value()]);
  },
  '1 update': (repo, i) => [[repo.paths[(i * 7919) % repo.paths.length]!, value()]],
  '1 delete': (repo, i) => [[repo.paths[(i * 7919) % repo.paths.length]!, null]],
};

const results: { name: string; ns: number }[] = [];

const perProof = (name: string, inputs: readonly CommitProofInput[]): void => {
  const pass = (): void => {
    for (const input of inputs) if (proveCommit(input) !== 'inverted') throw new Error(`${name}: not proven`);
  };
  for (let i = 0; i < 10; i++) pass();
  let best = Infinity;
  for (let round = 0; round < 25; round++) {
    const start = performance.now();
    pass();
    best = Math.min(best, ((performance.now() - start) * 1e6) / inputs.length);
  }
  results.push({ name, ns: best });
};

for (const records of [100, 10_000]) {
  const repo = repoOf(records);
  for (const [kind, changes] of Object.entries(kinds)) {
    perProof(`${records.toLocaleString('en-US')} records, ${kind}`, Array.from({ length: COMMITS }, (_, i) => commitOn(repo, changes(repo, i))));
  }
}

// the simulator's mix: its real frames (commit, MST nodes on the paths, records in one CAR)
const simInputs: CommitProofInput[] = [];
for (const bytes of simulatorFrames({ commits: 20_000 })) {
  const frame = decodeFrame(bytes);
  if (frame.kind !== 'commit') continue;
  // the frame decoder does not read prevData yet, and keeps op cids as text: read the body again
  const [, rest] = decodeFirst(bytes);
  const body = decodeFirst(rest)[0] as { prevData: CidLinkWrapper; ops: { action: ProofOp['action']; path: string; cid: CidLinkWrapper | null; prev?: CidLinkWrapper }[] };
  simInputs.push({
    data: readCommit(frame).commit.data.bytes,
    prevData: body.prevData.bytes,
    ops: body.ops.map((op) => ({ action: op.action, path: op.path, cid: op.cid?.bytes ?? null, prev: op.prev?.bytes ?? null })),
    blocks: new CarIndex(frame.blocks),
  });
}
perProof(`sim mix (${simInputs.length.toLocaleString('en-US')} commits)`, simInputs);

const width = Math.max(...results.map((r) => r.name.length));
for (const { name, ns } of results) {
  const perSec = Math.round(1e9 / ns).toLocaleString('en-US');
  console.log(`${name.padEnd(width)}  ${(ns / 1000).toFixed(2).padStart(8)} µs   ${perSec.padStart(11)} /s`);
}
