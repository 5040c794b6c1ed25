import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { CircuitBreakers } from '../../src/identity/circuit-breaker.ts';
import { HandleResolutionError, HandleResolver, normalizeHandle, wellKnownHostKey } from '../../src/identity/handle-resolver.ts';
import { HostGate } from '../../src/identity/host-gate.ts';
import type { FetchLike } from '../../src/identity/http-get.ts';
import { HostRateLimiter } from '../../src/identity/rate-limiter.ts';
import { testStrangers } from '../support/strangers.ts';

const ALICE = 'did:plc:aliceaaaaaaaaaaaaaaaaaaa';
const BOB = 'did:plc:bobaaaaaaaaaaaaaaaaaaaaa';

const dnsError = (code: string) => Object.assign(new Error(code), { code });

// DNS answers by name; a function throws
const DNS: Record<string, string[][] | Error> = {
  '_atproto.dns.test': [['did=', ALICE]],
  '_atproto.both.test': [[`did=${ALICE}`]],
  '_atproto.ambiguous.test': [[`did=${ALICE}`], [`did=${BOB}`]],
  '_atproto.junk.test': [['hello'], ['did=not a did']],
  '_atproto.servfail.test': dnsError('ESERVFAIL'),
  '_atproto.servfail-http.test': dnsError('ESERVFAIL'),
  '_atproto.servfail-404.test': dnsError('ESERVFAIL'),
};
const dnsCalls: string[] = [];
const resolveTxt = async (name: string): Promise<string[][]> => {
  dnsCalls.push(name);
  const answer = DNS[name];
  if (answer === undefined) throw dnsError('ENOTFOUND');
  if (answer instanceof Error) throw answer;
  return answer;
};

// well-known answers by handle (the Host header); the test fetch sends https://<handle>/ here
const WELL_KNOWN: Record<string, () => Response | Promise<Response>> = {
  'http.test': () => new Response(`${BOB}\n`),
  'both.test': () => new Response(BOB),
  'servfail-http.test': () => new Response(ALICE),
  'servfail-404.test': () => new Response('no', { status: 404 }),
  'broken.test': () => new Response('oops', { status: 503 }),
  'html.test': () => new Response('<html>hi</html>'),
  'a.group.test': () => new Response('oops', { status: 500 }),
  'b.group.test': () => new Response(BOB),
};
const httpCalls: string[] = [];
let stub: ReturnType<typeof Bun.serve>;
let trusted: ReturnType<typeof Bun.serve>;
let trustedCalls = 0;
let trustedStatus = 200;

beforeAll(() => {
  stub = Bun.serve({
    port: 0,
    fetch(req) {
      const host = req.headers.get('x-test-host') ?? '';
      const url = new URL(req.url);
      httpCalls.push(`${host}${url.pathname}`);
      if (url.pathname !== '/.well-known/atproto-did') return new Response('nope', { status: 404 });
      return WELL_KNOWN[host]?.() ?? new Response('not found', { status: 404 });
    },
  });
  trusted = Bun.serve({
    port: 0,
    fetch(req) {
      trustedCalls++;
      const url = new URL(req.url);
      if (url.pathname !== '/xrpc/com.atproto.identity.resolveHandle') return new Response('nope', { status: 404 });
      if (trustedStatus !== 200) return Response.json({ error: 'Oops' }, { status: trustedStatus });
      const handle = url.searchParams.get('handle');
      if (handle === 'alice.test') return Response.json({ did: ALICE });
      if (handle === 'weird.test') return Response.json({ did: 42 });
      return Response.json({ error: 'InvalidRequest', message: 'Unable to resolve handle' }, { status: 400 });
    },
  });
});
afterAll(() => {
  stub.stop(true);
  trusted.stop(true);
});

/** Sends https://<handle>/... to the local stub, telling it which host was asked. */
const mappedFetch: FetchLike = (input, init) => {
  const url = new URL(input);
  const headers = new Headers(init.headers);
  headers.set('x-test-host', url.hostname);
  return fetch(`http://127.0.0.1:${stub.port}${url.pathname}${url.search}`, { ...init, headers });
};

const direct = () => new HandleResolver({ strangers: testStrangers(mappedFetch), resolveTxt, timeoutMs: 2000 });

describe('normalizeHandle', () => {
  test.each([
    ['Alice.Bsky.Social', 'alice.bsky.social'],
    ['alice.test', 'alice.test'],
    ['x.sim.test', 'x.sim.test'],
    ['localhost', null],
    ['alice.local', null],
    ['alice.localhost', null],
    ['handle.invalid', null],
    ['alice.example', null],
    ['alice.onion', null],
    ['127.0.0.1', null],
    ['-bad.test', null],
    ['a..b.test', null],
    ['', null],
    [`${'a'.repeat(64)}.test`, null],
    ['alice.123', null],
  ])('%p -> %p', (input, expected) => {
    expect(normalizeHandle(input)).toBe(expected);
  });

  test('well-known hosts are grouped by parent domain from three labels on', () => {
    expect(wellKnownHostKey('alice.bsky.social')).toBe('bsky.social');
    expect(wellKnownHostKey('alice.com')).toBe('alice.com');
  });
});

describe('HandleResolver, DNS then HTTPS', () => {
  test('DNS TXT wins; chunks are joined; HTTP is not asked', async () => {
    const before = httpCalls.length;
    expect(await direct().resolve('dns.test')).toBe(ALICE);
    expect(await direct().resolve('both.test')).toBe(ALICE);
    expect(httpCalls.length).toBe(before);
  });

  test('no DNS record: the well-known file answers', async () => {
    expect(await direct().resolve('http.test')).toBe(BOB);
    expect(httpCalls).toContain('http.test/.well-known/atproto-did');
  });

  test('a DNS server failure still lets HTTPS answer', async () => {
    expect(await direct().resolve('servfail-http.test')).toBe(ALICE);
  });

  test('ambiguous or junk DNS, 404, HTML: null (invalid), never a guess', async () => {
    expect(await direct().resolve('ambiguous.test')).toBeNull();
    expect(await direct().resolve('junk.test')).toBeNull();
    expect(await direct().resolve('nothing.test')).toBeNull();
    expect(await direct().resolve('html.test')).toBeNull();
    expect(await direct().resolve('servfail-404.test')).toBeNull();
  });

  test('only a DNS failure together with an HTTP failure is "unknown"', async () => {
    DNS['_atproto.broken.test'] = dnsError('ETIMEOUT');
    await expect(direct().resolve('broken.test')).rejects.toBeInstanceOf(HandleResolutionError);
    // DNS says nothing there, HTTP fails: that is a negative answer
    expect(await direct().resolve('a.group.test')).toBeNull();
  });

  test('a hanging DNS lookup is bounded by the timeout', async () => {
    const resolver = new HandleResolver({ strangers: testStrangers(mappedFetch), resolveTxt: () => new Promise(() => {}), timeoutMs: 50 });
    expect(await resolver.resolve('http.test')).toBe(BOB);
  });

  test('invalid handles cost no lookup', async () => {
    const before = dnsCalls.length;
    expect(await direct().resolve('alice.local')).toBeNull();
    expect(dnsCalls.length).toBe(before);
  });

  test('answers are cached; fresh skips the cache', async () => {
    const resolver = direct();
    const before = dnsCalls.filter((n) => n === '_atproto.dns.test').length;
    await resolver.resolve('dns.test');
    await resolver.resolve('DNS.test');
    expect(dnsCalls.filter((n) => n === '_atproto.dns.test').length).toBe(before + 1);
    await resolver.resolve('dns.test', { fresh: true });
    expect(dnsCalls.filter((n) => n === '_atproto.dns.test').length).toBe(before + 2);
    expect(await resolver.verify('dns.test', ALICE)).toBe(true);
    expect(await resolver.verify('dns.test', BOB)).toBe(false);
  });

  test('well-known hosts of one parent domain share a breaker through the gate', async () => {
    const gate = new HostGate(new HostRateLimiter({ defaultRate: 1000 }), new CircuitBreakers({ failureThreshold: 1, cooldownMs: 60_000 }));
    const resolver = new HandleResolver({ strangers: testStrangers(mappedFetch), resolveTxt, gate });
    expect(await resolver.resolve('a.group.test')).toBeNull(); // 500: the group's circuit opens
    const before = httpCalls.length;
    expect(await resolver.resolve('b.group.test')).toBeNull(); // refused without a request
    expect(httpCalls.length).toBe(before);
  });
});

describe('HandleResolver with HANDLE_RESOLVER_URL', () => {
  const resolver = () => new HandleResolver({ resolverUrl: `http://127.0.0.1:${trusted.port}/`, resolveTxt, timeoutMs: 2000 });

  test('trusts the service and asks nothing else', async () => {
    const before = dnsCalls.length;
    expect(await resolver().resolve('alice.test')).toBe(ALICE);
    expect(await resolver().resolve('nobody.test')).toBeNull();
    expect(dnsCalls.length).toBe(before);
  });

  test('a malformed answer or an outage is unknown, not invalid', async () => {
    await expect(resolver().resolve('weird.test')).rejects.toBeInstanceOf(HandleResolutionError);
    trustedStatus = 502;
    try {
      await expect(resolver().resolve('alice.test')).rejects.toBeInstanceOf(HandleResolutionError);
    } finally {
      trustedStatus = 200;
    }
    const down = new HandleResolver({ resolverUrl: 'http://127.0.0.1:1', timeoutMs: 2000 });
    await expect(down.resolve('alice.test')).rejects.toBeInstanceOf(HandleResolutionError);
  });
});
