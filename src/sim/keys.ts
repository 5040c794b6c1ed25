/**
 * Simulated accounts' signing keys, in every form real DID documents carry them.
 *
 * Owns: the key of each account (curve, private key, signing) and how its DID document writes it.
 * Promises: everything is derived from the material given (the same seed and index give the same
 * key); signatures are compact 64-byte r||s in low-S form over sha256 of the message, as atproto
 * commits require, for both curves; `multikey` and `didKey` are the canonical compressed forms
 * (what PLC operations and the directory's export carry); `method` is the `#atproto` verification
 * method in the account's own form:
 *   multikey             secp256k1, `Multikey`, compressed (today's PLC directory and PDSes)
 *   legacy-uncompressed  secp256k1, `EcdsaSecp256k1VerificationKey2019`, the raw 65-byte point
 *                        (the reference PLC server of @atproto/dev-env)
 *   legacy-compressed    secp256k1, `EcdsaSecp256k1VerificationKey2019`, the raw 33-byte point
 *                        (the interop test vectors, older documents)
 *   p256                 P-256, `Multikey`, compressed
 *   p256-legacy          P-256, `EcdsaSecp256r1VerificationKey2019`, the raw 65-byte point
 * `pickKeyForm` spreads the forms over accounts by configured shares, the rest `multikey`.
 */
import { createECDH, createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { toBase58Btc } from '@atcute/multibase';
import { privateKeyFrom, publicKeyOf, sha256, sign as k256Sign, uncompressedPublicKeyOf } from './k256.ts';

export const SIM_KEY_FORMS = ['multikey', 'legacy-uncompressed', 'legacy-compressed', 'p256', 'p256-legacy'] as const;
export type SimKeyForm = (typeof SIM_KEY_FORMS)[number];
/** Share (0..1) of accounts per form; what the others leave is `multikey`. */
export type KeyFormShares = Partial<Record<SimKeyForm, number>>;

export interface SimKey {
  readonly form: SimKeyForm;
  readonly curve: 'secp256k1' | 'p256';
  /** the JWT `alg` of this curve */
  readonly jwtAlg: 'ES256K' | 'ES256';
  /** `z...`: multicodec and compressed point, base58btc */
  readonly multikey: string;
  readonly didKey: string;
  /** the `#atproto` verification method's type and key, in this form */
  readonly method: { readonly type: string; readonly publicKeyMultibase: string };
  sign(message: Uint8Array): Uint8Array;
}

const CODEC = { secp256k1: [0xe7, 0x01], p256: [0x80, 0x24] } as const;
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const z = (bytes: Uint8Array): string => `z${toBase58Btc(bytes)}`;
const withCodec = (curve: SimKey['curve'], point: Uint8Array): Uint8Array => Uint8Array.from([...CODEC[curve], ...point]);
const toBig = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
const fromBig = (n: bigint): Uint8Array => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));

/** The form of account `index`: a hash of (seed, index) against the shares' running sum. */
export function pickKeyForm(seed: string, index: number, shares: KeyFormShares): SimKeyForm {
  const h = sha256(new TextEncoder().encode(`aqueduct-sim/key-form/${seed}/${index}`));
  const u = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
  let point = u / 2 ** 32;
  for (const form of SIM_KEY_FORMS) {
    if (form === 'multikey') continue;
    point -= shares[form] ?? 0;
    if (point < 0) return form;
  }
  return 'multikey';
}

export function simKey(form: SimKeyForm, material: Uint8Array): SimKey {
  return form === 'p256' || form === 'p256-legacy' ? p256Key(form, material) : k256Key(form, material);
}

function k256Key(form: SimKeyForm, material: Uint8Array): SimKey {
  const privateKey = privateKeyFrom(material);
  const compressed = publicKeyOf(privateKey);
  const multikey = z(withCodec('secp256k1', compressed));
  const raw = form === 'legacy-uncompressed' ? uncompressedPublicKeyOf(privateKey) : compressed;
  return {
    form,
    curve: 'secp256k1',
    jwtAlg: 'ES256K',
    multikey,
    didKey: `did:key:${multikey}`,
    method: form === 'multikey' ? { type: 'Multikey', publicKeyMultibase: multikey } : { type: 'EcdsaSecp256k1VerificationKey2019', publicKeyMultibase: z(raw) },
    sign: (message) => k256Sign(message, privateKey),
  };
}

function p256Key(form: SimKeyForm, material: Uint8Array): SimKey {
  let secret = sha256(material);
  while (toBig(secret) === 0n || toBig(secret) >= P256_N) secret = sha256(secret);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(secret);
  const uncompressed = new Uint8Array(ecdh.getPublicKey());
  const compressed = new Uint8Array(ecdh.getPublicKey(null, 'compressed'));
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
  const privateKey: KeyObject = createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64(secret), x: b64(uncompressed.subarray(1, 33)), y: b64(uncompressed.subarray(33)) },
    format: 'jwk',
  });
  const multikey = z(withCodec('p256', compressed));
  return {
    form,
    curve: 'p256',
    jwtAlg: 'ES256',
    multikey,
    didKey: `did:key:${multikey}`,
    method: form === 'p256' ? { type: 'Multikey', publicKeyMultibase: multikey } : { type: 'EcdsaSecp256r1VerificationKey2019', publicKeyMultibase: z(uncompressed) },
    sign: (message) => {
      const sig = new Uint8Array(nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
      const s = toBig(sig.subarray(32));
      if (s > P256_N >> 1n) sig.set(fromBig(P256_N - s), 32);
      return sig;
    },
  };
}
