// commit-reader: the CAR slice of one decoded #commit frame in, the signed commit and its records out.
//
// Owns the reading of a commit's blocks. Promises: pure and synchronous; the CAR is indexed once by
// offsets (car-index.ts: nothing is decoded or copied for the blocks nobody looks up) and only the
// commit block and the blocks that the ops' CIDs name are decoded; every block it decodes is checked
// against its CID (SHA-256) unless `verifyBlockHashes: false`; `unsignedBytes` is the exact message
// the repo's signing key signed (the commit as DAG-CBOR without `sig`: cut out of the block's own
// bytes, see unsigned-commit.ts, or re-encoded when that cannot be vouched for). It does not walk or
// verify the MST: an op's CID is trusted as the relay sent it, the record bytes are checked against
// that CID. Malformed input throws a CommitReadError whose `reason` is one of a small fixed set.
// Frames with `tooBig` set may lack record blocks: the caller handles them before calling this.
// `readRepoCommit` and `readRecordBlock` read a whole-repo CAR the same way (repo-snapshot.ts).
import { BytesWrapper, CidLinkWrapper, encode } from '@atcute/cbor';

import { CarIndex, CarIndexError, CID_LENGTH } from './car-index.ts';
import { decode } from './dag-cbor-decode.ts';
import type { CommitFrame } from './frame-decoder.ts';
import { sha256Equals } from './sha256.ts';
import { cutUnsignedCommit } from './unsigned-commit.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type CommitReadErrorReason =
  | 'bad-car'
  | 'missing-commit-block'
  | 'missing-record-block'
  | 'block-hash-mismatch'
  | 'bad-record'
  | 'commit-did-mismatch'
  | 'bad-commit';

export class CommitReadError extends ReasonError<CommitReadErrorReason> {
  override readonly name = 'CommitReadError';
}

export interface SignedCommit {
  did: string;
  version: number;
  /** MST root CID (binary in `.bytes`; `$link`, base32, is made when asked) */
  data: CidLinkWrapper;
  rev: string;
  prev: CidLinkWrapper | null;
  sig: Uint8Array;
  /** DAG-CBOR of the commit without `sig`: the signed message */
  unsignedBytes: Uint8Array;
}

export interface ReadCommitResult {
  commit: SignedCommit;
  /** decoded records of the create/update ops, by CID string */
  records: Map<string, unknown>;
  /** the CAR slice's blocks by CID, for the commit's proof (commit-proof.ts) */
  blocks: CarIndex;
}

export interface ReadCommitOptions {
  /** check that each decoded block hashes to its CID (default true; about 0.3 µs per block) */
  verifyBlockHashes?: boolean;
}

export type CommitInput = Pick<CommitFrame, 'repo' | 'rev' | 'commit' | 'blocks' | 'ops'>;

type CborMap = Record<string, unknown>;

const isMap = (value: unknown): value is CborMap =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

const indexCar = (car: Uint8Array): CarIndex => {
  try {
    return new CarIndex(car);
  } catch (err) {
    if (!(err instanceof CarIndexError)) throw err;
    throw new CommitReadError('bad-car', 'unreadable CAR slice', { cause: err });
  }
};

// base32 (RFC 4648, lowercase, unpadded) character -> 5 bits, 0xff for anything else
const BASE32_VALUES = (() => {
  const values = new Uint8Array(128).fill(0xff);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();
// a CIDv1 string: 'b' then 36 bytes in base32
const CID_STRING_LENGTH = 59;
// the CID being looked up; only read by the lookup that filled it
const scratchCid = new Uint8Array(CID_LENGTH);

/** Fills scratchCid with the bytes of a CID string; false when it is not one. */
const cidBytesInto = (cid: string): boolean => {
  if (cid.length !== CID_STRING_LENGTH || cid.charCodeAt(0) !== 0x62) return false;
  let buffer = 0;
  let bits = 0;
  let written = 0;
  for (let i = 1; i < CID_STRING_LENGTH; i++) {
    const code = cid.charCodeAt(i);
    const value = code < 128 ? BASE32_VALUES[code]! : 0xff;
    if (value === 0xff) return false;
    buffer = ((buffer << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      scratchCid[written++] = (buffer >> bits) & 0xff;
    }
  }
  return true;
};

/** The block number of the block named by a CID string, or -1. */
const lookup = (index: CarIndex, cid: string): number => (cidBytesInto(cid) ? index.find(scratchCid) : -1);

const checkHash = (cid: string | CidLinkWrapper, index: CarIndex, block: number, bytes: Uint8Array): void => {
  if (!sha256Equals(bytes, index.car, index.digestOffsetOf(block))) {
    throw new CommitReadError('block-hash-mismatch', `block ${typeof cid === 'string' ? cid : cid.$link} does not hash to its CID`);
  }
};

const readSignedCommit = (repo: string, expectedRev: string | null, bytes: Uint8Array): SignedCommit => {
  let value: unknown;
  try {
    value = decode(bytes);
  } catch (err) {
    throw new CommitReadError('bad-commit', 'commit block is not DAG-CBOR', { cause: err });
  }
  if (!isMap(value)) throw new CommitReadError('bad-commit', 'commit block is not a map');
  const { did, version, data, rev, prev, sig } = value;
  if (typeof did !== 'string') throw new CommitReadError('bad-commit', 'commit did is not a string');
  if (did !== repo) {
    throw new CommitReadError('commit-did-mismatch', 'commit did differs from the frame repo');
  }
  if (version !== 3) throw new CommitReadError('bad-commit', 'commit version is not 3');
  if (!(data instanceof CidLinkWrapper)) throw new CommitReadError('bad-commit', 'commit data is not a cid-link');
  if (typeof rev !== 'string') throw new CommitReadError('bad-commit', 'commit rev is not a string');
  if (expectedRev !== null && rev !== expectedRev) throw new CommitReadError('bad-commit', 'commit rev differs from the frame rev');
  if (prev !== null && prev !== undefined && !(prev instanceof CidLinkWrapper)) {
    throw new CommitReadError('bad-commit', 'commit prev is neither a cid-link nor null');
  }
  if (!(sig instanceof BytesWrapper)) throw new CommitReadError('bad-commit', 'commit sig is not bytes');
  const unsignedBytes = cutUnsignedCommit(bytes) ?? reencodeUnsigned(value);
  return {
    did,
    version,
    data,
    rev,
    prev: prev ?? null,
    sig: sig.buf,
    unsignedBytes,
  };
};

const reencodeUnsigned = (commit: CborMap): Uint8Array => {
  const { sig: _sig, ...unsigned } = commit;
  try {
    return encode(unsigned);
  } catch (err) {
    throw new CommitReadError('bad-commit', 'commit cannot be re-encoded', { cause: err });
  }
};

/** Reads the commit block and the op records out of a commit frame's CAR slice. */
export const readCommit = (frame: CommitInput, options: ReadCommitOptions = {}): ReadCommitResult => {
  const verifyHashes = options.verifyBlockHashes ?? true;
  const blocks = indexCar(frame.blocks);

  const commitBlock = blocks.find(frame.commit.bytes);
  if (commitBlock === -1) {
    throw new CommitReadError('missing-commit-block', `commit block ${frame.commit.$link} not in CAR`);
  }
  const commitBytes = blocks.bytesOf(commitBlock);
  if (verifyHashes) checkHash(frame.commit, blocks, commitBlock, commitBytes);
  const commit = readSignedCommit(frame.repo, frame.rev, commitBytes);
  return { commit, records: readOpRecords(frame, blocks, verifyHashes), blocks };
};

/**
 * Reads the signed commit of a whole-repo CAR (com.atproto.sync.getRepo): the header's first root,
 * checked against its hash and required to be `repo`'s. The blocks come back for the tree walk.
 */
export const readRepoCommit = (repo: string, car: Uint8Array): { commit: SignedCommit; blocks: CarIndex } => {
  const blocks = indexCar(car);
  const root = blocks.roots[0];
  if (root === undefined) throw new CommitReadError('missing-commit-block', 'the CAR names no root');
  const commitBlock = blocks.find(root);
  if (commitBlock === -1) throw new CommitReadError('missing-commit-block', 'the root commit block is not in the CAR');
  const commitBytes = blocks.bytesOf(commitBlock);
  checkHash('the root commit', blocks, commitBlock, commitBytes);
  return { commit: readSignedCommit(repo, null, commitBytes), blocks };
};

/** Decodes the record block `cid` (checked against its hash); a CommitReadError when absent or malformed. */
export const readRecordBlock = (blocks: CarIndex, cid: string): Record<string, unknown> => decodeRecord(blocks, cid, true);

/**
 * Reads only the op records, leaving the commit block alone: for when signatures are not checked
 * (VERIFY_COMMITS=false), which saves decoding and re-encoding the commit.
 */
export const readRecords = (frame: CommitInput, options: ReadCommitOptions = {}): Map<string, unknown> =>
  readOpRecords(frame, indexCar(frame.blocks), options.verifyBlockHashes ?? true);

const readOpRecords = (frame: CommitInput, blocks: CarIndex, verifyHashes: boolean): Map<string, unknown> => {
  const records = new Map<string, unknown>();
  for (const op of frame.ops) {
    const cid = op.cid;
    if (cid === null || records.has(cid)) continue;
    records.set(cid, decodeRecord(blocks, cid, verifyHashes));
  }
  return records;
};

const decodeRecord = (blocks: CarIndex, cid: string, verifyHash: boolean): CborMap => {
  const block = lookup(blocks, cid);
  if (block === -1) throw new CommitReadError('missing-record-block', `record block ${cid} not in CAR`);
  const bytes = blocks.bytesOf(block);
  if (verifyHash) checkHash(cid, blocks, block, bytes);
  let record: unknown;
  try {
    record = decode(bytes);
  } catch (err) {
    throw new CommitReadError('bad-record', `record block ${cid} is not DAG-CBOR`, { cause: err });
  }
  if (!isMap(record)) throw new CommitReadError('bad-record', `record block ${cid} is not a map`);
  return record;
};
