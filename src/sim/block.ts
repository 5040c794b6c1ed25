/**
 * Content-addressed blocks and CAR v1 archives, synchronously.
 *
 * Owns: turning values into DAG-CBOR blocks with their CIDv1 (sha256), and writing CAR v1 bytes.
 * Promises: CIDs are computed over exactly the bytes stored; a CAR has one root and lists the
 * blocks in the order given. CIDs travel as their 36 raw bytes (cheap to keep by the hundred
 * thousand); `link` and `cidString` convert at the edges. The atcute CAR writer is an async stream;
 * the simulator writes hundreds of thousands of small CARs, so this is the plain synchronous form.
 */
import * as CID from '@atcute/cid';
import { encode } from './cbor.ts';
import { sha256 } from './k256.ts';

export interface Block {
  /** raw CIDv1 bytes */
  readonly cid: Uint8Array;
  readonly bytes: Uint8Array;
}

/** Encodes `value` as DAG-CBOR; the bytes are an exact-size copy (safe to keep). */
export const cborBlock = (value: unknown): Block => blockOf(encode(value));

/** CIDv1 bytes: version, codec, sha2-256 multihash (the same bytes as @atcute/cid's `fromDigest`). */
const cidOf = (codec: number, bytes: Uint8Array): Uint8Array => {
  const cid = new Uint8Array(36);
  cid[0] = 1;
  cid[1] = codec;
  cid[2] = 0x12;
  cid[3] = 32;
  cid.set(sha256(bytes), 4);
  return cid;
};

/** The block of DAG-CBOR `bytes` (kept as given). */
export const blockOf = (bytes: Uint8Array): Block => ({ cid: cidOf(CID.CODEC_DCBOR, bytes), bytes });

export const rawCid = (bytes: Uint8Array): Uint8Array => cidOf(CID.CODEC_RAW, bytes);

export const link = (cid: Uint8Array): CID.CidLink => new CID.CidLinkWrapper(cid);

export const cidString = (cid: Uint8Array): string => CID.toString(CID.decode(cid));

const varintLength = (n: number): number => {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
};

const writeVarint = (out: Uint8Array, offset: number, n: number): number => {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[offset++] = n;
  return offset;
};

/** CAR v1: varint-prefixed header `{version: 1, roots: [root]}`, then varint-prefixed cid||bytes. */
export const encodeCar = (root: Uint8Array, blocks: Iterable<Block>): Uint8Array<ArrayBuffer> => {
  const header = encode({ version: 1, roots: [link(root)] });
  const list = [...blocks];
  let size = varintLength(header.length) + header.length;
  for (const b of list) {
    const len = b.cid.length + b.bytes.length;
    size += varintLength(len) + len;
  }
  const out = new Uint8Array(size);
  let o = writeVarint(out, 0, header.length);
  out.set(header, o);
  o += header.length;
  for (const b of list) {
    o = writeVarint(out, o, b.cid.length + b.bytes.length);
    out.set(b.cid, o);
    o += b.cid.length;
    out.set(b.bytes, o);
    o += b.bytes.length;
  }
  return out;
};
