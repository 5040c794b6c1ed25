import { afterAll, beforeAll, describe, expect, test } from 'bun:test';

import { ProfileFetcher, ProfileFetchError, readAnswer } from '../../src/identity/profile-fetcher.ts';
import { imageUrl, imageUrlTemplateProblem, profileFields, DEFAULT_IMAGE_URL_TEMPLATE } from '../../src/identity/profile-view.ts';
import { testStrangers } from '../support/strangers.ts';

const DID = 'did:plc:aliceaaaaaaaaaaaaaaaaaaa';
const CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
const BLOB = 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy';
const URI = `at://${DID}/app.bsky.actor.profile/self`;
const PROFILE = {
  $type: 'app.bsky.actor.profile',
  displayName: 'Alice',
  description: 'hi',
  avatar: { $type: 'blob', ref: { $link: BLOB }, mimeType: 'image/jpeg', size: 1234 },
  pinnedPost: { uri: `at://${DID}/app.bsky.feed.post/3kabc`, cid: CID },
  createdAt: '2024-05-01T10:00:00Z',
};

describe('readAnswer', () => {
  test('a valid answer keeps the record as JSON with {"$link"}', () => {
    const result = readAnswer(JSON.stringify({ uri: URI, cid: CID, value: PROFILE }), DID);
    expect(result.kind).toBe('found');
    if (result.kind !== 'found') return;
    expect(result.cid).toBe(CID);
    expect(result.createdAt).toBe('2024-05-01T10:00:00.000Z');
    expect(JSON.parse(result.record)).toEqual(PROFILE);
  });

  test.each([
    ['not json', '{', 'not-json'],
    ['an array', '[]', 'not-an-object'],
    ['another repo', JSON.stringify({ uri: 'at://did:plc:other/app.bsky.actor.profile/self', cid: CID, value: PROFILE }), 'wrong-uri'],
    ['no cid', JSON.stringify({ uri: URI, value: PROFILE }), 'no-cid'],
    ['a bad cid', JSON.stringify({ uri: URI, cid: 'bafy-nope', value: PROFILE }), 'bad-cid'],
    ['no value', JSON.stringify({ uri: URI, cid: CID }), 'lexicon'],
    ['a wrong $type', JSON.stringify({ uri: URI, cid: CID, value: { ...PROFILE, $type: 'app.bsky.feed.post' } }), 'lexicon'],
    ['a bad avatar', JSON.stringify({ uri: URI, cid: CID, value: { ...PROFILE, avatar: 'x' } }), 'lexicon'],
    ['a bad date', JSON.stringify({ uri: URI, cid: CID, value: { ...PROFILE, createdAt: '0000-00-00T00:00:00Z' } }), 'lexicon'],
  ])('%s is invalid', (_name, text, reason) => {
    const result = readAnswer(text, DID);
    expect(result.kind).toBe('invalid');
    if (result.kind === 'invalid') expect(result.reason).toBe(reason);
  });
});

describe('ProfileFetcher', () => {
  let server: ReturnType<typeof Bun.serve>;
  let mode = 'ok';
  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        expect(url.pathname).toBe('/xrpc/com.atproto.repo.getRecord');
        expect(url.searchParams.get('repo')).toBe(DID);
        expect(url.searchParams.get('collection')).toBe('app.bsky.actor.profile');
        expect(url.searchParams.get('rkey')).toBe('self');
        switch (mode) {
          case 'missing':
            return Response.json({ error: 'RecordNotFound', message: 'Could not locate record' }, { status: 400 });
          case 'error':
            return new Response('oops', { status: 502 });
          case 'slow':
            await Bun.sleep(500);
            return Response.json({ uri: URI, cid: CID, value: PROFILE });
          case 'huge':
            return Response.json({ uri: URI, cid: CID, value: { ...PROFILE, pad: 'x'.repeat(200_000) } });
          default:
            return Response.json({ uri: URI, cid: CID, value: PROFILE });
        }
      },
    });
  });
  afterAll(() => server.stop(true));
  const pds = () => `http://localhost:${server.port}`;

  test('found, absent, invalid, transient', async () => {
    const fetcher = new ProfileFetcher({ timeoutMs: 200, strangers: testStrangers() });
    mode = 'ok';
    expect((await fetcher.fetch(pds(), DID)).kind).toBe('found');
    mode = 'missing';
    expect(await fetcher.fetch(pds(), DID)).toEqual({ kind: 'absent' });
    mode = 'huge';
    expect(await fetcher.fetch(pds(), DID)).toEqual({ kind: 'invalid', reason: 'too-large' });
    mode = 'error';
    await expect(fetcher.fetch(pds(), DID)).rejects.toBeInstanceOf(ProfileFetchError);
    mode = 'slow';
    await expect(fetcher.fetch(pds(), DID)).rejects.toBeInstanceOf(ProfileFetchError);
  });

  test('plain http only to ALLOW_PRIVATE_HOSTS; a private address is refused, never dialed', async () => {
    const fetcher = new ProfileFetcher({ timeoutMs: 200 });
    expect(await fetcher.fetch('http://pds.example.com', DID)).toEqual({ kind: 'invalid', reason: 'insecure-endpoint' });
    expect(await fetcher.fetch('ftp://pds.example.com', DID)).toEqual({ kind: 'invalid', reason: 'insecure-endpoint' });
    // the test server itself, by a name that the guard does not let through
    expect(await fetcher.fetch(pds(), DID)).toEqual({ kind: 'invalid', reason: 'insecure-endpoint' });
    expect(await fetcher.fetch(`https://127.0.0.1:${server.port}`, DID)).toEqual({ kind: 'invalid', reason: 'refused-endpoint' });
    expect(await fetcher.fetch('https://[::ffff:169.254.169.254]', DID)).toEqual({ kind: 'invalid', reason: 'refused-endpoint' });
  });
});

describe('profile-view', () => {
  test('profileFields reads what views show, null for what is missing or malformed', () => {
    expect(profileFields(PROFILE)).toEqual({
      displayName: 'Alice',
      description: 'hi',
      avatarCid: BLOB,
      bannerCid: null,
      pinnedPost: { uri: `at://${DID}/app.bsky.feed.post/3kabc`, cid: CID },
    });
    expect(profileFields({ displayName: 3, banner: { ref: { $link: 'nope' } }, pinnedPost: 'x' })).toEqual({
      displayName: null,
      description: null,
      avatarCid: null,
      bannerCid: null,
      pinnedPost: null,
    });
    expect(profileFields(null).avatarCid).toBeNull();
  });

  test('imageUrl fills the template or builds a getBlob URL', () => {
    expect(imageUrl(DEFAULT_IMAGE_URL_TEMPLATE, { kind: 'avatar', did: DID, cid: BLOB })).toBe(
      `https://cdn.bsky.app/img/avatar/plain/${DID}/${BLOB}@jpeg`,
    );
    expect(imageUrl('pds', { kind: 'banner', did: DID, cid: BLOB, pdsEndpoint: 'https://pds.example.com' })).toBe(
      `https://pds.example.com/xrpc/com.atproto.sync.getBlob?did=${encodeURIComponent(DID)}&cid=${BLOB}`,
    );
    expect(imageUrl('pds', { kind: 'banner', did: DID, cid: BLOB })).toBeNull();
    expect(imageUrl(DEFAULT_IMAGE_URL_TEMPLATE, { kind: 'avatar', did: 'nope', cid: BLOB })).toBeNull();
  });

  test.each([
    [DEFAULT_IMAGE_URL_TEMPLATE, true],
    ['pds', true],
    ['http://img.local/{did}/{cid}', true],
    ['https://cdn.example/{did}', false],
    ['not a url {did} {cid}', false],
    ['ftp://x/{did}/{cid}', false],
  ])('IMAGE_URL_TEMPLATE %p valid: %p', (template, ok) => {
    expect(imageUrlTemplateProblem(template) === null).toBe(ok);
  });
});
