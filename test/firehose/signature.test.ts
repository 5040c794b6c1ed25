import { describe, expect, test } from 'bun:test';
import { toBase58Btc } from '@atcute/multibase';

import { isLowS, KeyError, parseDidKey, verifyCommitSignature, type KeyErrorReason, type Secp256k1Key } from '../../src/firehose/signature.ts';
import { k256Signer, p256Signer, toHighS } from './fixtures.ts';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

// bluesky-social/atproto interop-test-files/crypto/signature-fixtures.json
const INTEROP = [
  {
    comment: 'valid P-256, low-S',
    publicKeyDid: 'did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo',
    signatureBase64: '2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoJWExHptCfduPleDbG3rko3YZnn9Lw0IjpixVmexJDegg',
    valid: true,
  },
  {
    comment: 'valid K-256, low-S',
    publicKeyDid: 'did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc',
    signatureBase64: '5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdUn/FEznOndsz/qgiYb89zwxYCbB71f7yQK5Lr7NasfoA',
    valid: true,
  },
  {
    comment: 'P-256 high-S',
    publicKeyDid: 'did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo',
    signatureBase64: '2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoKp7O4VS9giSAah8k5IUbXIW00SuOrjfEqQ9HEkN9JGzw',
    valid: false,
  },
  {
    comment: 'K-256 high-S',
    publicKeyDid: 'did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc',
    signatureBase64: '5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdXYA67MYxYiTMAVfdnkDCMN9S5B3vHosRe07aORmoshoQ',
    valid: false,
  },
];
const INTEROP_MESSAGE = b64('oWVoZWxsb2V3b3JsZA');

describe('verifyCommitSignature: atproto interop fixtures', () => {
  test.each(INTEROP)('$comment', ({ publicKeyDid, signatureBase64, valid }) => {
    expect(verifyCommitSignature(INTEROP_MESSAGE, b64(signatureBase64), parseDidKey(publicKeyDid))).toBe(valid);
  });
});

describe.each([
  ['secp256k1', k256Signer(5)],
  ['p256', p256Signer()],
] as const)('verifyCommitSignature: %s', (curve, signer) => {
  const message = new TextEncoder().encode('the unsigned commit');
  const sig = signer.sign(message);
  const key = parseDidKey(signer.didKey);

  test('parses the did:key and the bare multikey alike', () => {
    expect(key.type).toBe(curve);
    expect(parseDidKey(signer.multikey).didKey).toBe(signer.didKey);
    expect(key.publicKey.length).toBe(33);
  });
  test('accepts a valid low-S signature', () => {
    expect(isLowS(sig, curve)).toBe(true);
    expect(verifyCommitSignature(message, sig, key)).toBe(true);
  });
  test('rejects the high-S twin of a valid signature', () => {
    const high = toHighS(sig, curve);
    expect(isLowS(high, curve)).toBe(false);
    expect(verifyCommitSignature(message, high, key)).toBe(false);
  });
  test('rejects the wrong key', () => {
    const other = parseDidKey(curve === 'secp256k1' ? k256Signer(6).didKey : p256Signer().didKey);
    expect(verifyCommitSignature(message, sig, other)).toBe(false);
  });
  test('rejects a changed message', () => {
    expect(verifyCommitSignature(new TextEncoder().encode('another commit'), sig, key)).toBe(false);
  });
  test.each([
    ['63 bytes', (s: Uint8Array) => s.subarray(0, 63)],
    ['65 bytes', (s: Uint8Array) => Uint8Array.from([...s, 0])],
    ['empty', () => new Uint8Array(0)],
    ['all zero', () => new Uint8Array(64)],
    ['r = 0', (s: Uint8Array) => Uint8Array.from([...new Uint8Array(32), ...s.subarray(32)])],
    ['r = 0xff..ff', (s: Uint8Array) => Uint8Array.from([...new Uint8Array(32).fill(0xff), ...s.subarray(32)])],
    ['a flipped bit', (s: Uint8Array) => s.map((b, i) => (i === 10 ? b ^ 1 : b))],
  ])('rejects a malformed signature: %s', (_name, mangle) => {
    expect(verifyCommitSignature(message, mangle(sig), key)).toBe(false);
  });
});

const K256_P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
/** (x, p - y + 1): x with a y that is not one of its two */
const otherY = (uncompressed: Uint8Array): Uint8Array => {
  const y = BigInt(`0x${Buffer.from(uncompressed.subarray(33)).toString('hex')}`);
  return Uint8Array.from([...uncompressed.subarray(0, 33), ...Buffer.from((K256_P - y + 1n).toString(16).padStart(64, '0'), 'hex')]);
};

describe('parseDidKey: malformed keys', () => {
  const multikey = (bytes: number[]): string => `z${toBase58Btc(Uint8Array.from(bytes))}`;
  const k256 = parseDidKey(k256Signer(7).didKey);
  const cases: [string, string, KeyErrorReason][] = [
    ['empty', '', 'multikey:bad-multibase'],
    ['did:key without a key', 'did:key:', 'did-key:bad-multibase'],
    ['an unknown multibase prefix', 'did:key:xAAAA', 'did-key:bad-multibase'],
    ['invalid base58 characters', 'did:key:z0OIl', 'did-key:bad-multibase'],
    ['too short', multikey([0xe7]), 'multikey:unsupported-codec'],
    ['ed25519 multicodec', multikey([0xed, 0x01, ...new Uint8Array(32)]), 'multikey:unsupported-codec'],
    ['uncompressed secp256k1 point off the curve', multikey([0xe7, 0x01, 0x04, ...new Uint8Array(64).fill(1)]), 'multikey:bad-point'],
    ['uncompressed secp256k1 point with a y not its x\'s', multikey([0xe7, 0x01, ...otherY((k256 as Secp256k1Key).uncompressed)]), 'multikey:bad-point'],
    ['truncated secp256k1 point', multikey([0xe7, 0x01, ...k256.publicKey.subarray(0, 32)]), 'multikey:bad-point'],
    ['secp256k1 x not on the curve', multikey([0xe7, 0x01, 0x02, ...new Uint8Array(32).fill(0xff)]), 'not-on-curve'],
    ['P-256 x not on the curve', multikey([0x80, 0x24, 0x02, ...new Uint8Array(32).fill(0xff)]), 'not-on-curve'],
    ['P-256 prefix with a bad parity byte', multikey([0x80, 0x24, 0x05, ...k256.publicKey.subarray(1)]), 'multikey:bad-point'],
  ];
  test.each(cases)('%s -> %s', (_name, input, reason) => {
    let caught: unknown;
    try {
      parseDidKey(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeyError);
    expect((caught as KeyError).reason).toBe(reason);
  });
});
