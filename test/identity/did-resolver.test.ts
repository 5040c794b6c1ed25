import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { DidResolutionError, DidResolver, type DidResolutionErrorReason } from '../../src/identity/did-resolver.ts';
import { testStrangers } from '../support/strangers.ts';

const KEY = 'zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc';
const plc = (n: number | string): string => `did:plc:${String(n).padStart(24, 'a')}`;

const docFor = (did: string, handle = 'alice.test'): Record<string, unknown> => ({
  id: did,
  alsoKnownAs: [`at://${handle}`],
  verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: KEY }],
  service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.example.com' }],
});

// DIDs with a fixed behaviour on the test server
const OK = plc('ok');
const SLOWISH = plc('slowish'); // answers after a gate opens
const NOT_FOUND = plc('gone');
const TOMBSTONED = plc('tomb');
const BROKEN = plc('broken'); // 500
const HANGS = plc('hangs'); // never answers
const NOT_JSON = plc('notjson');
const WRONG_ID = plc('wrongid');
const HUGE = plc('huge');
const BAD_DOC = plc('baddoc');

const requests = new Map<string, number>();
const count = (path: string): number => requests.get(path) ?? 0;
let gate: { promise: Promise<void>; open: () => void } = newGate();
function newGate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
const hung = newGate();

let server: ReturnType<typeof Bun.serve>;
let plcUrl: string;
let port: number;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const host = req.headers.get('host') ?? '';
      const key = url.pathname === '/.well-known/did.json' ? `web:${host.split(':')[0]}` : url.pathname;
      requests.set(key, count(key) + 1);
      if (url.pathname === '/.well-known/did.json') {
        const h = host.split(':')[0]!;
        if (h === '127.0.0.1') return new Response('nope', { status: 404 });
        return Response.json(docFor(`did:web:localhost%3A${port}`, 'web.test'));
      }
      const did = decodeURIComponent(url.pathname.replace(/^\/plc\//, ''));
      switch (did) {
        case SLOWISH:
          await gate.promise;
          return Response.json(docFor(did, `n${count(url.pathname)}.test`));
        case NOT_FOUND:
          return new Response('not found', { status: 404 });
        case TOMBSTONED:
          return new Response('gone', { status: 410 });
        case BROKEN:
          return new Response('oops', { status: 500 });
        case HANGS:
          await hung.promise;
          return new Response('late');
        case NOT_JSON:
          return new Response('{"id": ');
        case WRONG_ID:
          return Response.json(docFor(OK));
        case HUGE:
          return new Response(JSON.stringify({ ...docFor(did), pad: 'x'.repeat(100_000) }));
        case BAD_DOC:
          return Response.json({ ...docFor(did), service: 'nope' });
        default:
          return Response.json(docFor(did));
      }
    },
  });
  port = server.port!;
  plcUrl = `http://localhost:${port}/plc/`;
});

afterAll(() => {
  gate.open();
  hung.open();
  server.stop(true);
});

const reasonOf = async (promise: Promise<unknown>): Promise<DidResolutionErrorReason> => {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DidResolutionError);
    return (err as DidResolutionError).reason;
  }
  throw new Error('expected a rejection');
};

describe('DidResolver', () => {
  test('resolves a did:plc document', async () => {
    const resolver = new DidResolver({ plcUrl });
    expect(await resolver.resolve(OK)).toEqual({
      did: OK,
      handle: 'alice.test',
      pdsEndpoint: 'https://pds.example.com',
      signingKey: `did:key:${KEY}`,
      signingKeyProblem: null,
    });
  });

  test('resolves a did:web document over http for ALLOW_PRIVATE_HOSTS, port as %3A', async () => {
    const resolver = new DidResolver({ plcUrl, strangers: testStrangers() });
    const did = `did:web:localhost%3A${port}`;
    expect(await resolver.resolve(did)).toMatchObject({ did, handle: 'web.test' });
    expect(await reasonOf(resolver.resolve(`did:web:127.0.0.1%3A${port}`))).toBe('not-found');
  });

  test('a did:web host on a private address is refused without a request, and the refusal is kept', async () => {
    const resolver = new DidResolver({ plcUrl });
    for (const did of [`did:web:localhost%3A${port}`, `did:web:127.0.0.1%3A${port}`, 'did:web:169.254.169.254', 'did:web:2130706433']) {
      expect([did, await reasonOf(resolver.resolve(did))]).toEqual([did, 'refused']);
    }
  });

  test('caches answers: a second resolve makes no request', async () => {
    const resolver = new DidResolver({ plcUrl });
    const did = plc('cachea');
    await resolver.resolve(did);
    await resolver.resolve(did);
    expect(count(`/plc/${did}`)).toBe(1);
    resolver.invalidate(did);
    await resolver.resolve(did);
    expect(count(`/plc/${did}`)).toBe(2);
  });

  test('concurrent resolves of one DID share one request', async () => {
    gate = newGate();
    const resolver = new DidResolver({ plcUrl });
    const before = count(`/plc/${SLOWISH}`);
    const all = Promise.all(Array.from({ length: 20 }, () => resolver.resolve(SLOWISH)));
    gate.open();
    const results = await all;
    expect(count(`/plc/${SLOWISH}`) - before).toBe(1);
    expect(new Set(results).size).toBe(1);
  });

  test('invalidate during a request: the stale answer is not cached, the next resolve refetches', async () => {
    gate = newGate();
    const resolver = new DidResolver({ plcUrl });
    const before = count(`/plc/${SLOWISH}`);
    const first = resolver.resolve(SLOWISH);
    resolver.invalidate(SLOWISH);
    const second = resolver.resolve(SLOWISH);
    gate.open();
    const [a, b] = await Promise.all([first, second]);
    expect(count(`/plc/${SLOWISH}`) - before).toBe(2);
    expect(await resolver.resolve(SLOWISH)).toBe(b);
    expect(a).not.toBe(b);
    expect(count(`/plc/${SLOWISH}`) - before).toBe(2);
  });

  test('TTL: an expired answer is fetched again', async () => {
    let now = 0;
    const resolver = new DidResolver({ plcUrl, ttlMs: 1000, now: () => now });
    const did = plc('ttla');
    await resolver.resolve(did);
    now = 999;
    await resolver.resolve(did);
    expect(count(`/plc/${did}`)).toBe(1);
    now = 1000;
    await resolver.resolve(did);
    expect(count(`/plc/${did}`)).toBe(2);
  });

  test('the cache is bounded by maxEntries', async () => {
    const resolver = new DidResolver({ plcUrl, maxEntries: 1 });
    const [a, b] = [plc('lrua'), plc('lrub')];
    await resolver.resolve(a);
    await resolver.resolve(b);
    await resolver.resolve(a);
    expect(resolver.cacheSize).toBe(1);
    expect(count(`/plc/${a}`)).toBe(2);
  });

  test.each([
    [NOT_FOUND, 'not-found', 1],
    [TOMBSTONED, 'tombstoned', 1],
    [BAD_DOC, 'bad-document', 1],
    [BROKEN, 'http-status', 2],
  ] as const)('%s -> %s, cached failures: %d request(s) for two resolves', async (did, reason, requestsMade) => {
    const resolver = new DidResolver({ plcUrl });
    expect(await reasonOf(resolver.resolve(did))).toBe(reason);
    const before = count(`/plc/${did}`);
    expect(await reasonOf(resolver.resolve(did))).toBe(reason);
    expect(count(`/plc/${did}`) - before).toBe(requestsMade - 1);
  });

  test('http-status carries the status', async () => {
    const resolver = new DidResolver({ plcUrl });
    const err = await resolver.resolve(BROKEN).catch((e: unknown) => e);
    expect((err as DidResolutionError).status).toBe(500);
  });

  test('a response slower than timeoutMs is a timeout', async () => {
    const resolver = new DidResolver({ plcUrl, timeoutMs: 50 });
    expect(await reasonOf(resolver.resolve(HANGS))).toBe('timeout');
  });

  test.each([
    [NOT_JSON, 'bad-document'],
    [WRONG_ID, 'bad-document'],
    [HUGE, 'bad-document'],
  ] as const)('%s -> %s', async (did, reason) => {
    const resolver = new DidResolver({ plcUrl, maxDocumentBytes: 16 * 1024 });
    expect(await reasonOf(resolver.resolve(did))).toBe(reason);
  });

  test.each([
    'did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc',
    'did:plc:short',
    'did:plc:UPPERCASEUPPERCASEUPPERC',
    'did:web:example.com:user:alice',
    'did:web:',
    'alice.test',
  ])('unsupported DID %s makes no request', async (did) => {
    let fetched = 0;
    const resolver = new DidResolver({
      plcUrl,
      fetch: () => {
        fetched++;
        return Promise.resolve(new Response('{}'));
      },
    });
    expect(await reasonOf(resolver.resolve(did))).toBe('unsupported-did');
    expect(fetched).toBe(0);
  });

  test('a failing fetch is a network error, a throwing one too, neither is cached', async () => {
    let calls = 0;
    const resolver = new DidResolver({
      plcUrl,
      fetch: () => {
        calls++;
        if (calls === 1) return Promise.reject(new TypeError('connection refused'));
        throw new Error('synchronous failure');
      },
    });
    expect(await reasonOf(resolver.resolve(OK))).toBe('network');
    expect(await reasonOf(resolver.resolve(OK))).toBe('network');
    expect(calls).toBe(2);
  });

  test('a closed port is a network error', async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response('') });
    const url = `http://localhost:${closed.port}`;
    closed.stop(true);
    const resolver = new DidResolver({ plcUrl: url });
    expect(await reasonOf(resolver.resolve(OK))).toBe('network');
  });
});
