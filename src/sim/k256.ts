/**
 * secp256k1 (k256) signing for simulated accounts, backed by the native `secp256k1` bindings.
 *
 * Owns: the one place the untyped native module is loaded and narrowed.
 * Promises: signatures are compact 64-byte r||s in low-S form over sha256 of the message, which is
 * what atproto commits require; public keys are 33-byte compressed points, or 65-byte uncompressed
 * ones where asked (keys.ts writes them in every form DID documents use).
 */

interface NativeSecp256k1 {
  privateKeyVerify(privateKey: Uint8Array): boolean;
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  signatureNormalize(signature: Uint8Array): Uint8Array;
}

const isNative = (value: unknown): value is NativeSecp256k1 => {
  if (typeof value !== 'object' || value === null) return false;
  for (const name of ['privateKeyVerify', 'publicKeyCreate', 'ecdsaSign', 'ecdsaVerify', 'signatureNormalize']) {
    if (typeof Reflect.get(value, name) !== 'function') return false;
  }
  return true;
};

const loaded: unknown = require('secp256k1');
if (!isNative(loaded)) throw new Error('secp256k1: native module has an unexpected shape');
const native: NativeSecp256k1 = loaded;

/** One-shot sha256 into a fresh 32-byte array (Bun's hasher: no Buffer, no pooled slab). */
export const sha256 = (data: Uint8Array): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(32);
  Bun.CryptoHasher.hash('sha256', data, out);
  return out;
};

/** A valid private key derived from `material` (re-hashed until it falls inside the curve order). */
export const privateKeyFrom = (material: Uint8Array): Uint8Array<ArrayBuffer> => {
  let key = sha256(material);
  while (!native.privateKeyVerify(key)) key = sha256(key);
  return key;
};

export const publicKeyOf = (privateKey: Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(native.publicKeyCreate(privateKey, true));

export const uncompressedPublicKeyOf = (privateKey: Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(native.publicKeyCreate(privateKey, false));

/** Signs sha256(message); returns compact low-S r||s. */
export const sign = (message: Uint8Array, privateKey: Uint8Array): Uint8Array<ArrayBuffer> => {
  const { signature } = native.ecdsaSign(sha256(message), privateKey);
  // libsecp256k1 already emits low-S; normalising keeps the promise if that ever changes
  return new Uint8Array(native.signatureNormalize(signature));
};

/** Verifies a compact signature over sha256(message). High-S signatures are rejected. */
export const verify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean => {
  if (signature.length !== 64) return false;
  try {
    return native.ecdsaVerify(signature, sha256(message), publicKey);
  } catch {
    return false;
  }
};
