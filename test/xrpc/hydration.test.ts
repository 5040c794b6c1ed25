/**
 * Hydration without N+1, and the XRPC plumbing (parameters, cursors, unknown methods, health,
 * the AppView's DID document).
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { AppBskyFeedGetAuthorFeed, AppBskyFeedGetPosts } from '@atcute/bluesky';
import * as v from '@atcute/lexicons/validations';
import { decodeCursor, encodeCursor } from '../../src/api/xrpc/cursor.ts';
import { parseParams } from '../../src/api/xrpc/params.ts';
import { Hydrator } from '../../src/hydration/hydrator.ts';
import type { Db } from '../../src/hydration/loaders.ts';
import { Views } from '../../src/hydration/views.ts';
import { DEFAULT_VIDEO_URL_TEMPLATE } from '../../src/hydration/views.ts';
import { DEFAULT_IMAGE_URL_TEMPLATE } from '../../src/identity/profile-view.ts';
import { APPVIEW_DID, expectValid, get, indexedNetwork, query, xrpcApp, type IndexedNetwork } from './fixture.ts';

let net: IndexedNetwork;
beforeAll(async () => {
  net = await indexedNetwork('xhydrate', { seed: 5, accounts: 40, commits: 3000, accountShare: 0.01 });
});

/** A Db that counts statements: every call of `run` is one statement in the hydration layer. */
function counting(db: Db): { db: Db; count: () => number } {
  let statements = 0;
  return {
    db: { run: (task) => (statements++, db.run(task)) },
    count: () => statements,
  };
}

describe('hydration', () => {
  test('a page of 100 posts (replies, quotes, viewer state) costs at most 8 statements, like a page of 10', async () => {
    const rows = await net.db.run(
      (sql) => sql`select author_id, rkey from posts order by (quote_actor_id is not null) desc, (reply_parent_actor_id is not null) desc, rkey limit 100`,
    );
    expect(rows.length).toBe(100);
    const keys = rows.map((row) => ({ actorId: row.authorId as number, rkey: row.rkey as string }));
    const [viewer] = await net.db.run((sql) => sql`select author_id from likes group by author_id order by count(*) desc limit 1`);
    const statementsFor = async (page: typeof keys) => {
      const counter = counting(net.db);
      const state = await new Hydrator(counter.db).hydrate({ posts: page, replyContext: true }, viewer!.authorId);
      const views = new Views(state, { imageUrlTemplate: DEFAULT_IMAGE_URL_TEMPLATE, videoUrlTemplate: DEFAULT_VIDEO_URL_TEMPLATE });
      const feed = page.map((key) => views.feedViewPost(key)).filter((item) => item !== undefined);
      expectValid(AppBskyFeedGetAuthorFeed.mainSchema, { feed });
      return { statements: counter.count(), items: feed.length, state };
    };
    const big = await statementsFor(keys);
    const small = await statementsFor(keys.slice(0, 10));
    expect(big.items).toBeGreaterThan(80);
    // posts (page, quoted + reply parents, quoted of quoted), actors, relations, blocks, viewer likes/reposts, documents
    expect(big.statements).toBeLessThanOrEqual(8);
    expect(small.statements).toBeLessThanOrEqual(8);
    expect(big.state.posts.size).toBeGreaterThan(100);
  });

  test('through HTTP: getAuthorFeed with limit 100 runs as many statements as with limit 5', async () => {
    const [author] = await net.db.run((sql) => sql`select a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.posts_count desc, a.did limit 1`);
    const statementsFor = async (limit: number) => {
      const counter = counting(net.db);
      const app = xrpcApp(counter.db, net.sim.url);
      const { status, body } = await get(app, query('app.bsky.feed.getAuthorFeed', { actor: author!.did, limit }));
      expect(status).toBe(200);
      expectValid(AppBskyFeedGetAuthorFeed.mainSchema, body);
      return { statements: counter.count(), items: (body.feed as unknown[]).length };
    };
    const big = await statementsFor(100);
    const small = await statementsFor(5);
    expect(big.items).toBeGreaterThan(50);
    expect(big.statements).toBe(small.statements);
    expect(big.statements).toBeLessThanOrEqual(10);
  });
});

describe('plumbing', () => {
  test('parameters: types, defaults, clamped limits, arrays, errors naming the parameter', () => {
    const schema = v.object({
      actor: v.actorIdentifierString(),
      limit: v.optional(v.constrain(v.integer(), [v.integerRange(1, 100)]), 50),
      includePins: v.optional(v.boolean(), false),
      uris: v.optional(v.array(v.resourceUriString())),
    });
    const parse = (qs: string) => parseParams(schema, new URLSearchParams(qs));
    expect(parse('actor=alice.test')).toEqual({ actor: 'alice.test', limit: 50, includePins: false });
    expect(parse('actor=alice.test&limit=1000&includePins=true')).toMatchObject({ limit: 100, includePins: true });
    expect(parse('actor=alice.test&limit=0')).toMatchObject({ limit: 1 });
    expect(parse('actor=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa&uris=at://a.test/x.y.z/1&uris=at://b.test/x.y.z/2').uris).toHaveLength(2);
    const failures: Array<[string, string]> = [
      ['', 'actor'],
      ['actor=alice.test&limit=ten', 'limit'],
      ['actor=alice.test&limit=1.5', 'limit'],
      ['actor=alice.test&includePins=yes', 'includePins'],
      ['actor=alice.test&actor=bob.test', 'actor'],
      ['actor=not%20a%20handle', 'actor'],
      ['actor=alice.test&uris=nope', 'uris'],
    ];
    for (const [qs, name] of failures) {
      let message = '';
      try {
        parse(qs);
      } catch (error) {
        expect((error as { status: number }).status).toBe(400);
        expect((error as { error: string }).error).toBe('InvalidRequest');
        message = (error as Error).message;
      }
      expect([qs, message.includes(name)]).toEqual([qs, true]);
    }
  });

  test('cursors are opaque, round-trip, and malformed ones are rejected', () => {
    const shape = ['time', 'int', 'text'] as const;
    const cursor = encodeCursor(['2025-01-01T00:00:00.123456Z', 7, '3abc']);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, shape)).toEqual(['2025-01-01T00:00:00.123456Z', 7, '3abc']);
    expect(decodeCursor(undefined, shape)).toBeUndefined();
    for (const bad of ['!!', 'bm90IGpzb24', encodeCursor(['x', 7, '3abc']), encodeCursor(['2025-01-01T00:00:00Z', 'seven', 'r']), encodeCursor([1])]) {
      expect(() => decodeCursor(bad, shape)).toThrow('cursor');
    }
  });

  test('HTTP: bad cursor, unknown methods, POST, _health, did.json', async () => {
    const [author] = await net.db.run((sql) => sql`select did from actors where status is null order by did limit 1`);
    const badCursor = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: author!.did, cursor: 'garbage' }));
    expect(badCursor).toEqual({ status: 400, body: { error: 'InvalidRequest', message: 'cursor is not valid' } });
    expect(await get(net.app, '/xrpc/app.bsky.unspecced.getTrends')).toEqual({
      status: 501,
      body: { error: 'MethodNotImplemented', message: 'Method Not Implemented: app.bsky.unspecced.getTrends' },
    });
    expect((await get(net.app, '/xrpc/com.atproto.repo.createRecord')).status).toBe(501);
    const post = await net.app.handle(new Request('http://aqueduct.test/xrpc/app.bsky.feed.getPosts', { method: 'POST' }));
    expect(post.status).toBe(400);
    expect(await get(net.app, '/xrpc/_health')).toEqual({ status: 200, body: { version: '0.1.0' } });
    const failing = xrpcApp({ run: () => Promise.reject(new Error('down')) }, net.sim.url);
    expect((await get(failing, '/xrpc/_health')).status).toBe(503);
    const did = await get(net.app, '/.well-known/did.json');
    expect(did.body).toMatchObject({ id: APPVIEW_DID, service: [{ id: '#bsky_appview', type: 'BskyAppView', serviceEndpoint: 'https://appview.test' }, {}] });
  });

  test('getPosts caps the number of URIs at the lexicon maximum', async () => {
    const uris = Array.from({ length: 26 }, (_, i) => `at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3aaaaaaaaaa${String(i).padStart(2, 'a')}`);
    const answer = await get(net.app, query('app.bsky.feed.getPosts', { uris }));
    expect(answer.status).toBe(400);
    expect(answer.body.message).toContain('uris');
    const ok = await get(net.app, query('app.bsky.feed.getPosts', { uris: uris.slice(0, 25) }));
    expectValid(AppBskyFeedGetPosts.mainSchema, ok.body);
  });
});
