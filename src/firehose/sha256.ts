// sha256: the one place that hashes bytes synchronously on the hot path.
//
// Owns the choice of hashing backend and promises a synchronous, allocation-light SHA-256
// (`sha256Equals` allocates nothing with Bun's hasher: it hashes into one reused digest).
// Bun's native one-shot hasher is used when present (about 0.2 µs for a 300-byte block);
// `node:crypto` is the portable fallback (about 0.4 µs). `crypto.subtle.digest` is not used:
// it is asynchronous and costs about 27 µs per call under Bun because of the promise round trip.
import { createHash } from 'node:crypto';

type Sha256 = (data: Uint8Array, into?: Uint8Array) => Uint8Array;

const bunSha256 = (): Sha256 | null => {
  if (typeof Bun === 'undefined' || typeof Bun.SHA256?.hash !== 'function') return null;
  return (data, into = new Uint8Array(32)) => {
    Bun.SHA256.hash(data, into);
    return into;
  };
};

const nodeSha256: Sha256 = (data) => {
  const digest = createHash('sha256').update(data).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
};

const hash: Sha256 = bunSha256() ?? nodeSha256;

/** SHA-256 digest of `data` (a new 32-byte array). */
export const sha256 = (data: Uint8Array): Uint8Array => hash(data);

// only ever read between a hash and the comparison after it (single-threaded, synchronous)
const scratchDigest = new Uint8Array(32);

/** Whether SHA-256 of `data` equals the 32 bytes of `expected` that start at `offset`. */
export const sha256Equals = (data: Uint8Array, expected: Uint8Array, offset = 0): boolean => {
  if (offset < 0 || offset + 32 > expected.length) return false;
  const actual = hash(data, scratchDigest);
  for (let i = 0; i < 32; i++) {
    if (actual[i] !== expected[offset + i]) return false;
  }
  return true;
};
