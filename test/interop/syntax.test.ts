/**
 * atproto interop vectors, syntax/*.txt, against every place Aqueduct checks that syntax.
 *
 * Each family (DID, handle, ...) runs its valid and invalid vectors through each check the project
 * applies to that kind of input: src/lib/syntax.ts (which must agree with every vector), and the
 * checks where the input arrives (the frame decoder, DID documents, handle resolution, record
 * parsing, XRPC parameters and routes, configuration). A check that differs from a vector on
 * purpose lists that vector with the reason (`Expectations`); a listed vector must exist, so the
 * lists cannot go stale. One test per vector and check, named by file, line and vector.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { AppBskyActorGetProfile, AppBskyFeedGetPostThread, AppBskyFeedSearchPosts } from '@atcute/bluesky';
import { toBytes, toCidLink } from '@atcute/cbor';
import type { ObjectSchema } from '@atcute/lexicons/validations';

import { XrpcError } from '../../src/api/errors.ts';
import { normalizeIdentifier, parseUri } from '../../src/api/xrpc/actors.ts';
import { parseParams } from '../../src/api/xrpc/params.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { decodeFrame, FrameError } from '../../src/firehose/frame-decoder.ts';
import { DidDocumentError, parseDidDocument } from '../../src/identity/did-document.ts';
import { HandleResolver, normalizeHandle } from '../../src/identity/handle-resolver.ts';
import { readAnswer } from '../../src/identity/profile-fetcher.ts';
import { profileFields } from '../../src/identity/profile-view.ts';
import * as syntax from '../../src/lib/syntax.ts';
import { parseAtUri } from '../../src/pipeline/at-uri.ts';
import { normalizeDatetime, parseRecord } from '../../src/pipeline/collections.ts';
import { cidOf, DID, frameOf, REV, TIME } from '../firehose/fixtures.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { xrpcApp } from '../xrpc/fixture.ts';
import { expectationProblems, syntaxVectors, type Expectations } from './vectors.ts';

interface Check extends Expectations {
  readonly name: string;
  readonly accepts: (vector: string) => boolean | Promise<boolean>;
  /** invalid-vector files this check is meant for, when not all of the family's */
  readonly invalidFiles?: readonly string[];
}

interface Family {
  readonly name: string;
  readonly validFiles: readonly string[];
  readonly invalidFiles: readonly string[];
  readonly checks: readonly Check[];
}

/** false when `run` throws one of `errors` (the check's documented refusal); other errors fail the test. */
const refusal =
  <T = string>(errors: ReadonlyArray<abstract new (...args: never[]) => Error>, run: (input: T) => unknown) =>
  (input: T): boolean => {
    try {
      run(input);
      return true;
    } catch (err) {
      if (errors.some((type) => err instanceof type)) return false;
      throw err;
    }
  };

// ---- inputs wrapped the way they arrive -------------------------------------------------------

const COMMIT_CID = toCidLink(cidOf(new Uint8Array([1])));
const commitFrame = (patch: Record<string, unknown>): Uint8Array =>
  frameOf(
    { op: 1, t: '#commit' },
    { seq: 1, repo: DID, rev: REV, since: null, commit: COMMIT_CID, blocks: toBytes(new Uint8Array([0])), ops: [], time: TIME, ...patch },
  );
const deleteAt = (path: string): Uint8Array => commitFrame({ ops: [{ action: 'delete', path, cid: null }] });
const decodes = refusal([FrameError], decodeFrame);

const parsed = (collection: string, rkey: string, record: unknown): boolean => {
  const result = parseRecord(collection, rkey, record);
  if (result === null) throw new Error(`${collection} is not indexed`);
  return result.ok;
};
const STRONG_REF = { uri: `at://${DID}/app.bsky.feed.post/${REV}`, cid: 'bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq' };
const like = (patch: Record<string, unknown>) => ({ $type: 'app.bsky.feed.like', subject: STRONG_REF, createdAt: TIME, ...patch });
const post = (patch: Record<string, unknown>) => ({ $type: 'app.bsky.feed.post', text: 'hello', createdAt: TIME, ...patch });
const generator = { $type: 'app.bsky.feed.generator', did: 'did:web:feeds.example.com', displayName: 'feed', createdAt: TIME };

/** The vector as query parameter `name` (beside `others`) of a method with these lexicon params. */
const param = (schema: ObjectSchema, name: string, others: Record<string, string> = {}) =>
  refusal([XrpcError], (vector: string) => parseParams(schema, new URLSearchParams({ ...others, [name]: vector })));

const resolvesViaDns = async (vector: string): Promise<boolean> => {
  const resolver = new HandleResolver({
    resolveTxt: async () => [[`did=${vector}`]],
    fetch: async () => new Response('not found', { status: 404 }),
  });
  return (await resolver.resolve('alice.example.com')) === vector;
};

let database: MigratedDatabase;
let app: ReturnType<typeof xrpcApp>;
beforeAll(async () => {
  database = await migratedDatabase('interop_syntax', 1);
  app = xrpcApp(database.db, 'http://127.0.0.1:9');
});
afterAll(() => database.close());

/** An XRPC method we do not serve: 501 for a method name, 400 for anything else. */
const routedAsMethod = async (vector: string): Promise<boolean> => {
  const response = await app.handle(new Request(`http://appview.test/xrpc/${encodeURIComponent(vector)}`));
  if (response.status !== 501 && response.status !== 400) throw new Error(`unexpected HTTP ${response.status}`);
  return response.status === 501;
};

/** searchPosts `since`: 200 when taken, 400 when refused; anything else (a 500) fails the test. */
const searchesSince = async (vector: string): Promise<boolean> => {
  const query = new URLSearchParams({ q: 'hello', since: vector });
  const response = await app.handle(new Request(`http://appview.test/xrpc/app.bsky.feed.searchPosts?${query}`));
  if (response.status !== 200 && response.status !== 400) throw new Error(`unexpected HTTP ${response.status}: ${await response.text()}`);
  return response.status === 200;
};

// ---- what differs from the vectors on purpose ----------------------------------------------

const RESERVED_TLD = 'a TLD handle resolution refuses on purpose (.local, .arpa, .onion, ...): no lookup leaves for it';
const NOT_A_RECORD =
  'a record pointer (at://<did>/<collection>/<rkey>) is all a stored reference or a lookup can use: a bare repo or collection is refused';
const DASL_CID = "the lexicon's cid format is DASL's: CIDv1, base32, dag-cbor or raw, sha-256 (bafyrei…/bafkrei…); atproto writes no other";
const CID_LIBRARY = "@atcute/cid's parser takes atproto's CID form only (CIDv1, base32 'b', dag-cbor or raw, sha-256)";
const BASE32_ONLY = 'a blob link is shown in URLs in the base32 text form atproto serializes; other multibases are refused';
const YEAR_ZERO = 'year 0000 is not storable (timestamptz, years 1-9999); @atcute refuses it too';
const LIBRARY_LANG = (what: string) =>
  `@atcute's language format (one BCP 47 pattern) ${what}; records and parameters keep the library's rule (refusing a post over its langs would drop it), syntax.isLanguage is exact`;
const LIBRARY_URI = "@atcute's uri format allows only word characters in the scheme (RFC 3986 also allows + - .)";

// ---- the families ----------------------------------------------------------------------------

const FAMILIES: readonly Family[] = [
  {
    name: 'DID',
    validFiles: ['did_syntax_valid.txt'],
    invalidFiles: ['did_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isDid', accepts: syntax.isDid },
      { name: 'frame decoder (#identity did)', accepts: (did) => decodes(frameOf({ op: 1, t: '#identity' }, { seq: 1, did, time: TIME })) },
      { name: 'DID document id', accepts: refusal([DidDocumentError], (id) => parseDidDocument({ id })) },
      { name: 'stored reference (parseAtUri did)', accepts: (did) => parseAtUri(`at://${did}/app.bsky.feed.post/${REV}`)?.did === did },
      { name: 'handle resolver (DNS TXT did= answer)', accepts: resolvesViaDns },
      { name: 'XRPC identifier, taken as a DID (normalizeIdentifier)', accepts: (did) => normalizeIdentifier(did)?.startsWith('did:') === true },
      { name: 'config APPVIEW_DID', accepts: refusal([ConfigError], (did) => loadConfig({ APPVIEW_DID: did })) },
      { name: 'record field (app.bsky.graph.follow subject)', accepts: (subject) => parsed('app.bsky.graph.follow', REV, { $type: 'app.bsky.graph.follow', subject, createdAt: TIME }) },
    ],
  },
  {
    name: 'handle',
    validFiles: ['handle_syntax_valid.txt'],
    invalidFiles: ['handle_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isHandle', accepts: syntax.isHandle },
      {
        name: 'DID document alsoKnownAs',
        accepts: (handle) => parseDidDocument({ id: DID, alsoKnownAs: [`at://${handle}`] }).handle === handle.toLowerCase(),
      },
      { name: 'XRPC identifier, taken as a handle (normalizeIdentifier)', accepts: (handle) => normalizeIdentifier(handle) === handle.toLowerCase() },
      {
        name: 'handle resolver (normalizeHandle)',
        accepts: (handle) => normalizeHandle(handle) === handle.toLowerCase(),
        refusesValid: Object.fromEntries(
          [
            'SRI-NIC.ARPA',
            'laptop.local',
            'laptop.arpa',
            'expyuzz4wqqyqhjn.onion',
            'friend.expyuzz4wqqyqhjn.onion',
            'g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion',
            'friend.g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion',
            '2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion',
            'friend.2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion',
          ].map((handle) => [handle, RESERVED_TLD]),
        ),
      },
    ],
  },
  {
    name: 'AT identifier',
    validFiles: ['atidentifier_syntax_valid.txt'],
    invalidFiles: ['atidentifier_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isAtIdentifier', accepts: syntax.isAtIdentifier },
      { name: 'XRPC identifier (normalizeIdentifier)', accepts: (identifier) => normalizeIdentifier(identifier) !== null },
      { name: 'XRPC parameter (app.bsky.actor.getProfile actor)', accepts: param(AppBskyActorGetProfile.mainSchema.params, 'actor') },
    ],
  },
  {
    name: 'NSID',
    validFiles: ['nsid_syntax_valid.txt'],
    invalidFiles: ['nsid_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isNsid', accepts: syntax.isNsid },
      { name: 'frame decoder (#commit op collection)', accepts: (nsid) => decodes(deleteAt(`${nsid}/self`)) },
      { name: 'stored reference (parseAtUri collection)', accepts: (nsid) => parseAtUri(`at://${DID}/${nsid}/${REV}`)?.collection === nsid },
      { name: 'XRPC uri (parseUri collection)', accepts: (nsid) => parseUri(`at://${DID}/${nsid}/${REV}`)?.collection === nsid },
      { name: 'XRPC route /xrpc/<nsid> (501 for a method name, 400 otherwise)', accepts: routedAsMethod },
    ],
  },
  {
    name: 'record key',
    validFiles: ['recordkey_syntax_valid.txt'],
    invalidFiles: ['recordkey_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isRecordKey', accepts: syntax.isRecordKey },
      { name: 'frame decoder (#commit op rkey)', accepts: (rkey) => decodes(deleteAt(`com.example.thing/${rkey}`)) },
      { name: 'stored reference (parseAtUri)', accepts: (rkey) => parseAtUri(`at://${DID}/com.example.thing/${rkey}`)?.rkey === rkey },
      { name: 'XRPC uri (parseUri)', accepts: (rkey) => parseUri(`at://${DID}/com.example.thing/${rkey}`)?.rkey === rkey },
      { name: 'record of key type any (app.bsky.feed.generator)', accepts: (rkey) => parsed('app.bsky.feed.generator', rkey, generator) },
    ],
  },
  {
    name: 'TID',
    validFiles: ['tid_syntax_valid.txt'],
    invalidFiles: ['tid_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isTid', accepts: syntax.isTid },
      { name: 'frame decoder (#commit rev)', accepts: (rev) => decodes(commitFrame({ rev })) },
      { name: 'frame decoder (#commit since)', accepts: (since) => decodes(commitFrame({ since })) },
      { name: 'frame decoder (#sync rev)', accepts: (rev) => decodes(frameOf({ op: 1, t: '#sync' }, { seq: 1, did: DID, blocks: toBytes(new Uint8Array([0])), rev, time: TIME })) },
      { name: 'record of key type tid (app.bsky.feed.post)', accepts: (rkey) => parsed('app.bsky.feed.post', rkey, post({})) },
    ],
  },
  {
    name: 'AT-URI',
    validFiles: ['aturi_syntax_valid.txt'],
    invalidFiles: ['aturi_syntax_invalid.txt'],
    checks: [
      { name: 'syntax.isAtUri', accepts: syntax.isAtUri },
      { name: 'XRPC parameter (app.bsky.feed.getPostThread uri)', accepts: param(AppBskyFeedGetPostThread.mainSchema.params, 'uri') },
      ...[
        { name: 'stored reference (parseAtUri)', parse: parseAtUri },
        { name: 'XRPC uri (parseUri)', parse: parseUri },
      ].map(({ name, parse }) => ({
        name,
        accepts: (uri: string) => parse(uri) !== null,
        refusesValid: Object.fromEntries(
          [
            'at://did:plc:asdf123',
            'at://user.bsky.social',
            'at://did:plc:asdf123/com.atproto.feed.post',
            'at://did:abc:123',
            'at://did:plc:asdf123/com.atproto.feed.postV2',
          ].map((uri) => [uri, NOT_A_RECORD]),
        ),
      })),
    ],
  },
  {
    name: 'datetime',
    validFiles: ['datetime_syntax_valid.txt'],
    invalidFiles: ['datetime_syntax_invalid.txt', 'datetime_parse_invalid.txt'],
    checks: [
      {
        name: 'record createdAt (lexicon format, then normalizeDatetime)',
        accepts: (createdAt) => parsed('app.bsky.feed.like', REV, like({ createdAt })),
        refusesValid: { '0000-01-01T00:00:00.000Z': YEAR_ZERO },
      },
      {
        // runs after the lexicon's format check: the syntax-invalid vectors are not its job
        name: 'normalizeDatetime (the instant)',
        accepts: (value) => normalizeDatetime(value) !== null,
        invalidFiles: ['datetime_parse_invalid.txt'],
        refusesValid: { '0000-01-01T00:00:00.000Z': YEAR_ZERO },
      },
      {
        // the lexicon gives since/until no format ("a datetime, or just an ISO date"): only the instant is checked
        name: 'XRPC app.bsky.feed.searchPosts since (HTTP 200 or 400)',
        accepts: searchesSince,
        invalidFiles: ['datetime_parse_invalid.txt'],
        refusesValid: { '0000-01-01T00:00:00.000Z': YEAR_ZERO },
      },
    ],
  },
  {
    name: 'language',
    validFiles: ['language_syntax_valid.txt'],
    invalidFiles: ['language_syntax_invalid.txt', 'language_parse_invalid.txt'],
    checks: [
      { name: 'syntax.isLanguage', accepts: syntax.isLanguage },
      ...[
        { name: 'record field (app.bsky.feed.post langs)', accepts: (lang: string) => parsed('app.bsky.feed.post', REV, post({ langs: [lang] })) },
        { name: 'XRPC parameter (app.bsky.feed.searchPosts lang)', accepts: param(AppBskyFeedSearchPosts.mainSchema.params, 'lang', { q: 'x' }) },
      ].map((check) => ({
        ...check,
        refusesValid: { 'X-fr-CH': LIBRARY_LANG('wants a lower-case private-use x'), 'de-X-foo': LIBRARY_LANG('wants a lower-case private-use x') },
        acceptsInvalid: {
          jaja: LIBRARY_LANG('takes a 4-letter primary subtag'),
          JA: LIBRARY_LANG('takes an upper-case primary subtag'),
          'de-DE-1901-1901': LIBRARY_LANG('does not look for repeated variants'),
          'en-rozaj-ROZAJ': LIBRARY_LANG('does not look for repeated variants'),
          'en-a-foo-a-bar': LIBRARY_LANG('does not look for repeated extension singletons'),
          'en-u-co-phonebk-U-ca-buddhist': LIBRARY_LANG('does not look for repeated extension singletons'),
        },
      })),
    ],
  },
  {
    name: 'CID',
    validFiles: ['cid_syntax_valid.txt'],
    invalidFiles: ['cid_syntax_invalid.txt'],
    checks: (() => {
      const valid = syntaxVectors('cid_syntax_valid.txt').map(([, vector]) => vector);
      const base32 = (vector: string) => vector.startsWith('bafy');
      const profile = { $type: 'app.bsky.actor.profile' };
      return [
        {
          name: 'record field (strongRef cid, app.bsky.feed.like subject)',
          accepts: (cid: string) => parsed('app.bsky.feed.like', REV, like({ subject: { ...STRONG_REF, cid } })),
          refusesValid: Object.fromEntries(valid.map((cid) => [cid, DASL_CID])),
        },
        {
          name: 'getRecord answer cid (profile fetcher)',
          accepts: (cid: string) => readAnswer(JSON.stringify({ uri: `at://${DID}/app.bsky.actor.profile/self`, cid, value: profile }), DID).kind === 'found',
          refusesValid: Object.fromEntries(valid.map((cid) => [cid, CID_LIBRARY])),
        },
        {
          name: 'blob link shown in image URLs (profileFields avatar)',
          accepts: (cid: string) => profileFields({ avatar: { $type: 'blob', ref: { $link: cid }, mimeType: 'image/png', size: 1 } }).avatarCid === cid,
          refusesValid: Object.fromEntries(valid.filter((cid) => !base32(cid)).map((cid) => [cid, BASE32_ONLY])),
        },
      ];
    })(),
  },
  {
    name: 'URI',
    validFiles: ['uri_syntax_valid.txt'],
    invalidFiles: ['uri_syntax_invalid.txt'],
    checks: [
      {
        name: 'record field (app.bsky.embed.external uri)',
        accepts: (uri) => parsed('app.bsky.feed.post', REV, post({ embed: { $type: 'app.bsky.embed.external', external: { uri, title: '', description: '' } } })),
        refusesValid: { 'content-type:text/plan': LIBRARY_URI, 'microsoft.windows.camera:thing': LIBRARY_URI },
      },
    ],
  },
];

for (const family of FAMILIES) {
  describe(`${family.name} vectors`, () => {
    const valid = family.validFiles.flatMap(syntaxVectors);
    const invalid = family.invalidFiles.flatMap(syntaxVectors);
    test('the files are there and not empty', () => {
      expect(valid.length).toBeGreaterThan(0);
      expect(invalid.length).toBeGreaterThan(0);
    });
    for (const check of family.checks) {
      describe(check.name, () => {
        const ownInvalid = check.invalidFiles ? check.invalidFiles.flatMap(syntaxVectors) : invalid;
        test('its listed exceptions are vectors of the right side', () => {
          expect(expectationProblems(check, valid, ownInvalid)).toEqual([]);
        });
        test.each(valid)('accepts %s', async (_name, vector) => {
          const refused = check.refusesValid && Object.hasOwn(check.refusesValid, vector);
          expect(await check.accepts(vector)).toBe(!refused);
        });
        test.each(ownInvalid)('refuses %s', async (_name, vector) => {
          const accepted = check.acceptsInvalid && Object.hasOwn(check.acceptsInvalid, vector);
          expect(await check.accepts(vector)).toBe(Boolean(accepted));
        });
      });
    }
  });
}

describe('the wrapping is right (controls)', () => {
  test('a real CID passes each CID check', () => {
    const cid = STRONG_REF.cid;
    expect(parsed('app.bsky.feed.like', REV, like({}))).toBe(true);
    expect(readAnswer(JSON.stringify({ uri: `at://${DID}/app.bsky.actor.profile/self`, cid, value: { $type: 'app.bsky.actor.profile' } }), DID).kind).toBe('found');
    expect(profileFields({ avatar: { $type: 'blob', ref: { $link: cid }, mimeType: 'image/png', size: 1 } }).avatarCid).toBe(cid);
  });
});
