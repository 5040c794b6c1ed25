/**
 * Service authentication and viewer-specific views: tokens signed with the simulated accounts'
 * real keys (their DID documents come from the simulator's PLC directory), blocks both ways,
 * the timeline, and getFeed against a feed generator stub.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import {
  AppBskyActorGetProfile,
  AppBskyFeedGetActorLikes,
  AppBskyFeedGetFeed,
  AppBskyFeedGetPosts,
  AppBskyFeedGetPostThread,
  AppBskyFeedGetTimeline,
  AppBskyGraphGetBlocks,
} from '@atcute/bluesky';
import type { Server } from 'bun';
import { APPVIEW_DID, expectValid, firstRow, get, indexedNetwork, query, xrpcApp, type IndexedNetwork } from './fixture.ts';
import { testStrangers } from '../support/strangers.ts';

type Body = Record<string, any>;

let net: IndexedNetwork;
let feedServer: Server<undefined>;
let skeleton: { feed: Array<{ post: string }>; cursor?: string } = { feed: [] };
let skeletonAuth: string | null = null;
let feedRequests = 0;

beforeAll(async () => {
  net = await indexedNetwork('xauth', { seed: 9, accounts: 50, commits: 4000 });
  feedServer = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(request) {
      feedRequests++;
      const url = new URL(request.url);
      if (url.pathname === '/.well-known/did.json') {
        return Response.json({
          id: 'did:web:feeds.sim.test',
          service: [{ id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: `http://127.0.0.1:${feedServer.port}` }],
        });
      }
      if (url.pathname === '/xrpc/app.bsky.feed.getFeedSkeleton') {
        skeletonAuth = request.headers.get('authorization');
        return Response.json(skeleton);
      }
      return new Response('not found', { status: 404 });
    },
  });
  // feeds.sim.test (the simulated generators' service DID) is this stub
  net.app = xrpcApp(net.db, net.sim.url, {
    strangers: testStrangers((input, init) => globalThis.fetch(input.replace(/^https?:\/\/feeds\.sim\.test/, `http://127.0.0.1:${feedServer.port}`), init)),
  });
});
afterAll(async () => {
  await feedServer?.stop(true);
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function token(did: string, claims: Record<string, unknown> = {}, signer = did): string {
  const key = net.sim.network.directory.byDid(signer)!.key;
  const header = b64({ alg: key.jwtAlg, typ: 'JWT' });
  const payload = b64({ iss: did, aud: APPVIEW_DID, exp: Math.floor(Date.now() / 1000) + 60, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ...claims });
  const signature = Buffer.from(key.sign(new TextEncoder().encode(`${header}.${payload}`))).toString('base64url');
  return `Bearer ${header}.${payload}.${signature}`;
}

const as = (did: string, lxm: string, claims: Record<string, unknown> = {}, signer = did) => ({ authorization: token(did, { lxm, ...claims }, signer) });

describe('service auth', () => {
  test('a valid token adds viewer state; expired, wrong aud, wrong lxm, bad signature and garbage are 401', async () => {
    // a follow with no block either way (a block hides `following`), picked in key order
    const follow = await firstRow(net.db, `select a.did as viewer, s.did as subject from follows f join actors a on a.id = f.author_id and a.status is null
      join actors s on s.id = f.subject_actor_id and s.status is null where f.author_id <> f.subject_actor_id
      and not exists (select 1 from blocks b where (b.author_id, b.subject_actor_id) in ((a.id, s.id), (s.id, a.id)))
      and not exists (select 1 from list_blocks b join list_items i on i.ref_actor_id = b.ref_actor_id and i.ref_rkey = b.ref_rkey
        where (b.author_id, i.subject_actor_id) in ((a.id, s.id), (s.id, a.id)))
      order by f.author_id, f.rkey limit 1`);
    const nsid = 'app.bsky.actor.getProfile';
    const path = query(nsid, { actor: follow.subject });
    const ok = await get(net.app, path, as(follow.viewer, nsid));
    expect(ok.status).toBe(200);
    expectValid(AppBskyActorGetProfile.mainSchema, ok.body);
    expect(ok.body.viewer.following).toStartWith(`at://${follow.viewer}/app.bsky.graph.follow/`);
    expect((await get(net.app, path, as(follow.viewer, nsid, { aud: `${APPVIEW_DID}#bsky_appview` }))).status).toBe(200);
    expect((await get(net.app, path)).body.viewer).toBeUndefined();

    const cases: Array<[Record<string, string>, string]> = [
      [as(follow.viewer, nsid, { exp: Math.floor(Date.now() / 1000) - 60 }), 'JwtExpired'],
      [as(follow.viewer, nsid, { aud: 'did:web:someone-else.test' }), 'BadJwtAudience'],
      [as(follow.viewer, 'app.bsky.feed.getTimeline'), 'BadJwtLexiconMethod'],
      [as(follow.viewer, nsid, {}, follow.subject), 'BadJwtSignature'],
      [{ authorization: 'Bearer not.a.jwt' }, 'BadJwt'],
      [{ authorization: 'Basic abc' }, 'AuthRequired'],
    ];
    for (const [headers, error] of cases) {
      const answer = await get(net.app, path, headers);
      expect([error, answer.status, answer.body.error]).toEqual([error, 401, error]);
    }
  });

  test('an authenticated viewer has a budget of its own: past it 429 with retry-after, other viewers unaffected', async () => {
    const limited = xrpcApp(net.db, net.sim.url, { viewerRateLimit: { limit: 3, windowSeconds: 300 } });
    const [first, second] = await net.db.run((sql) => sql<{ did: string }[]>`select did from actors where status is null order by did limit 2`);
    const nsid = 'app.bsky.actor.getProfile';
    const path = query(nsid, { actor: first!.did });
    const answers: Response[] = [];
    for (let i = 0; i < 4; i++) answers.push(await limited.handle(new Request(`http://aqueduct.test${path}`, { headers: as(first!.did, nsid) })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(((await answers[3]!.json()) as { error: string }).error).toBe('RateLimitExceeded');
    expect(Number(answers[3]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answers[2]!.headers.get('ratelimit-remaining')).toBe('0');
    expect(answers[2]!.headers.get('ratelimit-limit')).toBe('3');
    // another viewer, and the same requests anonymously, are not held to that budget
    expect((await get(limited, path, as(second!.did, nsid))).status).toBe(200);
    expect((await get(limited, path)).status).toBe(200);
  });

  test('getTimeline: required auth; pages through followed accounts without gaps or repeats', async () => {
    expect((await get(net.app, query('app.bsky.feed.getTimeline', {}))).status).toBe(401);
    // a viewer with no blocks either way, so that every followed post shows
    const { did, id } = await firstRow(net.db, `select a.did, a.id from actors a join actor_counts c on c.actor_id = a.id where a.status is null
      and not exists (select 1 from blocks b where b.author_id = a.id or b.subject_actor_id = a.id)
      and not exists (select 1 from list_blocks b where b.author_id = a.id)
      and not exists (select 1 from list_blocks b join list_items i on i.ref_actor_id = b.ref_actor_id and i.ref_rkey = b.ref_rkey where i.subject_actor_id = a.id)
      order by c.follows_count desc, a.did limit 1`);
    const expected = await net.db.run(
      (sql) => sql`
        with authors as (select subject_actor_id as id from follows where author_id = ${id} union select ${id}::int4)
        select count(*)::int as n from (
          select p.author_id from posts p join authors on p.author_id = authors.id
          union all
          select r.author_id from reposts r join authors on r.author_id = authors.id
            where exists (select 1 from posts s join actors sa on sa.id = s.author_id and sa.status is null
              where s.author_id = r.subject_actor_id and s.rkey = r.subject_rkey)
        ) x join actors a on a.id = x.author_id and a.status is null`,
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await get(net.app, query('app.bsky.feed.getTimeline', { limit: 30, cursor }), as(did, 'app.bsky.feed.getTimeline'));
      expect(status).toBe(200);
      expectValid(AppBskyFeedGetTimeline.mainSchema, body);
      for (const item of body.feed as Body[]) seen.push(`${item.post.uri} ${item.reason?.uri ?? ''}`);
      const times = (body.feed as Body[]).map((item) => item.reason?.indexedAt ?? item.post.record.createdAt);
      expect(times.length).toBeGreaterThan(0);
      cursor = body.cursor;
      pages++;
    } while (cursor && pages < 200);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(expected[0]!.n);
    expect(seen.length).toBeGreaterThan(100);
  });

  test('blocks both ways: blocked profile viewer state, blockedPost in threads, viewBlocked in embeds, BlockedActor feeds', async () => {
    const block = await firstRow(net.db, `select a.did as blocker, s.did as blocked, s.id as blocked_id from blocks b
      join actors a on a.id = b.author_id and a.status is null join actors s on s.id = b.subject_actor_id and s.status is null
      where exists (select 1 from posts p where p.author_id = b.subject_actor_id) and b.author_id <> b.subject_actor_id
        and not exists (select 1 from blocks r where r.author_id = b.subject_actor_id and r.subject_actor_id = b.author_id)
        and not exists (select 1 from list_blocks r where r.author_id = b.subject_actor_id)
      order by a.did, s.did limit 1`);
    const profile = await get(net.app, query('app.bsky.actor.getProfile', { actor: block.blocked }), as(block.blocker, 'app.bsky.actor.getProfile'));
    expectValid(AppBskyActorGetProfile.mainSchema, profile.body);
    expect(profile.body.viewer.blocking).toStartWith(`at://${block.blocker}/app.bsky.graph.block/`);
    const reverse = await get(net.app, query('app.bsky.actor.getProfile', { actor: block.blocker }), as(block.blocked, 'app.bsky.actor.getProfile'));
    expect(reverse.body.viewer.blockedBy).toBe(true);

    const feed = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: block.blocked }), as(block.blocker, 'app.bsky.feed.getAuthorFeed'));
    expect(feed).toMatchObject({ status: 400, body: { error: 'BlockedActor' } });
    const feedBack = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: block.blocker }), as(block.blocked, 'app.bsky.feed.getAuthorFeed'));
    expect(feedBack).toMatchObject({ status: 400, body: { error: 'BlockedByActor' } });

    const [post] = await net.db.run((sql) => sql`select rkey from posts where author_id = ${block.blockedId} order by rkey limit 1`);
    const uri = `at://${block.blocked}/app.bsky.feed.post/${post!.rkey}`;
    const thread = await get(net.app, query('app.bsky.feed.getPostThread', { uri }), as(block.blocker, 'app.bsky.feed.getPostThread'));
    expectValid(AppBskyFeedGetPostThread.mainSchema, thread.body);
    expect(thread.body.thread).toMatchObject({ $type: 'app.bsky.feed.defs#blockedPost', uri, blocked: true, author: { did: block.blocked } });

    const quote = await net.db.run((sql) => sql`select a.did, p.rkey from posts p join actors a on a.id = p.author_id and a.status is null
      where p.quote_actor_id = ${block.blockedId} and p.embed->>'$type' = 'app.bsky.embed.record' order by a.did, p.rkey limit 1`);
    if (quote.length > 0) {
      const posts = await get(net.app, query('app.bsky.feed.getPosts', { uris: [`at://${quote[0]!.did}/app.bsky.feed.post/${quote[0]!.rkey}`] }), as(block.blocker, 'app.bsky.feed.getPosts'));
      expectValid(AppBskyFeedGetPosts.mainSchema, posts.body);
      expect(posts.body.posts[0].embed.record.$type).toBe('app.bsky.embed.record#viewBlocked');
    }

    const blocks = await get(net.app, query('app.bsky.graph.getBlocks', {}), as(block.blocker, 'app.bsky.graph.getBlocks'));
    expectValid(AppBskyGraphGetBlocks.mainSchema, blocks.body);
    expect((blocks.body.blocks as Body[]).map((actor) => actor.did)).toContain(block.blocked);
  });

  test('getActorLikes: only the actor itself may read its likes', async () => {
    const { did } = await firstRow(net.db, `select a.did from likes l join actors a on a.id = l.author_id and a.status is null group by a.did order by count(*) desc, a.did limit 1`);
    const own = await get(net.app, query('app.bsky.feed.getActorLikes', { actor: did, limit: 10 }), as(did, 'app.bsky.feed.getActorLikes'));
    expect(own.status).toBe(200);
    expectValid(AppBskyFeedGetActorLikes.mainSchema, own.body);
    expect((own.body.feed as Body[]).every((item) => item.post.viewer.like)).toBe(true);
    expect((await get(net.app, query('app.bsky.feed.getActorLikes', { actor: did }))).status).toBe(401);
  });

  test('getFeed: asks the generator for a skeleton, passes the token through, hydrates it', async () => {
    const gen = await firstRow(net.db, `select a.did, g.rkey from feed_generators g join actors a on a.id = g.author_id and a.status is null order by a.did, g.rkey limit 1`);
    const posts = await net.db.run((sql) => sql`select a.did, p.rkey from posts p join actors a on a.id = p.author_id and a.status is null order by a.did, p.rkey limit 5`);
    skeleton = { feed: posts.map((row) => ({ post: `at://${row.did}/app.bsky.feed.post/${row.rkey}` })), cursor: 'next-page' };
    const viewer = posts[0]!.did as string;
    const feedUri = `at://${gen.did}/app.bsky.feed.generator/${gen.rkey}`;
    const headers = as(viewer, 'app.bsky.feed.getFeedSkeleton', { aud: 'did:web:feeds.sim.test' });
    const { status, body } = await get(net.app, query('app.bsky.feed.getFeed', { feed: feedUri, limit: 10 }), headers);
    expect(status).toBe(200);
    expectValid(AppBskyFeedGetFeed.mainSchema, body);
    expect((body.feed as Body[]).map((item) => item.post.uri)).toEqual(skeleton.feed.map((item) => item.post));
    expect(body.cursor).toBe('next-page');
    expect(skeletonAuth).toBe(headers.authorization);

    skeleton = { feed: [{ post: 'not a uri' }] } as typeof skeleton;
    expect((await get(net.app, query('app.bsky.feed.getFeed', { feed: feedUri }))).body.error).toBe('UpstreamFailure');
    expect((await get(net.app, query('app.bsky.feed.getFeed', { feed: `at://${gen.did}/app.bsky.feed.generator/nope` }))).body.error).toBe('UnknownFeed');
    const online = await get(net.app, query('app.bsky.feed.getFeedGenerator', { feed: feedUri }));
    expect(online.body.isOnline).toBe(true);
  });

  test('a feed generator record naming a loopback did:web: nothing is fetched, one generic error', async () => {
    const gen = await firstRow(net.db, `select a.did, g.rkey, g.record from feed_generators g join actors a on a.id = g.author_id and a.status is null order by a.did, g.rkey limit 1`);
    const hostile = `did:web:127.0.0.1%3A${feedServer.port}`;
    await net.db.run((sql) => sql`update feed_generators set record = jsonb_set(record, '{did}', to_jsonb(${hostile}::text)) where rkey = ${gen.rkey as string}`);
    try {
      // the app as production builds it: no private hosts allowed
      const production = xrpcApp(net.db, net.sim.url);
      const before = feedRequests;
      const answer = await get(production, query('app.bsky.feed.getFeed', { feed: `at://${gen.did}/app.bsky.feed.generator/${gen.rkey}` }));
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('UnknownFeed');
      expect(JSON.stringify(answer.body)).not.toContain('127.0.0.1');
      expect(feedRequests).toBe(before);
    } finally {
      await net.db.run((sql) => sql`update feed_generators set record = ${JSON.stringify(gen.record)}::jsonb where rkey = ${gen.rkey as string}`);
    }
  });
});
