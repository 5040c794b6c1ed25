// fixtures: builds real firehose frames, CAR slices and signed commits for tests and benchmarks.
//
// Everything is made with the same libraries the decoder reads with (@atcute/cbor, real CIDs,
// real secp256k1 / P-256 keys), so a passing test means the wire format round-trips.
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { encode, toBytes, toCidLink } from '@atcute/cbor';
import { fromDigest, toString as cidToString, type Cid } from '@atcute/cid';
import { toBase58Btc } from '@atcute/multibase';
import secp256k1 from 'secp256k1';

import { sha256 } from '../../src/firehose/sha256.ts';

export const DID = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz';
export const REV = '3kdgkpd4rv22c';
export const TIME = '2024-05-01T12:00:00.000Z';

export interface Signer {
  didKey: string;
  multikey: string;
  sign(message: Uint8Array): Uint8Array;
}

const K256_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const toBig = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
const fromBig = (n: bigint): Uint8Array => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));

/** The same signature with S replaced by n - S (valid ECDSA, rejected by atproto). */
export const toHighS = (sig: Uint8Array, curve: 'secp256k1' | 'p256'): Uint8Array => {
  const n = curve === 'secp256k1' ? K256_N : P256_N;
  const s = toBig(sig.subarray(32));
  const out = new Uint8Array(64);
  out.set(sig.subarray(0, 32), 0);
  out.set(fromBig(s > n >> 1n ? s : n - s), 32);
  return out;
};

const toLowS = (sig: Uint8Array, n: bigint): Uint8Array => {
  const s = toBig(sig.subarray(32));
  if (s <= n >> 1n) return sig;
  const out = new Uint8Array(sig);
  out.set(fromBig(n - s), 32);
  return out;
};

const multikeyOf = (prefix: number[], compressed: Uint8Array): string => {
  const bytes = new Uint8Array(2 + compressed.length);
  bytes.set(prefix, 0);
  bytes.set(compressed, 2);
  return `z${toBase58Btc(bytes)}`;
};

export const k256Signer = (seed = 1): Signer => {
  const privateKey = new Uint8Array(32).fill(seed);
  const multikey = multikeyOf([0xe7, 0x01], secp256k1.publicKeyCreate(privateKey, true));
  return {
    multikey,
    didKey: `did:key:${multikey}`,
    sign: (message) => secp256k1.ecdsaSign(sha256(message), privateKey).signature,
  };
};

export const p256Signer = (): Signer => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x ?? '', 'base64url');
  const y = Buffer.from(jwk.y ?? '', 'base64url');
  const compressed = new Uint8Array(33);
  compressed[0] = (y[31]! & 1) === 1 ? 0x03 : 0x02;
  compressed.set(x, 1);
  const multikey = multikeyOf([0x80, 0x24], compressed);
  return {
    multikey,
    didKey: `did:key:${multikey}`,
    sign: (message) =>
      toLowS(new Uint8Array(nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' })), P256_N),
  };
};

export const cidOf = (bytes: Uint8Array): Cid => fromDigest(0x71, sha256(bytes));

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
};

export interface Block {
  cid: Cid;
  bytes: Uint8Array;
}

/** A CAR v1 file holding `blocks` in order. */
export const writeCar = (roots: Cid[], blocks: Block[]): Uint8Array => {
  const parts: number[] = [];
  const header = encode({ version: 1, roots: roots.map(toCidLink) });
  parts.push(...varint(header.length), ...header);
  for (const block of blocks) {
    parts.push(...varint(block.cid.bytes.length + block.bytes.length), ...block.cid.bytes, ...block.bytes);
  }
  return Uint8Array.from(parts);
};

export const blockOf = (value: unknown): Block => {
  const bytes = encode(value);
  return { cid: cidOf(bytes), bytes };
};

export const frameOf = (header: unknown, body: unknown): Uint8Array => {
  const h = encode(header);
  const b = encode(body);
  const out = new Uint8Array(h.length + b.length);
  out.set(h, 0);
  out.set(b, h.length);
  return out;
};

export interface RecordInput {
  collection: string;
  rkey: string;
  record: unknown;
}

export interface BuiltCommit {
  frame: Uint8Array;
  body: Record<string, unknown>;
  commitBlock: Block;
  mstBlock: Block;
  recordBlocks: Block[];
  unsignedBytes: Uint8Array;
  sig: Uint8Array;
}

export interface CommitInputOptions {
  did?: string;
  rev?: string;
  seq?: number;
  records?: RecordInput[];
  signer?: Signer;
  /** edit the commit object before it is signed */
  editUnsigned?: (commit: Record<string, unknown>) => void;
  /** choose which blocks go into the CAR (default all) */
  carBlocks?: (built: { commitBlock: Block; mstBlock: Block; recordBlocks: Block[] }) => Block[];
}

export const post = (text: string): Record<string, unknown> => ({
  $type: 'app.bsky.feed.post',
  text,
  createdAt: TIME,
});

/** A real signed commit: records, a one-node MST, the commit block, the CAR and the frame. */
export const buildCommit = (options: CommitInputOptions = {}): BuiltCommit => {
  const did = options.did ?? DID;
  const rev = options.rev ?? REV;
  const signer = options.signer ?? k256Signer();
  const records = options.records ?? [{ collection: 'app.bsky.feed.post', rkey: REV, record: post('hello') }];

  const recordBlocks = records.map((r) => blockOf(r.record));
  const entries = records
    .map((r, i) => ({ key: `${r.collection}/${r.rkey}`, cid: recordBlocks[i]!.cid }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // a one-level MST node; keys are stored whole (prefix length 0), which is valid if not minimal
  const mstBlock = blockOf({
    l: null,
    e: entries.map((e) => ({ p: 0, k: toBytes(new TextEncoder().encode(e.key)), v: toCidLink(e.cid), t: null })),
  });

  const unsigned: Record<string, unknown> = { did, version: 3, data: toCidLink(mstBlock.cid), rev, prev: null };
  options.editUnsigned?.(unsigned);
  const unsignedBytes = encode(unsigned);
  const sig = signer.sign(unsignedBytes);
  const commitBlock = blockOf({ ...unsigned, sig: toBytes(sig) });

  const carBlocks = options.carBlocks?.({ commitBlock, mstBlock, recordBlocks }) ?? [commitBlock, mstBlock, ...recordBlocks];
  const car = writeCar([commitBlock.cid], carBlocks);
  const body: Record<string, unknown> = {
    seq: options.seq ?? 42,
    rebase: false,
    tooBig: false,
    repo: did,
    commit: toCidLink(commitBlock.cid),
    rev,
    since: null,
    blocks: toBytes(car),
    ops: records.map((r, i) => ({
      action: 'create',
      path: `${r.collection}/${r.rkey}`,
      cid: toCidLink(recordBlocks[i]!.cid),
    })),
    blobs: [],
    time: TIME,
  };
  return {
    frame: frameOf({ op: 1, t: '#commit' }, body),
    body,
    commitBlock,
    mstBlock,
    recordBlocks,
    unsignedBytes,
    sig,
  };
};

export const cidString = (cid: Cid): string => cidToString(cid);
