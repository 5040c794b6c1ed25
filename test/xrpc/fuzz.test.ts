/**
 * Property-based fuzz of every XRPC method over a real indexed network: random and hostile values
 * for each of the method's lexicon parameters (NUL bytes, very long strings, huge and negative
 * numbers, malformed DIDs, handles, AT-URIs, cursors and dates, repeated parameters, garbage
 * tokens). Whatever comes in, the answer is never a 5xx, and an error is `{ error, message }`.
 */
import { beforeAll, expect, test } from 'bun:test';
import * as Bsky from '@atcute/bluesky';
import fc from 'fast-check';
import { methodTable } from '../../src/api/xrpc/methods.ts';
import type { AppView } from '../../src/api/xrpc/app-view.ts';
import { indexedNetwork, type IndexedNetwork } from './fixture.ts';

let net: IndexedNetwork;
let dids: string[] = [];
beforeAll(async () => {
  net = await indexedNetwork('fuzz', { seed: 21, accounts: 30, commits: 600, accountShare: 0.02 });
  dids = (await net.db.run((sql) => sql`select did from actors order by id limit 5`)).map((row) => row.did as string);
}, 120_000);

/** Each method's lexicon parameters, by NSID, from the same schemas methods.ts validates with. */
function parameters(nsid: string): { name: string; required: boolean }[] {
  if (nsid === 'com.atproto.identity.resolveHandle') return [{ name: 'handle', required: true }];
  const name = nsid
    .split('.')
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  const namespace = (Bsky as unknown as Record<string, { mainSchema?: { params?: { shape?: Record<string, { type: string }> } } }>)[name];
  const shape = namespace?.mainSchema?.params?.shape;
  if (!shape) throw new Error(`no lexicon schema found for ${nsid} (${name})`);
  return Object.entries(shape).map(([param, schema]) => ({ name: param, required: schema.type !== 'optional' }));
}

/** A value a method accepts for `name` (an indexed account or post where one is named). */
function plausible(name: string): string {
  if (['actor', 'actors', 'author', 'mentions', 'others'].includes(name)) return dids[0]!;
  if (['uri', 'uris', 'list', 'feed', 'feeds', 'starterPack'].includes(name)) return `at://${dids[0]}/app.bsky.feed.post/3aaaaaaaaaaaa`;
  if (name === 'handle') return 'alice.test';
  if (name === 'q') return 'hello';
  return 'x';
}

const DATES = fc.constantFrom('0000-01-01T00:00:00Z', '0000-01-01T00:00:00+01:00', '9999-12-31T23:59:59Z', '2024-02-30T00:00:00Z', '2024-01-01', 'yesterday', '1970-01-01T00:00:00+25:00', '-000001-01-01T00:00:00Z');
const NUMBERS = fc.oneof(fc.constantFrom('-1', '0', '1e308', '9007199254740993', '-9223372036854775809', 'NaN', '0x10', ' 5'), fc.integer().map(String));
const DIDS = fc.constantFrom('did:plc:', 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'did:web:localhost%3A1', 'did:web:169.254.169.254', 'did:x:y', `did:plc:${'a'.repeat(3000)}`);
const URIS = fc.constantFrom('at://', 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/..', 'at://handle.test/app.bsky.feed.post/x', 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.generator/x', 'https://example.com/', 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa');
const HANDLES = fc.constantFrom('alice.test', '@ALICE.TEST', 'handle.invalid', 'a'.repeat(300), 'xn--ls8h.test', 'localhost');
const ANY = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', '\u0000', 'a\u0000b', '%00', 'true', 'null', 'a'.repeat(10_000), '\u{1F600}'.repeat(2_000), '\uD800'),
  fc.base64String({ maxLength: 60 }),
  fc.constantFrom('app.bsky.feed.post', 'posts_with_replies', 'top', 'latest', 'modlist', 'curatelist'),
);

/** Hostile values for a parameter: anything, and more of what its name makes likely to matter. */
function hostile(name: string): fc.Arbitrary<string> {
  const likely = /^(since|until)$/.test(name)
    ? DATES
    : /^(limit|depth|parentHeight)$/.test(name)
      ? NUMBERS
      : /^(actor|actors|author|mentions|others)$/.test(name)
        ? fc.oneof(DIDS, HANDLES)
        : /^(uri|uris|list|feed|feeds|starterPack)$/.test(name)
          ? URIS
          : name === 'cursor'
            ? fc.oneof(fc.base64String({ maxLength: 80 }), NUMBERS, DATES)
            : fc.oneof(DATES, NUMBERS, DIDS, URIS, HANDLES);
  return fc.oneof({ arbitrary: likely, weight: 2 }, { arbitrary: ANY, weight: 1 });
}

test('every method, any parameters: never a 5xx, errors are { error, message }', async () => {
  const methods = [...methodTable({} as AppView).keys()];
  expect(methods.length).toBeGreaterThan(20);
  let tried = 0;
  for (const nsid of methods) {
    const known = parameters(nsid);
    // one parameter gets the hostile values; the required others a plausible one, so the hostile
    // value is what the method has to survive (a bad value elsewhere would stop the call first)
    const params = fc
      .constantFrom(...known.map((param) => param.name), 'unknownParam')
      .chain((target) => fc.tuple(fc.constant(target), fc.array(hostile(target), { minLength: 1, maxLength: 2 })))
      .map(([target, values]) => [
        ...known.filter((param) => param.required && param.name !== target).map((param) => [param.name, plausible(param.name)] as [string, string]),
        ...values.map((text) => [target, text] as [string, string]),
      ]);
    // mostly anonymous: a garbage token is refused before the parameters are read
    const authorization = fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 9 },
      { arbitrary: fc.oneof(fc.constant('Bearer x.y.z'), fc.string({ maxLength: 30 }).map((s) => `Bearer ${s}`), fc.constant('Basic Og==')), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(params, authorization, async (pairs, auth) => {
        const search = new URLSearchParams();
        for (const [name, text] of pairs) search.append(name, text);
        const response = await net.app.handle(
          new Request(`http://localhost/xrpc/${nsid}?${search}`, auth ? { headers: { authorization: auth } } : {}),
        );
        tried++;
        const body = await response.text();
        expect([nsid, search.toString().slice(0, 300), response.status < 500 ? 'ok' : body.slice(0, 200)]).toEqual([nsid, search.toString().slice(0, 300), 'ok']);
        if (response.status >= 400) expect(Object.keys(JSON.parse(body)).sort()).toEqual(['error', 'message']);
      }),
      { numRuns: 500, seed: 42 },
    );
  }
  console.log(`fuzz: ${tried} requests over ${methods.length} methods, none answered 5xx`);
}, 300_000);
