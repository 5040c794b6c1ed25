// commit-reader: the CAR slice of one decoded #commit frame in, the signed commit and its records out.
//
// Owns the reading of a commit's blocks. Promises: pure and synchronous; the CAR is indexed once
// (block bytes stay zero-copy views into the frame) and only the commit block and the blocks that
// the ops' CIDs name are decoded; every block it decodes is checked against its CID (SHA-256) unless
// `verifyBlockHashes: false`; `unsignedBytes` is the exact message the repo's signing key signed
// (the commit re-encoded as DAG-CBOR without `sig`). It does not walk or verify the MST: an op's CID
// is trusted as the relay sent it, the record bytes are checked against that CID. Malformed input
// throws a CommitReadError whose `reason` is one of a small fixed set. Frames with `tooBig` set may
// lack record blocks: the caller handles them before calling this.
import { BytesWrapper, CidLinkWrapper, decode, encode } from '@atcute/cbor';
import { fromUint8Array, type CarEntry } from '@atcute/car';
import { fromString } from '@atcute/cid';

import type { CommitFrame } from './frame-decoder.ts';
import { sha256Equals } from './sha256.ts';
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
  /** MST root CID (base32 string) */
  data: string;
  rev: string;
  prev: string | null;
  sig: Uint8Array;
  /** DAG-CBOR of the commit without `sig`: the signed message */
  unsignedBytes: Uint8Array;
}

export interface ReadCommitResult {
  commit: SignedCommit;
  /** decoded records of the create/update ops, by CID string */
  records: Map<string, unknown>;
}

export interface ReadCommitOptions {
  /** check that each decoded block hashes to its CID (default true; about 0.3 µs per block) */
  verifyBlockHashes?: boolean;
}

export type CommitInput = Pick<CommitFrame, 'repo' | 'rev' | 'commit' | 'blocks' | 'ops'>;

type CborMap = Record<string, unknown>;

const isMap = (value: unknown): value is CborMap =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

// The index is keyed by 32 bits of each block's digest: base32-encoding every block's CID to match
// the frame's CID strings cost about 0.5 µs per block, while the few CIDs looked up (the commit and
// the ops) are decoded from their strings instead (0.3 µs each). Entries are the CAR reader's own:
// bytes and digest are views into the frame, nothing is copied. Distinct CIDs sharing a key (only
// a crafted CAR does that) go to a side list that is scanned, so a lookup stays exact.
class BlockIndex {
  readonly #byKey = new Map<number, CarEntry>();
  readonly #collisions: CarEntry[] = [];

  add(entry: CarEntry): void {
    const key = keyOf(entry.cid.bytes);
    const existing = this.#byKey.get(key);
    if (existing === undefined) this.#byKey.set(key, entry);
    else if (!sameBytes(existing.cid.bytes, entry.cid.bytes)) this.#collisions.push(entry);
  }

  get(cid: Uint8Array): CarEntry | undefined {
    const entry = this.#byKey.get(keyOf(cid));
    if (entry !== undefined && sameBytes(entry.cid.bytes, cid)) return entry;
    for (const other of this.#collisions) if (sameBytes(other.cid.bytes, cid)) return other;
    return undefined;
  }
}

// CID bytes: version, codec, hash code, digest length, then the 32-byte digest
const keyOf = (cid: Uint8Array): number => ((cid[4]! << 24) | (cid[5]! << 16) | (cid[6]! << 8) | cid[7]!) >>> 0;

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

const indexCar = (car: Uint8Array): BlockIndex => {
  const index = new BlockIndex();
  try {
    for (const entry of fromUint8Array(car)) index.add(entry);
  } catch (err) {
    throw new CommitReadError('bad-car', 'unreadable CAR slice', { cause: err });
  }
  return index;
};

const lookup = (index: BlockIndex, cid: string): CarEntry | undefined => {
  let bytes: Uint8Array;
  try {
    bytes = fromString(cid).bytes;
  } catch {
    return undefined; // not a CID: no block can match it
  }
  return index.get(bytes);
};

const checkHash = (cid: string, entry: CarEntry): void => {
  if (!sha256Equals(entry.bytes, entry.cid.digest.contents)) {
    throw new CommitReadError('block-hash-mismatch', `block ${cid} does not hash to its CID`);
  }
};

const readSignedCommit = (frame: CommitInput, entry: CarEntry): SignedCommit => {
  let value: unknown;
  try {
    value = decode(entry.bytes);
  } catch (err) {
    throw new CommitReadError('bad-commit', 'commit block is not DAG-CBOR', { cause: err });
  }
  if (!isMap(value)) throw new CommitReadError('bad-commit', 'commit block is not a map');
  const { sig, ...unsigned } = value;
  const { did, version, data, rev, prev } = unsigned;
  if (typeof did !== 'string') throw new CommitReadError('bad-commit', 'commit did is not a string');
  if (did !== frame.repo) {
    throw new CommitReadError('commit-did-mismatch', 'commit did differs from the frame repo');
  }
  if (version !== 3) throw new CommitReadError('bad-commit', 'commit version is not 3');
  if (!(data instanceof CidLinkWrapper)) throw new CommitReadError('bad-commit', 'commit data is not a cid-link');
  if (rev !== frame.rev) throw new CommitReadError('bad-commit', 'commit rev differs from the frame rev');
  if (prev !== null && prev !== undefined && !(prev instanceof CidLinkWrapper)) {
    throw new CommitReadError('bad-commit', 'commit prev is neither a cid-link nor null');
  }
  if (!(sig instanceof BytesWrapper)) throw new CommitReadError('bad-commit', 'commit sig is not bytes');
  let unsignedBytes: Uint8Array;
  try {
    unsignedBytes = encode(unsigned);
  } catch (err) {
    throw new CommitReadError('bad-commit', 'commit cannot be re-encoded', { cause: err });
  }
  return {
    did,
    version,
    data: data.$link,
    rev,
    prev: prev ? prev.$link : null,
    sig: sig.buf,
    unsignedBytes,
  };
};

/** Reads the commit block and the op records out of a commit frame's CAR slice. */
export const readCommit = (frame: CommitInput, options: ReadCommitOptions = {}): ReadCommitResult => {
  const verifyHashes = options.verifyBlockHashes ?? true;
  const blocks = indexCar(frame.blocks);

  const commitEntry = lookup(blocks, frame.commit);
  if (commitEntry === undefined) {
    throw new CommitReadError('missing-commit-block', `commit block ${frame.commit} not in CAR`);
  }
  if (verifyHashes) checkHash(frame.commit, commitEntry);
  const commit = readSignedCommit(frame, commitEntry);
  return { commit, records: readOpRecords(frame, blocks, verifyHashes) };
};

/**
 * Reads only the op records, leaving the commit block alone: for when signatures are not checked
 * (VERIFY_COMMITS=false), which saves decoding and re-encoding the commit.
 */
export const readRecords = (frame: CommitInput, options: ReadCommitOptions = {}): Map<string, unknown> =>
  readOpRecords(frame, indexCar(frame.blocks), options.verifyBlockHashes ?? true);

const readOpRecords = (frame: CommitInput, blocks: BlockIndex, verifyHashes: boolean): Map<string, unknown> => {
  const records = new Map<string, unknown>();
  for (const op of frame.ops) {
    const cid = op.cid;
    if (cid === null || records.has(cid)) continue;
    const entry = lookup(blocks, cid);
    if (entry === undefined) {
      throw new CommitReadError('missing-record-block', `record block ${cid} not in CAR`);
    }
    if (verifyHashes) checkHash(cid, entry);
    let record: unknown;
    try {
      record = decode(entry.bytes);
    } catch (err) {
      throw new CommitReadError('bad-record', `record block ${cid} is not DAG-CBOR`, { cause: err });
    }
    if (!isMap(record)) throw new CommitReadError('bad-record', `record block ${cid} is not a map`);
    records.set(cid, record);
  }
  return records;
};
