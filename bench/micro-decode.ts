// micro-decode: per-operation cost of the firehose decode and verify layer.
// Run: bun bench/micro-decode.ts   (single thread; numbers are per call on this machine)
// The first part times one hand-made commit per call; the second runs 20,000 simulator commits (the
// realistic mix, real MST nodes in each CAR) through each stage and reports µs per commit.
import { createHash } from 'node:crypto';
import { encode, toBytes, toCidLink } from '@atcute/cbor';
import { verifySig, parseDidKey as atcuteParseDidKey } from '@atcute/crypto';
import { parseCommitUnauthenticated } from '@atproto/sync';
import { Frame } from '@atproto/xrpc-server';

import { readCommit, readRecords } from '../src/firehose/commit-reader.ts';
import { decodeFrame, type CommitFrame } from '../src/firehose/frame-decoder.ts';
import { sha256 } from '../src/firehose/sha256.ts';
import { parseDidKey, verifyCommitSignature } from '../src/firehose/signature.ts';
import { cutUnsignedCommit } from '../src/firehose/unsigned-commit.ts';
import { parseRecord } from '../src/pipeline/collections.ts';
import { blockOf, buildCommit, k256Signer, p256Signer, post } from '../test/firehose/fixtures.ts';
import { simulatorFrames } from '../test/firehose/sim-frames.ts';

const results: { name: string; ns: number }[] = [];

const bench = (name: string, fn: () => unknown, iterations = 50_000): void => {
  for (let i = 0; i < Math.min(iterations, 5_000); i++) fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    best = Math.min(best, ((performance.now() - start) * 1e6) / iterations);
  }
  results.push({ name, ns: best });
};

const benchAsync = async (name: string, fn: () => Promise<unknown>, iterations = 5_000): Promise<void> => {
  for (let i = 0; i < 500; i++) await fn();
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await fn();
    best = Math.min(best, ((performance.now() - start) * 1e6) / iterations);
  }
  results.push({ name, ns: best });
};

// A typical live commit: one post record, its CAR holding the commit, four MST nodes on the path
// to the new leaf (about 400 bytes each), and the record.
const k256 = k256Signer(9);
const p256 = p256Signer();
const filler = (i: number) => blockOf({ l: null, e: [{ p: i, k: toBytes(new Uint8Array(0)), v: null, t: null }], pad: 'm'.repeat(380) });
const mst = [1, 2, 3, 4].map(filler);
const text = 'A typical post of around two hundred characters, which is what most of the firehose carries. '.repeat(2);
const build = (signer = k256) =>
  buildCommit({
    signer,
    records: [{ collection: 'app.bsky.feed.post', rkey: '3kdgkpd4rv22c', record: post(text) }],
    carBlocks: (b) => [b.commitBlock, b.mstBlock, ...mst, ...b.recordBlocks],
  });
const built = build();
const builtP256 = build(p256);
const frame = decodeFrame(built.frame) as CommitFrame;
const framep = decodeFrame(builtP256.frame) as CommitFrame;
const { commit } = readCommit(frame);
const commitP256 = readCommit(framep).commit;
const k256Key = parseDidKey(k256.didKey);
const p256Key = parseDidKey(p256.didKey);
if (!verifyCommitSignature(commit.unsignedBytes, commit.sig, k256Key)) throw new Error('k256 fixture does not verify');
if (!verifyCommitSignature(commitP256.unsignedBytes, commitP256.sig, p256Key)) throw new Error('p256 fixture does not verify');

const block300 = new Uint8Array(300).map((_, i) => i);
const unsignedObject = { did: commit.did, version: 3, data: toCidLink(built.mstBlock.cid), rev: commit.rev, prev: null };

bench('decodeFrame (#commit, 1 op)', () => decodeFrame(built.frame));
bench('readCommit (hash checks on)', () => readCommit(frame));
bench('readCommit (hash checks off)', () => readCommit(frame, { verifyBlockHashes: false }));
bench('decodeFrame + readCommit', () => readCommit(decodeFrame(built.frame) as CommitFrame));
bench('  re-encode unsigned commit', () => encode(unsignedObject));
bench('  cut unsigned commit out of the block (used)', () => cutUnsignedCommit(built.commitBlock.bytes));
bench('sha256 300 B, Bun.SHA256.hash (used)', () => sha256(block300), 200_000);
bench('sha256 300 B, node:crypto createHash', () => createHash('sha256').update(block300).digest(), 200_000);
await benchAsync('sha256 300 B, crypto.subtle.digest', () => crypto.subtle.digest('SHA-256', block300), 20_000);
bench('parseDidKey secp256k1', () => parseDidKey(k256.didKey), 5_000);
bench('parseDidKey p256', () => parseDidKey(p256.didKey), 5_000);
bench('verify k256, native libsecp256k1 (used)', () => verifyCommitSignature(commit.unsignedBytes, commit.sig, k256Key), 5_000);
bench('verify p256, node:crypto sync (used)', () => verifyCommitSignature(commitP256.unsignedBytes, commitP256.sig, p256Key), 5_000);
const atcuteK256 = atcuteParseDidKey(k256.didKey);
const atcuteP256 = atcuteParseDidKey(p256.didKey);
await benchAsync('verify k256, @atcute/crypto (noble)', () => verifySig(atcuteK256, new Uint8Array(commit.sig), new Uint8Array(commit.unsignedBytes)), 500);
await benchAsync('verify p256, @atcute/crypto (subtle)', () => verifySig(atcuteP256, new Uint8Array(commitP256.sig), new Uint8Array(commitP256.unsignedBytes)), 2_000);
bench(
  'decode + read + verify k256 (one commit)',
  () => {
    const f = decodeFrame(built.frame) as CommitFrame;
    const { commit: c } = readCommit(f);
    return verifyCommitSignature(c.unsignedBytes, c.sig, k256Key);
  },
  5_000,
);

// the simulator's mix: each stage over every commit, best of 5 passes, µs per commit
const simFrames = simulatorFrames({ commits: 20_000 });
const simDecoded = simFrames.map((bytes) => decodeFrame(bytes) as CommitFrame);
const simRecords = simDecoded.map((f) => readCommit(f).records);
const perCommit = (name: string, pass: () => void): void => {
  pass();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    pass();
    best = Math.min(best, ((performance.now() - start) * 1e6) / simFrames.length);
  }
  results.push({ name: `sim: ${name}`, ns: best });
};
perCommit('decodeFrame', () => {
  for (const bytes of simFrames) decodeFrame(bytes);
});
perCommit('readCommit', () => {
  for (const f of simDecoded) readCommit(f);
});
perCommit('readRecords (no verification)', () => {
  for (const f of simDecoded) readRecords(f);
});
perCommit('parseRecord (every op)', () => {
  for (let i = 0; i < simDecoded.length; i++) {
    for (const op of simDecoded[i]!.ops) if (op.cid !== null) parseRecord(op.collection, op.rkey, simRecords[i]!.get(op.cid));
  }
});
perCommit('decodeFrame + readCommit + parseRecord', () => {
  for (const bytes of simFrames) {
    const f = decodeFrame(bytes) as CommitFrame;
    const { records } = readCommit(f);
    for (const op of f.ops) if (op.cid !== null) parseRecord(op.collection, op.rkey, records.get(op.cid));
  }
});
// the reference library's path for the same frames (what the README's comparison cites): its frame
// decoding and its reading of the commit (CAR, records and their inclusion in the tree), no signature
{
  const parseWith = async (): Promise<void> => {
    for (const bytes of simFrames) {
      const frame = Frame.fromBytes(bytes);
      if (frame.isMessage() && frame.type === '#commit') await parseCommitUnauthenticated(frame.body as Parameters<typeof parseCommitUnauthenticated>[0]);
    }
  };
  await parseWith();
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    await parseWith();
    best = Math.min(best, ((performance.now() - start) * 1e6) / simFrames.length);
  }
  results.push({ name: 'sim: @atproto/sync Frame.fromBytes + parseCommitUnauthenticated', ns: best });
}

const width = Math.max(...results.map((r) => r.name.length));
console.log(`frame ${built.frame.length} B, CAR ${frame.blocks.length} B, ${1 + 1 + mst.length + 1} blocks\n`);
for (const { name, ns } of results) {
  const perSec = Math.round(1e9 / ns).toLocaleString('en-US');
  console.log(`${name.padEnd(width)}  ${(ns / 1000).toFixed(2).padStart(8)} µs   ${perSec.padStart(11)} /s`);
}
