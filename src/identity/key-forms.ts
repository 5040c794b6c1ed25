// key-forms: every form an atproto signing key comes in, read into one canonical did:key.
//
// Owns the reading of public keys as DID documents, PLC operations and the directory's export
// write them. Promises: pure and cheap: a compressed point is checked on its curve later, by
// parseDidKey (signature.ts), but an uncompressed one is checked here, since compressing it drops
// its y, which must belong to its x; the answer names the curve and the compressed point, and its
// `did:key:z...` form is the same string for every form of one key; anything unusable throws a
// KeyFormError whose `reason` names the form seen and what was wrong with it, from a fixed
// vocabulary (safe as a metric label: nothing of the input is in it).
//
// The forms, as the reference software reads them (@atproto/crypto getDidKeyFromMultibase,
// parseMultikey):
//   `Multikey`: publicKeyMultibase = multibase(multicodec varint ++ point); secp256k1 is codec 0xe7,
//     P-256 0x1200.
//   `EcdsaSecp256k1VerificationKey2019`, `EcdsaSecp256r1VerificationKey2019` (older documents, the
//     reference PLC server's own): publicKeyMultibase = multibase(point), no codec.
//   `did:key:z...` (PLC operations, the export), also accepted in place of publicKeyMultibase.
// A point is SEC1, compressed (33 bytes, 02/03) or uncompressed (65 bytes, 04). A multibase string
// is base58btc (`z`, the norm), base16 (`f`, `F`), base32 (`b`, `B`), base64 (`m`) or base64url (`u`).
import { createPublicKey } from 'node:crypto';
import { fromBase16, fromBase32, fromBase58Btc, fromBase64, fromBase64Url, toBase58Btc } from '@atcute/multibase';
import secp256k1 from 'secp256k1';
import { ReasonError } from '../lib/reason-error.ts';

/** The forms a key is seen in, as metric labels. */
export type KeyForm =
  | 'multikey'
  | 'did-key'
  | 'legacy-secp256k1'
  | 'legacy-p256'
  | 'jwk'
  | 'ed25519'
  | 'other-type';

export type KeyProblem = 'missing-key' | 'bad-multibase' | 'unsupported-codec' | 'bad-point' | 'unsupported-type';

/** `form:problem`, e.g. `legacy-secp256k1:bad-point`. */
export type KeyFormReason = `${KeyForm}:${KeyProblem}`;

export class KeyFormError extends ReasonError<KeyFormReason> {
  override readonly name = 'KeyFormError';
}

export type Curve = 'secp256k1' | 'p256';

export interface CanonicalKey {
  readonly curve: Curve;
  /** compressed SEC1 point, 33 bytes */
  readonly point: Uint8Array;
  /** `did:key:z...` of the compressed point */
  readonly didKey: string;
}

const DID_KEY_PREFIX = 'did:key:';
const MAX_ENCODED_LENGTH = 256;
const CODEC_SECP256K1 = 0xe7;
const CODEC_P256 = 0x1200;
const CODEC_PREFIX: Record<Curve, Uint8Array> = {
  secp256k1: Uint8Array.of(0xe7, 0x01),
  p256: Uint8Array.of(0x80, 0x24),
};
const LEGACY_TYPES = new Map<string, { form: KeyForm; curve: Curve }>([
  ['EcdsaSecp256k1VerificationKey2019', { form: 'legacy-secp256k1', curve: 'secp256k1' }],
  ['EcdsaSecp256r1VerificationKey2019', { form: 'legacy-p256', curve: 'p256' }],
]);
const UNSUPPORTED_TYPES = new Map<string, KeyForm>([
  ['JsonWebKey2020', 'jwk'],
  ['Ed25519VerificationKey2018', 'ed25519'],
  ['Ed25519VerificationKey2020', 'ed25519'],
]);

const fail = (form: KeyForm, problem: KeyProblem, message: string, cause?: unknown): never => {
  throw new KeyFormError(`${form}:${problem}`, message, cause === undefined ? undefined : { cause });
};

const decodeMultibase = (text: string, form: KeyForm): Uint8Array => {
  if (text.length < 2 || text.length > MAX_ENCODED_LENGTH) fail(form, 'bad-multibase', 'not a multibase string of a key');
  const body = text.slice(1);
  try {
    switch (text[0]) {
      case 'z':
        return fromBase58Btc(body);
      case 'f':
      case 'F':
        return fromBase16(body.toLowerCase());
      case 'b':
      case 'B':
        return fromBase32(body.toLowerCase());
      case 'm':
        return fromBase64(body);
      case 'u':
        return fromBase64Url(body);
    }
  } catch (err) {
    fail(form, 'bad-multibase', 'the multibase text does not decode', err);
  }
  return fail(form, 'bad-multibase', 'unknown multibase prefix');
};

// SubjectPublicKeyInfo header for an id-ecPublicKey / prime256v1 key with a 65-byte uncompressed point
const P256_UNCOMPRESSED_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

const isOnCurve = (curve: Curve, uncompressed: Uint8Array): boolean => {
  if (curve === 'secp256k1') return secp256k1.publicKeyVerify(uncompressed);
  try {
    createPublicKey({ key: Buffer.concat([P256_UNCOMPRESSED_SPKI_PREFIX, uncompressed]), format: 'der', type: 'spki' });
    return true;
  } catch {
    return false;
  }
};

/** The compressed form of a SEC1 point (a compressed one is checked on its curve later). */
const compressedPoint = (curve: Curve, bytes: Uint8Array, form: KeyForm): Uint8Array => {
  if (bytes.length === 33 && (bytes[0] === 0x02 || bytes[0] === 0x03)) return bytes;
  if (bytes.length === 65 && bytes[0] === 0x04) {
    if (!isOnCurve(curve, bytes)) fail(form, 'bad-point', 'the uncompressed point is not on its curve');
    const compressed = new Uint8Array(33);
    compressed[0] = 0x02 | (bytes[64]! & 1);
    compressed.set(bytes.subarray(1, 33), 1);
    return compressed;
  }
  return fail(form, 'bad-point', 'expected a 33-byte compressed or 65-byte uncompressed point');
};

const canonical = (curve: Curve, point: Uint8Array): CanonicalKey => {
  const prefixed = new Uint8Array(2 + point.length);
  prefixed.set(CODEC_PREFIX[curve], 0);
  prefixed.set(point, 2);
  return { curve, point, didKey: `${DID_KEY_PREFIX}z${toBase58Btc(prefixed)}` };
};

/** A multicodec varint (at most 3 bytes here) and the bytes after it. */
const readCodec = (bytes: Uint8Array, form: KeyForm): { codec: number; rest: Uint8Array } => {
  let codec = 0;
  for (let i = 0; i < 3 && i < bytes.length; i++) {
    codec |= (bytes[i]! & 0x7f) << (7 * i);
    if ((bytes[i]! & 0x80) === 0) return { codec, rest: bytes.subarray(i + 1) };
  }
  return fail(form, 'unsupported-codec', 'no multicodec prefix');
};

const fromMultikeyBytes = (bytes: Uint8Array, form: KeyForm): CanonicalKey => {
  const { codec, rest } = readCodec(bytes, form);
  if (codec === CODEC_SECP256K1) return canonical('secp256k1', compressedPoint('secp256k1', rest, form));
  if (codec === CODEC_P256) return canonical('p256', compressedPoint('p256', rest, form));
  return fail(form, 'unsupported-codec', `multicodec 0x${codec.toString(16)} is not secp256k1 or P-256`);
};

/** A `did:key:z...` or a bare multikey `z...` (any of the multibase prefixes above). */
export const readDidKey = (text: string): CanonicalKey => {
  const form: KeyForm = text.startsWith(DID_KEY_PREFIX) ? 'did-key' : 'multikey';
  const multibase = form === 'did-key' ? text.slice(DID_KEY_PREFIX.length) : text;
  return fromMultikeyBytes(decodeMultibase(multibase, form), form);
};

/**
 * A verification method's key (its `type` and `publicKeyMultibase`, untrusted JSON values), in
 * any form above.
 */
export const readVerificationMethodKey = (type: unknown, publicKeyMultibase: unknown): CanonicalKey => {
  const legacy = typeof type === 'string' ? LEGACY_TYPES.get(type) : undefined;
  if (type !== 'Multikey' && legacy === undefined) {
    const form = (typeof type === 'string' ? UNSUPPORTED_TYPES.get(type) : undefined) ?? 'other-type';
    return fail(form, 'unsupported-type', 'not a verification method type atproto uses');
  }
  const form = legacy?.form ?? 'multikey';
  if (typeof publicKeyMultibase !== 'string') return fail(form, 'missing-key', 'no publicKeyMultibase string');
  if (publicKeyMultibase.startsWith(DID_KEY_PREFIX)) return readDidKey(publicKeyMultibase);
  const bytes = decodeMultibase(publicKeyMultibase, form);
  if (legacy === undefined) return fromMultikeyBytes(bytes, form);
  return canonical(legacy.curve, compressedPoint(legacy.curve, bytes, form));
};
