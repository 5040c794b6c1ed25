import { toBase58Btc } from '@atcute/multibase';
import { DidResolutionError } from '../../src/identity/did-resolver.ts';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { SigningKeyCache, SigningKeyError, type KeyResolver } from '../../src/firehose/signing-keys.ts';
import { DidResolver } from '../../src/identity/did-resolver.ts';
import { DID, k256Signer, p256Signer, toHighS, type Signer } from './fixtures.ts';

/** An in-memory resolver whose answer can change, counting its calls. */
class TableResolver implements KeyResolver {
  calls = 0;
  invalidations = 0;
  answer: () => Promise<{ signingKey: string | null }>;

  constructor(signingKey: string | null) {
    this.answer = () => Promise.resolve({ signingKey });
  }

  resolve(): Promise<{ signingKey: string | null }> {
    this.calls++;
    return this.answer();
  }

  invalidate(): void {
    this.invalidations++;
  }

  setKey(signingKey: string | null): void {
    this.answer = () => Promise.resolve({ signingKey });
  }
}

const message = new TextEncoder().encode('unsigned commit bytes');
const signed = (signer: Signer) => signer.sign(message);

describe('SigningKeyCache.get', () => {
  test('caches the parsed key; concurrent gets share one resolution', async () => {
    const signer = k256Signer(11);
    const resolver = new TableResolver(signer.multikey);
    const cache = new SigningKeyCache(resolver);
    const keys = await Promise.all(Array.from({ length: 10 }, () => cache.get(DID)));
    await cache.get(DID);
    expect(resolver.calls).toBe(1);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]!.didKey).toBe(signer.didKey);
  });

  test('invalidate drops the key here and in the resolver', async () => {
    const resolver = new TableResolver(k256Signer(11).multikey);
    const cache = new SigningKeyCache(resolver);
    await cache.get(DID);
    cache.invalidate(DID);
    expect(resolver.invalidations).toBe(1);
    await cache.get(DID);
    expect(resolver.calls).toBe(2);
  });

  test('an invalidate during a resolution keeps the stale answer out of the cache', async () => {
    const resolver = new TableResolver(k256Signer(11).multikey);
    let release!: () => void;
    resolver.answer = () => new Promise((resolve) => (release = () => resolve({ signingKey: k256Signer(11).multikey })));
    const cache = new SigningKeyCache(resolver);
    const pending = cache.get(DID);
    cache.invalidate(DID);
    release();
    await pending;
    resolver.setKey(k256Signer(12).multikey);
    expect((await cache.get(DID)).didKey).toBe(k256Signer(12).didKey);
  });

  test('the cache is bounded', async () => {
    const resolver = new TableResolver(k256Signer(11).multikey);
    const cache = new SigningKeyCache(resolver, { maxEntries: 1 });
    await cache.get('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa');
    await cache.get('did:plc:bbbbbbbbbbbbbbbbbbbbbbbb');
    await cache.get('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa');
    expect(resolver.calls).toBe(3);
  });

  test('a cached key is handed out whole: the same key, curve and forms as the one parsed', async () => {
    for (const signer of [k256Signer(11), p256Signer()]) {
      const cache = new SigningKeyCache(new TableResolver(signer.multikey));
      const parsed = await cache.get(DID);
      const cached = await cache.get(DID);
      expect([cached.type, cached.didKey, [...cached.publicKey]]).toEqual([parsed.type, signer.didKey, [...parsed.publicKey]]);
      expect(cache.verifyCached(DID, message, signed(signer))).toBe('ok');
    }
  });

  test('a key in hand stays the same when its DID is refetched with another key', async () => {
    const resolver = new TableResolver(k256Signer(11).multikey);
    const cache = new SigningKeyCache(resolver);
    await cache.get(DID);
    const inHand = await cache.get(DID);
    cache.invalidate(DID);
    resolver.setKey(k256Signer(12).multikey);
    expect((await cache.get(DID)).didKey).toBe(k256Signer(12).didKey);
    expect(inHand.didKey).toBe(k256Signer(11).didKey);
  });

  test('a key older than the TTL is fetched again', async () => {
    let now = 0;
    const resolver = new TableResolver(k256Signer(11).multikey);
    const cache = new SigningKeyCache(resolver, { ttlMs: 1000, now: () => now });
    await cache.get(DID);
    now = 999;
    expect(cache.has(DID)).toBe(true);
    now = 1000;
    expect(cache.has(DID)).toBe(false);
    expect(cache.verifyCached(DID, message, signed(k256Signer(11)))).toBeNull();
    await cache.get(DID);
    expect(resolver.calls).toBe(2);
  });

  test('bounded over many DIDs and both curves: each DID keeps its own key', async () => {
    const signers = [k256Signer(11), k256Signer(12), p256Signer()];
    // did:plc from the index's binary digits as b and c; every fifth a did:web
    const dids = Array.from({ length: 1_100 }, (_, index) =>
      index % 5 === 0 ? `did:web:host-${index}.example` : `did:plc:${index.toString(2).replaceAll('0', 'b').replaceAll('1', 'c').padStart(24, 'a')}`,
    );
    const indexOf = new Map(dids.map((did, index) => [did, index]));
    const signerOf = (did: string) => signers[indexOf.get(did)! % signers.length]!;
    const cache = new SigningKeyCache({ resolve: (did) => Promise.resolve({ signingKey: signerOf(did).multikey }), invalidate: () => {} }, { maxEntries: 1_050 });
    for (const did of [...dids, ...dids]) {
      expect((await cache.get(did)).didKey).toBe(signerOf(did).didKey);
      expect(cache.verifyCached(did, message, signed(signerOf(did)))).toBe('ok');
    }
  });

  test.each([
    ['no signing key', null, 'no-signing-key'],
    ['an unusable key', 'zNotAKey', 'bad-key'],
  ] as const)('%s -> %s', async (_name, key, reason) => {
    const cache = new SigningKeyCache(new TableResolver(key));
    const err = await cache.get(DID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SigningKeyError);
    expect((err as SigningKeyError).reason).toBe(reason);
  });

  test('a failed resolution is resolution-failed and is not cached', async () => {
    const resolver = new TableResolver(null);
    resolver.answer = () => Promise.reject(new Error('offline'));
    const cache = new SigningKeyCache(resolver);
    const err = await cache.get(DID).catch((e: unknown) => e);
    expect((err as SigningKeyError).reason).toBe('resolution-failed');
    await cache.get(DID).catch(() => undefined);
    expect(resolver.calls).toBe(2);
  });
});

describe('SigningKeyCache.verifyCommit', () => {
  const setup = (signer: Signer, minRefreshIntervalMs = 30_000) => {
    let now = 0;
    const resolver = new TableResolver(signer.multikey);
    const cache = new SigningKeyCache(resolver, { minRefreshIntervalMs, now: () => now });
    return { resolver, cache, advance: (ms: number) => void (now += ms) };
  };

  test.each([
    ['secp256k1', k256Signer(21)],
    ['p256', p256Signer()],
  ] as const)('ok for a valid %s signature', async (_curve, signer) => {
    const { cache } = setup(signer);
    expect(await cache.verifyCommit(DID, message, signed(signer))).toBe('ok');
  });

  test('a rotated key: refetch once, then ok', async () => {
    const [oldKey, newKey] = [k256Signer(21), k256Signer(22)];
    const { resolver, cache, advance } = setup(oldKey);
    await cache.get(DID);
    resolver.setKey(newKey.multikey);
    advance(60_000);
    expect(await cache.verifyCommit(DID, message, signed(newKey))).toBe('ok');
    expect(resolver.calls).toBe(2);
    expect(await cache.verifyCommit(DID, message, signed(newKey))).toBe('ok');
    expect(resolver.calls).toBe(2);
  });

  test('a rotated key to P-256', async () => {
    const [oldKey, newKey] = [k256Signer(21), p256Signer()];
    const { resolver, cache, advance } = setup(oldKey);
    await cache.get(DID);
    resolver.setKey(newKey.multikey);
    advance(60_000);
    expect(await cache.verifyCommit(DID, message, signed(newKey))).toBe('ok');
  });

  test('a bad signature with an unchanged key: one refetch, then bad-signature', async () => {
    const { resolver, cache, advance } = setup(k256Signer(21));
    await cache.get(DID);
    advance(60_000);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(23)))).toBe('bad-signature');
    expect(resolver.calls).toBe(2);
  });

  test('no refetch when the key in hand is younger than minRefreshIntervalMs', async () => {
    const { resolver, cache, advance } = setup(k256Signer(21));
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(23)))).toBe('bad-signature');
    advance(29_999);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(23)))).toBe('bad-signature');
    expect(resolver.calls).toBe(1);
  });

  test('a high-S signature is bad even with the right key', async () => {
    const signer = k256Signer(21);
    const { cache } = setup(signer, 0);
    expect(await cache.verifyCommit(DID, message, toHighS(signed(signer), 'secp256k1'))).toBe('bad-signature');
  });

  test('key-unavailable when the DID cannot be resolved', async () => {
    const resolver = new TableResolver(null);
    resolver.answer = () => Promise.reject(new Error('offline'));
    const cache = new SigningKeyCache(resolver);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(21)))).toBe('key-unavailable');
  });

  test.each([
    ['not-found', 404],
    ['tombstoned', 410],
    ['bad-document', 200],
    ['http-status', 403],
  ] as const)('key-invalid when resolution fails definitively (%s)', async (reason, status) => {
    const resolver = new TableResolver(null);
    resolver.answer = () => Promise.reject(new DidResolutionError(reason, DID, reason, { status }));
    const cache = new SigningKeyCache(resolver);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(21)))).toBe('key-invalid');
  });

  test.each(['timeout', 'network'] as const)('key-unavailable when resolution may pass (%s)', async (reason) => {
    const resolver = new TableResolver(null);
    resolver.answer = () => Promise.reject(new DidResolutionError(reason, DID, reason));
    const cache = new SigningKeyCache(resolver);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(21)))).toBe('key-unavailable');
  });

  test('key-invalid when the document has no signing key', async () => {
    const cache = new SigningKeyCache(new TableResolver(null));
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(21)))).toBe('key-invalid');
  });

  test('key-unavailable when the refetch after a failure fails', async () => {
    const { resolver, cache, advance } = setup(k256Signer(21));
    await cache.get(DID);
    resolver.answer = () => Promise.reject(new Error('offline'));
    advance(60_000);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(23)))).toBe('key-unavailable');
  });
});

describe('SigningKeyCache over a real DidResolver', () => {
  const signers = [k256Signer(31), k256Signer(32)];
  let current = 0;
  let requests = 0;
  let server: ReturnType<typeof Bun.serve>;

  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      fetch(req) {
        requests++;
        const did = decodeURIComponent(new URL(req.url).pathname.slice(1));
        return Response.json({
          id: did,
          verificationMethod: [{ id: '#atproto', type: 'Multikey', publicKeyMultibase: signers[current]!.multikey }],
        });
      },
    });
  });
  afterAll(() => server.stop(true));

  test('a rotation reaches verification through both caches', async () => {
    let now = 0;
    const resolver = new DidResolver({ plcUrl: `http://localhost:${server.port}`, now: () => now });
    const cache = new SigningKeyCache(resolver, { now: () => now });
    expect(await cache.verifyCommit(DID, message, signed(signers[0]!))).toBe('ok');
    current = 1;
    now = 60_000;
    expect(await cache.verifyCommit(DID, message, signed(signers[1]!))).toBe('ok');
    expect(requests).toBe(2);
  });
});

describe('SigningKeyCache.learn', () => {
  test('a published key is used without asking the resolver, replaces an older one, and a removal drops it', async () => {
    const first = k256Signer(31);
    const second = k256Signer(32);
    const resolver = new TableResolver(first.didKey);
    const cache = new SigningKeyCache(resolver);
    cache.learn(DID, first.didKey);
    expect(await cache.verifyCommit(DID, message, signed(first))).toBe('ok');
    expect(resolver.calls).toBe(0);
    // the same key again changes nothing; a rotated key drops the resolver's copy of the document
    cache.learn(DID, first.didKey);
    expect(resolver.invalidations).toBe(0);
    cache.learn(DID, second.didKey);
    expect(resolver.invalidations).toBe(1);
    expect(cache.verifyCached(DID, message, signed(second))).toBe('ok');
    // no key now (a tombstone), or one that does not parse: the next get asks the resolver
    cache.learn(DID, null);
    expect(cache.has(DID)).toBe(false);
    cache.learn(DID, 'did:key:zNotAKey');
    expect(cache.has(DID)).toBe(false);
    expect((await cache.get(DID)).didKey).toBe(first.didKey);
    expect(resolver.calls).toBe(1);
  });
});

describe('SigningKeyCache: unusable keys are counted by the form seen', () => {
  test('a document key that could not be read, one off its curve, none at all, and a bad export line', async () => {
    const unreadable: KeyResolver = {
      resolve: () => Promise.resolve({ signingKey: null, signingKeyProblem: 'legacy-secp256k1:bad-point' }),
      invalidate: () => {},
    };
    const cache = new SigningKeyCache(unreadable);
    expect(await cache.verifyCommit(DID, message, signed(k256Signer(3)))).toBe('key-invalid');
    expect(await cache.verifyCommit('did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', message, signed(k256Signer(3)))).toBe('key-invalid');

    const offCurve = new TableResolver(`z${toBase58Btc(Uint8Array.from([0xe7, 0x01, 0x02, ...new Uint8Array(32).fill(0xff)]))}`);
    const curveCache = new SigningKeyCache(offCurve);
    await expect(curveCache.get(DID)).rejects.toBeInstanceOf(SigningKeyError);
    curveCache.learn('did:plc:cccccccccccccccccccccccc', 'did:key:z0OIl');

    const absent = new SigningKeyCache(new TableResolver(null));
    expect(await absent.verifyCommit(DID, message, signed(k256Signer(3)))).toBe('key-invalid');

    expect(Object.fromEntries(cache.unusableKeys)).toEqual({ 'legacy-secp256k1:bad-point': 2 });
    expect(Object.fromEntries(curveCache.unusableKeys)).toEqual({ 'not-on-curve': 1, 'did-key:bad-multibase': 1 });
    expect(Object.fromEntries(absent.unusableKeys)).toEqual({ 'no-atproto-key': 1 });
  });
});
