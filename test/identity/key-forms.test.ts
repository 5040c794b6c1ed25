import { describe, expect, test } from 'bun:test';
import { createECDH, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { fromBase58Btc, toBase16, toBase32, toBase58Btc, toBase64, toBase64Url } from '@atcute/multibase';
import fc from 'fast-check';
import secp256k1 from 'secp256k1';

import { KeyFormError, readDidKey, readVerificationMethodKey, type Curve, type KeyFormReason } from '../../src/identity/key-forms.ts';
import { parseDidKey, verifyCommitSignature } from '../../src/firehose/signature.ts';
import { sha256 } from '../../src/firehose/sha256.ts';
import { interopJson } from '../support/interop.ts';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const CODEC: Record<Curve, number[]> = { secp256k1: [0xe7, 0x01], p256: [0x80, 0x24] };
const LEGACY_TYPE: Record<Curve, string> = { secp256k1: 'EcdsaSecp256k1VerificationKey2019', p256: 'EcdsaSecp256r1VerificationKey2019' };
const z = (bytes: ArrayLike<number>): string => `z${toBase58Btc(Uint8Array.from(bytes))}`;

interface SignatureFixture {
  comment: string;
  messageBase64: string;
  algorithm: 'ES256' | 'ES256K';
  didDocSuite: string;
  publicKeyDid: string;
  publicKeyMultibase: string;
  signatureBase64: string;
  validSignature: boolean;
}

describe('the interop signature fixtures, in both key forms they give', () => {
  const fixtures = interopJson<SignatureFixture[]>('crypto/signature-fixtures.json');
  test('there are fixtures for both curves', () => {
    expect(new Set(fixtures.map((f) => f.algorithm))).toEqual(new Set(['ES256', 'ES256K']));
  });
  test.each(fixtures)('$comment', (fixture) => {
    const fromDidKey = parseDidKey(fixture.publicKeyDid);
    const fromDocument = readVerificationMethodKey(fixture.didDocSuite, fixture.publicKeyMultibase);
    expect(fromDocument.didKey).toBe(fromDidKey.didKey);
    const message = b64(fixture.messageBase64);
    const sig = b64(fixture.signatureBase64);
    expect(verifyCommitSignature(message, sig, fromDidKey)).toBe(fixture.validSignature);
    expect(verifyCommitSignature(message, sig, parseDidKey(fromDocument.didKey))).toBe(fixture.validSignature);
  });
});

describe('the interop did:key fixtures: the key of each private key', () => {
  const publicOf: Record<string, (secret: Uint8Array) => Uint8Array> = {
    'crypto/w3c_didkey_K256.json': (secret) => secp256k1.publicKeyCreate(secret, true),
    'crypto/w3c_didkey_P256.json': (secret) => {
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(secret);
      return new Uint8Array(ecdh.getPublicKey(null, 'compressed'));
    },
  };
  for (const [file, derive] of Object.entries(publicOf)) {
    const fixtures = interopJson<{ privateKeyBytesHex?: string; privateKeyBytesBase58?: string; publicDidKey: string }[]>(file);
    test.each(fixtures)(`${file}: $publicDidKey`, ({ privateKeyBytesHex, privateKeyBytesBase58, publicDidKey }) => {
      const secret = privateKeyBytesHex ? Uint8Array.from(Buffer.from(privateKeyBytesHex, 'hex')) : fromBase58Btc(privateKeyBytesBase58!);
      const key = readDidKey(publicDidKey);
      expect(Buffer.from(key.point).toString('hex')).toBe(Buffer.from(derive(secret)).toString('hex'));
      expect(key.didKey).toBe(publicDidKey);
      expect(parseDidKey(publicDidKey).didKey).toBe(publicDidKey);
    });
  }
});

describe('the reference software\'s own output', () => {
  // A DID document as @atproto/dev-env 0.6.7's PLC server served it (GET {plc}/{did}), byte for
  // byte: the older form, the 65-byte uncompressed point in base58btc with no multicodec. Its
  // /data endpoint gave the same key as the did:key below.
  const DOCUMENT = JSON.parse(
    '{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/suites/secp256k1-2019/v1"],"id":"did:plc:vva2q4bjgve2etcz3brq3fcy","alsoKnownAs":["at://smoke14806.test"],"verificationMethod":[{"id":"#atproto","type":"EcdsaSecp256k1VerificationKey2019","controller":"did:plc:vva2q4bjgve2etcz3brq3fcy","publicKeyMultibase":"zNV26nvywCJj8axq9bsEpfwWnbG6SRqen4nx397eaqB4bheYJQaNYqqxVpU1UNS4pBSXwM4Lgs5zLrAaaHqyc8ZzB"}],"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"http://localhost:46541"}]}',
  ) as { verificationMethod: { type: string; publicKeyMultibase: string }[] };
  test('its EcdsaSecp256k1VerificationKey2019 key with an uncompressed point', () => {
    const [method] = DOCUMENT.verificationMethod;
    const key = readVerificationMethodKey(method!.type, method!.publicKeyMultibase);
    expect(key.didKey).toBe('did:key:zQ3shQozkUpsjrMrtDzKL2ww8agdpPNML7gHqtKSpvR6r5jtJ');
    expect(parseDidKey(key.didKey).type).toBe('secp256k1');
  });
});

/** Every form a DID document or PLC operation can give one key in. */
function formsOf(curve: Curve, compressed: Uint8Array, uncompressed: Uint8Array): [string, unknown, unknown][] {
  const forms: [string, unknown, unknown][] = [];
  for (const [pointName, point] of [['compressed', compressed], ['uncompressed', uncompressed]] as const) {
    const withCodec = Uint8Array.from([...CODEC[curve], ...point]);
    forms.push([`Multikey ${pointName}`, 'Multikey', z(withCodec)]);
    forms.push([`${LEGACY_TYPE[curve]} ${pointName}`, LEGACY_TYPE[curve], z(point)]);
    forms.push([`${LEGACY_TYPE[curve]} ${pointName}, base16`, LEGACY_TYPE[curve], `f${toBase16(point)}`]);
    forms.push([`${LEGACY_TYPE[curve]} ${pointName}, base32`, LEGACY_TYPE[curve], `b${toBase32(point)}`]);
    forms.push([`${LEGACY_TYPE[curve]} ${pointName}, base64`, LEGACY_TYPE[curve], `m${toBase64(point)}`]);
    forms.push([`${LEGACY_TYPE[curve]} ${pointName}, base64url`, LEGACY_TYPE[curve], `u${toBase64Url(point)}`]);
    forms.push([`did:key ${pointName} as publicKeyMultibase`, 'Multikey', `did:key:${z(withCodec)}`]);
  }
  return forms;
}

describe('property: every form of one key reads as the same key and verifies the same signatures', () => {
  const secret = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((bytes) => secp256k1.privateKeyVerify(bytes));
  const message = fc.uint8Array({ minLength: 0, maxLength: 200 });

  test('secp256k1', () => {
    fc.assert(
      fc.property(secret, message, (privateKey, data) => {
        const compressed = secp256k1.publicKeyCreate(privateKey, true);
        const uncompressed = secp256k1.publicKeyCreate(privateKey, false);
        const sig = secp256k1.ecdsaSign(sha256(data), privateKey).signature;
        const expected = `did:key:${z([...CODEC.secp256k1, ...compressed])}`;
        for (const [name, type, multibase] of formsOf('secp256k1', compressed, uncompressed)) {
          const key = readVerificationMethodKey(type, multibase);
          expect([name, key.didKey]).toEqual([name, expected]);
          const parsed = parseDidKey(key.didKey) as { uncompressed: Uint8Array };
          // compress, then uncompress on the curve: the same point
          expect(Buffer.from(parsed.uncompressed).equals(Buffer.from(uncompressed))).toBe(true);
          expect(verifyCommitSignature(data, sig, parseDidKey(key.didKey))).toBe(true);
        }
      }),
      { numRuns: 50 },
    );
  });

  test('P-256', () => {
    fc.assert(
      fc.property(message, (data) => {
        const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        const jwk = publicKey.export({ format: 'jwk' });
        const x = Buffer.from(jwk.x!, 'base64url');
        const y = Buffer.from(jwk.y!, 'base64url');
        const uncompressed = Uint8Array.from([0x04, ...x, ...y]);
        const compressed = Uint8Array.from([0x02 | (y[31]! & 1), ...x]);
        const sig = new Uint8Array(nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
        const lowS = isHighS(sig) ? null : sig; // atproto accepts low-S only; skip the other half
        const expected = `did:key:${z([...CODEC.p256, ...compressed])}`;
        for (const [name, type, multibase] of formsOf('p256', compressed, uncompressed)) {
          const key = readVerificationMethodKey(type, multibase);
          expect([name, key.didKey]).toEqual([name, expected]);
          if (lowS) expect(verifyCommitSignature(data, lowS, parseDidKey(key.didKey))).toBe(true);
        }
      }),
      { numRuns: 30 },
    );
  });
});

const P256_HALF_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n >> 1n;
const isHighS = (sig: Uint8Array): boolean => BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`) > P256_HALF_N;

describe('unusable keys: the reason names the form seen', () => {
  const k256 = secp256k1.publicKeyCreate(new Uint8Array(32).fill(7), true);
  const cases: [string, unknown, unknown, KeyFormReason][] = [
    ['Multikey without a key', 'Multikey', undefined, 'multikey:missing-key'],
    ['Multikey as a number', 'Multikey', 5, 'multikey:missing-key'],
    ['Multikey, unknown multibase prefix', 'Multikey', 'xAAAA', 'multikey:bad-multibase'],
    ['Multikey, invalid base58', 'Multikey', 'z0OIl', 'multikey:bad-multibase'],
    ['Multikey, too long', 'Multikey', `z${'1'.repeat(300)}`, 'multikey:bad-multibase'],
    ['Multikey, ed25519 codec', 'Multikey', z([0xed, 0x01, ...new Uint8Array(32)]), 'multikey:unsupported-codec'],
    ['Multikey, no codec (a raw point)', 'Multikey', z(k256), 'multikey:unsupported-codec'],
    ['Multikey, truncated point', 'Multikey', z([0xe7, 0x01, ...k256.subarray(0, 32)]), 'multikey:bad-point'],
    ['Multikey, hybrid point prefix', 'Multikey', z([0xe7, 0x01, 0x06, ...new Uint8Array(64)]), 'multikey:bad-point'],
    ['legacy secp256k1, a multikey inside', LEGACY_TYPE.secp256k1, z([0xe7, 0x01, ...k256]), 'legacy-secp256k1:bad-point'],
    ['legacy secp256k1, invalid base58', LEGACY_TYPE.secp256k1, 'z0OIl', 'legacy-secp256k1:bad-multibase'],
    ['legacy P-256, 64 bytes without prefix', LEGACY_TYPE.p256, z(new Uint8Array(64).fill(1)), 'legacy-p256:bad-point'],
    ['legacy P-256, no key', LEGACY_TYPE.p256, null, 'legacy-p256:missing-key'],
    ['did:key, ed25519', 'Multikey', `did:key:${z([0xed, 0x01, ...new Uint8Array(32)])}`, 'did-key:unsupported-codec'],
    ['JsonWebKey2020', 'JsonWebKey2020', undefined, 'jwk:unsupported-type'],
    ['Ed25519VerificationKey2020', 'Ed25519VerificationKey2020', z(new Uint8Array(32)), 'ed25519:unsupported-type'],
    ['an unknown type', 'SomethingNew', z(k256), 'other-type:unsupported-type'],
    ['type toString (no prototype lookups)', 'toString', z(k256), 'other-type:unsupported-type'],
    ['no type', undefined, z(k256), 'other-type:unsupported-type'],
  ];
  test.each(cases)('%s', (_name, type, multibase, reason) => {
    let caught: unknown;
    try {
      readVerificationMethodKey(type, multibase);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeyFormError);
    expect((caught as KeyFormError).reason).toBe(reason);
  });

  test('fuzz: any string in any type is a key or a KeyFormError, never anything else', () => {
    const types = fc.constantFrom('Multikey', LEGACY_TYPE.secp256k1, LEGACY_TYPE.p256, 'JsonWebKey2020', 'x');
    fc.assert(
      fc.property(types, fc.oneof(fc.string(), fc.string().map((s) => `z${s}`), fc.uint8Array().map((b) => z(b))), (type, text) => {
        try {
          readVerificationMethodKey(type, text);
        } catch (err) {
          expect(err).toBeInstanceOf(KeyFormError);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
