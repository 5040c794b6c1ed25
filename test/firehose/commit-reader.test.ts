import { describe, expect, test } from 'bun:test';
import { fromUint8Array } from '@atcute/car';
import { CidLinkWrapper, decode, encode, toBytes, toCidLink } from '@atcute/cbor';
import { toString as cidToString } from '@atcute/cid';

import { CommitReadError, readCommit, readRecords, type CommitReadErrorReason } from '../../src/firehose/commit-reader.ts';
import { decodeFrame, type CommitFrame } from '../../src/firehose/frame-decoder.ts';
import { parseDidKey, verifyCommitSignature } from '../../src/firehose/signature.ts';
import {
  blockOf,
  buildCommit,
  cidOf,
  cidString,
  DID,
  k256Signer,
  post,
  REV,
  writeCar,
  type Block,
  type CommitInputOptions,
} from './fixtures.ts';
import { simulatorFrames } from './sim-frames.ts';

const commitFrame = (options: CommitInputOptions = {}): CommitFrame => {
  const frame = decodeFrame(buildCommit(options).frame);
  if (frame.kind !== 'commit') throw new Error('expected a commit');
  return frame;
};

describe('readCommit: a real signed commit', () => {
  const signer = k256Signer(3);
  const built = buildCommit({
    signer,
    records: [
      { collection: 'app.bsky.feed.post', rkey: '3kaaaaaaaaaa2', record: post('one') },
      { collection: 'app.bsky.feed.post', rkey: '3kaaaaaaaaaa3', record: post('two') },
    ],
  });
  const frame = decodeFrame(built.frame) as CommitFrame;

  test('returns the commit fields and the signed bytes', () => {
    const { commit } = readCommit(frame);
    expect({ ...commit, data: commit.data.$link }).toEqual({
      did: DID,
      version: 3,
      data: cidString(built.mstBlock.cid),
      rev: REV,
      prev: null,
      sig: built.sig,
      unsignedBytes: built.unsignedBytes,
    });
    expect(verifyCommitSignature(commit.unsignedBytes, commit.sig, parseDidKey(signer.didKey))).toBe(true);
  });

  test('returns every op record by CID', () => {
    const { records } = readCommit(frame);
    expect([...records.keys()]).toEqual(built.recordBlocks.map((b) => cidString(b.cid)));
    expect(records.get(frame.ops[1]!.cid!)).toEqual(post('two'));
  });

  test('deletes need no block; two ops naming one CID decode it once', () => {
    const cid = frame.ops[0]!.cid;
    const { records } = readCommit({
      ...frame,
      ops: [
        { action: 'delete', collection: 'app.bsky.feed.like', rkey: '3kabc', cid: null },
        { action: 'create', collection: 'app.bsky.feed.post', rkey: 'a', cid },
        { action: 'update', collection: 'app.bsky.feed.post', rkey: 'b', cid },
      ],
    });
    expect(records.size).toBe(1);
  });

  test('a commit with an unknown extra field is signed with that field', () => {
    const extra = commitFrame({ editUnsigned: (c) => void (c.extra = 'x') });
    const { commit } = readCommit(extra);
    expect(verifyCommitSignature(commit.unsignedBytes, commit.sig, parseDidKey(k256Signer().didKey))).toBe(true);
  });
});

describe('readRecords: the records without the commit block (signatures unchecked)', () => {
  test('reads the same records as readCommit, and does not need the commit block', () => {
    const full = commitFrame();
    expect(readRecords(full)).toEqual(readCommit(full).records);
    const withoutCommit = commitFrame({ carBlocks: (b) => [b.mstBlock, ...b.recordBlocks] });
    expect(readRecords(withoutCommit)).toEqual(readCommit(full).records);
  });

  test('still rejects a record block that does not hash to its CID', () => {
    const frame = commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock, ...b.recordBlocks.map((r) => ({ cid: r.cid, bytes: encode(post('tampered')) }))] });
    expect(() => readRecords(frame)).toThrow(CommitReadError);
  });
});

describe('readCommit: malformed input', () => {
  const tampered = (block: Block): Block => {
    const bytes = encode(post('tampered'));
    return { cid: block.cid, bytes };
  };
  const notAMap: Block = blockOf([1, 2, 3]);
  const notCbor: Block = { cid: cidOf(new Uint8Array([0xff])), bytes: new Uint8Array([0xff]) };

  const cases: [string, () => CommitFrame, CommitReadErrorReason][] = [
    ['CAR is garbage', () => ({ ...commitFrame(), blocks: new Uint8Array([1, 2, 3]) }), 'bad-car'],
    ['CAR is empty', () => ({ ...commitFrame(), blocks: new Uint8Array(0) }), 'bad-car'],
    [
      'CAR is truncated',
      () => {
        const f = commitFrame();
        return { ...f, blocks: f.blocks.subarray(0, f.blocks.length - 5) };
      },
      'bad-car',
    ],
    ['CAR misses the commit block', () => commitFrame({ carBlocks: (b) => [b.mstBlock, ...b.recordBlocks] }), 'missing-commit-block'],
    ['CAR misses a record block', () => commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock] }), 'missing-record-block'],
    [
      'record bytes do not match their CID',
      () => commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock, tampered(b.recordBlocks[0]!)] }),
      'block-hash-mismatch',
    ],
    [
      'commit bytes do not match their CID',
      () => commitFrame({ carBlocks: (b) => [{ cid: b.commitBlock.cid, bytes: b.mstBlock.bytes }, ...b.recordBlocks] }),
      'block-hash-mismatch',
    ],
    [
      'record is not a map',
      () => {
        const f = commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock, notAMap] });
        return { ...f, ops: [{ ...f.ops[0]!, cid: cidString(notAMap.cid) }] };
      },
      'bad-record',
    ],
    [
      'record is not CBOR',
      () => {
        const f = commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock, notCbor] });
        return { ...f, ops: [{ ...f.ops[0]!, cid: cidString(notCbor.cid) }] };
      },
      'bad-record',
    ],
    [
      'an op CID string that is not a CID',
      () => {
        const f = commitFrame();
        return { ...f, ops: [{ ...f.ops[0]!, cid: 'not-a-cid' }] };
      },
      'missing-record-block',
    ],
    [
      'an op CID string with a character outside base32',
      () => {
        const f = commitFrame();
        return { ...f, ops: [{ ...f.ops[0]!, cid: `${f.ops[0]!.cid!.slice(0, 30)}1${f.ops[0]!.cid!.slice(31)}` }] };
      },
      'missing-record-block',
    ],
    [
      'a commit CID of the wrong length',
      () => {
        const f = commitFrame();
        return { ...f, commit: new CidLinkWrapper(new Uint8Array([...f.commit.bytes, 0])) };
      },
      'missing-commit-block',
    ],
    ['commit did differs from the repo', () => commitFrame({ editUnsigned: (c) => void (c.did = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa') }), 'commit-did-mismatch'],
    ['commit rev differs from the frame', () => commitFrame({ editUnsigned: (c) => void (c.rev = '3kdgkpd4rv22d') }), 'bad-commit'],
    ['commit version 2', () => commitFrame({ editUnsigned: (c) => void (c.version = 2) }), 'bad-commit'],
    ['commit did missing', () => commitFrame({ editUnsigned: (c) => void delete c.did }), 'bad-commit'],
    ['commit data a string', () => commitFrame({ editUnsigned: (c) => void (c.data = 'bafy') }), 'bad-commit'],
    ['commit prev a string', () => commitFrame({ editUnsigned: (c) => void (c.prev = 'bafy') }), 'bad-commit'],
    [
      'commit block is not a map',
      () => {
        const f = commitFrame({ carBlocks: (b) => [notAMap, b.mstBlock, ...b.recordBlocks] });
        return { ...f, commit: new CidLinkWrapper(notAMap.cid.bytes) };
      },
      'bad-commit',
    ],
    [
      'commit sig is not bytes',
      () => {
        const b = buildCommit();
        const unsigned = { did: DID, version: 3, data: toCidLink(b.mstBlock.cid), rev: REV, prev: null, sig: 'x' };
        const commitBlock = blockOf(unsigned);
        const f = decodeFrame(b.frame) as CommitFrame;
        return {
          ...f,
          commit: new CidLinkWrapper(commitBlock.cid.bytes),
          blocks: writeCar([commitBlock.cid], [commitBlock, b.mstBlock, ...b.recordBlocks]),
        };
      },
      'bad-commit',
    ],
  ];
  test.each(cases)('%s -> %s', (_name, make, reason) => {
    let caught: unknown;
    try {
      readCommit(make());
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CommitReadError);
    expect((caught as CommitReadError).reason).toBe(reason);
  });

  test('a decoy block sharing the index key of a record CID is not mistaken for it', () => {
    const frame = commitFrame({
      carBlocks: (b) => {
        const real = b.recordBlocks[0]!;
        const decoyCid = new Uint8Array(real.cid.bytes);
        decoyCid[35]! ^= 0xff; // same first digest bytes, different CID
        const decoy: Block = { cid: { ...real.cid, bytes: decoyCid }, bytes: encode(post('decoy')) };
        return [b.commitBlock, decoy, b.mstBlock, real];
      },
    });
    expect(readCommit(frame).records.get(frame.ops[0]!.cid!)).toEqual(post('hello'));
  });

  test('hash checks can be turned off', () => {
    const frame = commitFrame({ carBlocks: (b) => [b.commitBlock, b.mstBlock, tampered(b.recordBlocks[0]!)] });
    const { records } = readCommit(frame, { verifyBlockHashes: false });
    expect(records.get(frame.ops[0]!.cid!)).toEqual(post('tampered'));
  });

  test('bytes wrapper sig of the wrong length is left to signature verification', () => {
    const b = buildCommit({ editUnsigned: () => undefined });
    const unsigned = { did: DID, version: 3, data: toCidLink(b.mstBlock.cid), rev: REV, prev: null };
    const commitBlock = blockOf({ ...unsigned, sig: toBytes(new Uint8Array(10)) });
    const f = decodeFrame(b.frame) as CommitFrame;
    const { commit } = readCommit({
      ...f,
      commit: new CidLinkWrapper(commitBlock.cid.bytes),
      blocks: writeCar([commitBlock.cid], [commitBlock, b.mstBlock, ...b.recordBlocks]),
    });
    expect(verifyCommitSignature(commit.unsignedBytes, commit.sig, parseDidKey(k256Signer().didKey))).toBe(false);
  });
});

describe('readCommit over simulator commits: what @atcute/car and @atcute/cbor read', () => {
  const frames = simulatorFrames({ seed: 'commit-reader', accounts: 100, commits: 400 }).map((bytes) => decodeFrame(bytes) as CommitFrame);

  test('the same records by CID, and the commit re-encoded without sig as the signed bytes', () => {
    for (const frame of frames) {
      const blocks = new Map([...fromUint8Array(frame.blocks)].map((entry) => [cidToString(entry.cid), entry.bytes]));
      const { commit, records } = readCommit(frame);
      const { sig: _sig, ...unsigned } = decode(blocks.get(frame.commit.$link)!) as Record<string, unknown>;
      expect(commit.unsignedBytes).toEqual(encode(unsigned));
      for (const op of frame.ops) {
        if (op.cid !== null) expect(records.get(op.cid)).toStrictEqual(decode(blocks.get(op.cid)!));
      }
      expect(readRecords(frame)).toStrictEqual(records);
    }
  });
});
