// car-index: where each block of a CAR v1 slice starts and ends, read by hand, nothing decoded.
//
// Owns the CAR framing: a varint header length, the DAG-CBOR header `{version: 1, roots: [...]}`,
// then blocks of varint length, a 36-byte CIDv1 (sha-256, dag-cbor or raw) and the block bytes.
// Promises: accepts and rejects exactly what @atcute/car's `fromUint8Array` does when read to the
// end (a malformed header or block anywhere throws a CarIndexError); keeps two offsets per block
// instead of objects, so the blocks nobody looks up (most are MST nodes) cost no allocation;
// `find` answers the first block whose CID equals the given 36 bytes, in linear time for the
// handful of blocks a commit carries and through a map of their digests past that.
import { isCarV1Header } from '@atcute/car';
import { CidLinkWrapper } from '@atcute/cbor';

import { decode as decodeCbor } from './dag-cbor-decode.ts';
import { ReasonError } from '../lib/reason-error.ts';

export class CarIndexError extends ReasonError<'bad-car'> {
  override readonly name = 'CarIndexError';
}

export const CID_LENGTH = 36;
const CID_V1 = 0x01;
const CODEC_DCBOR = 0x71;
const CODEC_RAW = 0x55;
const HASH_SHA256 = 0x12;
const DIGEST_LENGTH = 32;
// the CAR reader reads varints of at most 8 bytes
const MAX_VARINT_BYTES = 8;
// past this many blocks a lookup goes through a map instead of a scan (a crafted CAR may hold many)
const SCAN_LIMIT = 16;

const fail = (message: string): never => {
  throw new CarIndexError('bad-car', message);
};

/** Reads an unsigned LEB128 varint at `offset`; returns the value and stores the next offset. */
const readVarint = (bytes: Uint8Array, offset: number, next: { offset: number }): number => {
  const end = Math.min(offset + MAX_VARINT_BYTES, bytes.length);
  let value = 0;
  let scale = 1;
  for (let at = offset; at < end; at++) {
    const byte = bytes[at]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      next.offset = at + 1;
      return value;
    }
    scale *= 128;
  }
  return fail('unreadable varint');
};

const isCidPrefix = (bytes: Uint8Array, at: number): boolean =>
  bytes[at] === CID_V1 &&
  (bytes[at + 1] === CODEC_DCBOR || bytes[at + 1] === CODEC_RAW) &&
  bytes[at + 2] === HASH_SHA256 &&
  bytes[at + 3] === DIGEST_LENGTH;

// 32 bits of a CID's digest
const digestKey = (bytes: Uint8Array, cidAt: number): number =>
  ((bytes[cidAt + 4]! << 24) | (bytes[cidAt + 5]! << 16) | (bytes[cidAt + 6]! << 8) | bytes[cidAt + 7]!) >>> 0;

export class CarIndex {
  /** the CAR slice; block offsets point into it */
  readonly car: Uint8Array;
  /** the header's roots, 36 CID bytes each (a repo export's first root is its commit) */
  readonly roots: Uint8Array[];
  /** per block: offset of its CID, then offset after its bytes (the bytes start 36 after the CID) */
  readonly #offsets: number[];
  /** digest key -> block numbers, built on the first lookup when there are many blocks */
  #byDigest: Map<number, number[]> | null = null;

  constructor(car: Uint8Array) {
    this.car = car;
    const indexed = indexBlocks(car);
    this.roots = indexed.roots;
    this.#offsets = indexed.offsets;
  }

  get blockCount(): number {
    return this.#offsets.length / 2;
  }

  /** The block number of the first block whose CID is `cid` (36 bytes), or -1. */
  find(cid: Uint8Array): number {
    if (cid.length !== CID_LENGTH) return -1;
    const count = this.blockCount;
    if (count <= SCAN_LIMIT) {
      for (let block = 0; block < count; block++) if (this.#cidEquals(block, cid)) return block;
      return -1;
    }
    const candidates = (this.#byDigest ??= this.#digestMap()).get(digestKey(cid, 0));
    if (candidates !== undefined) for (const block of candidates) if (this.#cidEquals(block, cid)) return block;
    return -1;
  }

  /** A view of the block's bytes (after its CID). */
  bytesOf(block: number): Uint8Array {
    return this.car.subarray(this.#offsets[block * 2]! + CID_LENGTH, this.#offsets[block * 2 + 1]!);
  }

  /** Offset in `car` of the block's 32-byte digest. */
  digestOffsetOf(block: number): number {
    return this.#offsets[block * 2]! + 4;
  }

  #cidEquals(block: number, cid: Uint8Array): boolean {
    const car = this.car;
    const at = this.#offsets[block * 2]!;
    // digest bytes first: they differ between blocks, the 4-byte prefix rarely does
    for (let i = CID_LENGTH - 1; i >= 0; i--) if (car[at + i] !== cid[i]) return false;
    return true;
  }

  #digestMap(): Map<number, number[]> {
    const map = new Map<number, number[]>();
    for (let block = 0; block < this.blockCount; block++) {
      const key = digestKey(this.car, this.#offsets[block * 2]!);
      const list = map.get(key);
      if (list === undefined) map.set(key, [block]);
      else list.push(block);
    }
    return map;
  }
}

const indexBlocks = (car: Uint8Array): { roots: Uint8Array[]; offsets: number[] } => {
  const next = { offset: 0 };
  const headerLength = readVarint(car, 0, next);
  if (headerLength === 0) fail('empty CAR header');
  const headerStart = next.offset;
  const headerEnd = headerStart + headerLength;
  if (headerEnd > car.length) fail('CAR header past the end');
  let header: unknown;
  try {
    header = decodeCbor(car.subarray(headerStart, headerEnd));
  } catch (err) {
    throw new CarIndexError('bad-car', 'CAR header is not DAG-CBOR', { cause: err });
  }
  if (!isCarV1Header(header)) fail('not a CAR v1 header');
  const roots = (header as { roots: unknown[] }).roots.map((root) => (root instanceof CidLinkWrapper ? root.bytes : fail('CAR root is not a CID link')));

  const offsets: number[] = [];
  let at = headerEnd;
  while (at < car.length) {
    const length = readVarint(car, at, next);
    if (length < CID_LENGTH) fail('CAR block shorter than a CID');
    const cidAt = next.offset;
    if (cidAt + CID_LENGTH > car.length || !isCidPrefix(car, cidAt)) fail('CAR block without a CIDv1 sha-256');
    const end = cidAt + length;
    if (end > car.length) fail('CAR block past the end');
    offsets.push(cidAt, end);
    at = end;
  }
  return { roots, offsets };
};
