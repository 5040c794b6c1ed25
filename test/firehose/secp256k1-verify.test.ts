import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import secp256k1 from 'secp256k1';

import {
  packageBindingLoaded,
  packageSecp256k1Verify,
  secp256k1Library,
  systemSecp256k1Verify,
  verifySecp256k1Digest,
  type Secp256k1Verify,
} from '../../src/firehose/secp256k1-verify.ts';
import { toHighS } from './fixtures.ts';

const K256_N = Uint8Array.from(Buffer.from('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', 'hex'));
const privateKey = createHash('sha256').update('aqueduct test key').digest();
const otherKey = createHash('sha256').update('another key').digest();
const key = secp256k1.publicKeyCreate(privateKey, false);
const digest = createHash('sha256').update('a commit').digest();
const signature = secp256k1.signatureNormalize(secp256k1.ecdsaSign(digest, privateKey).signature);

const flipped = (bytes: Uint8Array, at: number): Uint8Array => {
  const copy = Uint8Array.from(bytes);
  copy[at]! ^= 1;
  return copy;
};
const withS = (s: Uint8Array): Uint8Array => {
  const copy = Uint8Array.from(signature);
  copy.set(s, 32);
  return copy;
};
const notOnCurve = Uint8Array.from(key);
notOnCurve[64]! ^= 1;

const CASES: Array<[string, Uint8Array, Uint8Array, Uint8Array, boolean]> = [
  ['a valid low-S signature', signature, digest, key, true],
  ['another digest', signature, flipped(digest, 0), key, false],
  ['a changed r', flipped(signature, 5), digest, key, false],
  ['a changed s', flipped(signature, 40), digest, key, false],
  ['the high-S twin', toHighS(signature, 'secp256k1'), digest, key, false],
  ['s = 0', withS(new Uint8Array(32)), digest, key, false],
  ['s = n (out of range)', withS(K256_N), digest, key, false],
  ['r and s all ones', new Uint8Array(64).fill(0xff), digest, key, false],
  ['another key', signature, digest, secp256k1.publicKeyCreate(otherKey, false), false],
  ['a key off the curve', signature, digest, notOnCurve, false],
  ['a short signature', signature.subarray(0, 63), digest, key, false],
  ['a short digest', signature, digest.subarray(0, 31), key, false],
  ['a short key', signature, digest, key.subarray(0, 64), false],
];

const system = systemSecp256k1Verify();
const LIBRARIES: Array<[string, Secp256k1Verify | null]> = [
  ['the npm package', packageSecp256k1Verify],
  ['the system library', system],
  ['the one in use', verifySecp256k1Digest],
];

describe.each(LIBRARIES)('secp256k1 verify through %s', (_name, verify) => {
  test.skipIf(verify === null).each(CASES)('%s', (_case, sig, message, publicKey, expected) => {
    expect(verify!(sig, message, publicKey)).toBe(expected);
  });
});

describe('the library in use', () => {
  // CI installs Debian's libsecp256k1-1 (.ci/run), so this is checked there; elsewhere only where
  // that file exists
  const installed = ['/usr/lib/x86_64-linux-gnu/libsecp256k1.so.1', '/usr/lib/aarch64-linux-gnu/libsecp256k1.so.1'].some(existsSync);
  test.skipIf(!installed)("is the system's libsecp256k1 when Debian's package is installed", () => {
    expect(system).not.toBeNull();
    expect(secp256k1Library).toBe('system');
  });
  // the package ships a prebuilt binding for linux-x64 (glibc and musl): there it must not be
  // reported as the JavaScript fallback, nor fall back to it
  test.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('the package runs its native binding on linux-x64', () => {
    expect(packageBindingLoaded).toBe(true);
    expect(secp256k1Library).not.toBe('javascript');
  });
});
