// signature: atproto public keys (did:key / multikey) and commit signature verification.
//
// Owns key parsing and ECDSA verification for the two atproto curves. Promises: synchronous,
// no network; a key is read by key-forms.ts (compressed or uncompressed points, any multibase) and
// checked on its curve here; parsing does the expensive work once (secp256k1 keys are kept uncompressed so a
// verify skips point decompression; P-256 keys become a KeyObject); a verify never throws, it
// answers true only for a 64-byte compact (r, s) signature with low S over SHA-256 of the message.
//   secp256k1 (multicodec 0xe7): libsecp256k1, the system's or the npm package's (secp256k1-verify.ts), ~50-64 µs.
//   P-256 (multicodec 0x1200): `node:crypto` verify, ~41 µs synchronous; `crypto.subtle.verify`
//   costs ~68 µs and is asynchronous, @atcute/crypto wraps the same subtle call.
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import secp256k1 from 'secp256k1';

import { verifySecp256k1Digest } from './secp256k1-verify.ts';
import { sha256 } from './sha256.ts';
import { ReasonError } from '../lib/reason-error.ts';
import { KeyFormError, readDidKey, type KeyFormReason } from '../identity/key-forms.ts';

/** How the key text was unreadable (key-forms.ts), or 'not-on-curve'. */
export type KeyErrorReason = KeyFormReason | 'not-on-curve';

export class KeyError extends ReasonError<KeyErrorReason> {
  override readonly name = 'KeyError';
}

interface ParsedKeyBase {
  /** canonical `did:key:z...` form, usable for equality */
  readonly didKey: string;
  /** compressed SEC1 point, 33 bytes */
  readonly publicKey: Uint8Array;
}

export interface Secp256k1Key extends ParsedKeyBase {
  readonly type: 'secp256k1';
  /** uncompressed SEC1 point, 65 bytes */
  readonly uncompressed: Uint8Array;
}

export interface P256Key extends ParsedKeyBase {
  readonly type: 'p256';
  readonly keyObject: KeyObject;
}

export type ParsedKey = Secp256k1Key | P256Key;

// SubjectPublicKeyInfo header for an id-ecPublicKey / prime256v1 key with a 33-byte compressed point
const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
  0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
]);

const halfOrder = (n: bigint): Uint8Array => {
  const hex = (n >> 1n).toString(16).padStart(64, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
};

const K256_HALF_N = halfOrder(0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n);
const P256_HALF_N = halfOrder(0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n);

/** Whether the S half of a 64-byte compact signature is at most n/2 (atproto rejects high S). */
export const isLowS = (sig: Uint8Array, type: ParsedKey['type']): boolean => {
  const half = type === 'secp256k1' ? K256_HALF_N : P256_HALF_N;
  for (let i = 0; i < 32; i++) {
    const s = sig[32 + i]!;
    const h = half[i]!;
    if (s !== h) return s < h;
  }
  return true;
};

const parseK256 = (didKey: string, publicKey: Uint8Array): Secp256k1Key => {
  let uncompressed: Uint8Array;
  try {
    uncompressed = secp256k1.publicKeyConvert(publicKey, false);
  } catch (err) {
    throw new KeyError('not-on-curve', 'not a secp256k1 curve point', { cause: err });
  }
  return { type: 'secp256k1', didKey, publicKey, uncompressed };
};

/** The KeyObject of a compressed P-256 point; throws a KeyError off the curve. */
export const p256KeyObject = (publicKey: Uint8Array): KeyObject => {
  const spki = new Uint8Array(P256_SPKI_PREFIX.length + publicKey.length);
  spki.set(P256_SPKI_PREFIX, 0);
  spki.set(publicKey, P256_SPKI_PREFIX.length);
  try {
    return createPublicKey({ key: Buffer.from(spki.buffer), format: 'der', type: 'spki' });
  } catch (err) {
    throw new KeyError('not-on-curve', 'not a P-256 curve point', { cause: err });
  }
};

const parseP256 = (didKey: string, publicKey: Uint8Array): P256Key => ({ type: 'p256', didKey, publicKey, keyObject: p256KeyObject(publicKey) });

/** Parses a `did:key:z...` or a bare multikey `z...` (secp256k1 or P-256, in any form key-forms.ts reads). */
export const parseDidKey = (multikeyOrDidKey: string): ParsedKey => {
  let key;
  try {
    key = readDidKey(multikeyOrDidKey);
  } catch (err) {
    if (!(err instanceof KeyFormError)) throw err;
    throw new KeyError(err.reason, err.message, { cause: err });
  }
  return key.curve === 'secp256k1' ? parseK256(key.didKey, key.point) : parseP256(key.didKey, key.point);
};

/** Verifies a commit signature. Never throws: malformed signatures are simply invalid. */
export const verifyCommitSignature = (
  unsignedBytes: Uint8Array,
  sig: Uint8Array,
  key: ParsedKey,
): boolean => {
  if (key.type === 'secp256k1') return verifySecp256k1Signature(unsignedBytes, sig, key.uncompressed);
  return verifyP256Signature(unsignedBytes, sig, key.keyObject);
};

/** `verifyCommitSignature` for a P-256 key given as its KeyObject (the verification worker keeps them). */
export const verifyP256Signature = (unsignedBytes: Uint8Array, sig: Uint8Array, keyObject: KeyObject): boolean => {
  if (sig.length !== 64 || !isLowS(sig, 'p256')) return false;
  try {
    return nodeVerify('sha256', unsignedBytes, { key: keyObject, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    // r or s out of range, or zero
    return false;
  }
};

/** `verifyCommitSignature` for a secp256k1 key given as its uncompressed point (what the verification worker is sent). */
export const verifySecp256k1Signature = (unsignedBytes: Uint8Array, sig: Uint8Array, uncompressed: Uint8Array): boolean => {
  if (sig.length !== 64 || !isLowS(sig, 'secp256k1')) return false;
  return verifySecp256k1Digest(sig, sha256(unsignedBytes), uncompressed);
};
