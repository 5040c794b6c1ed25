/**
 * The read endpoints over a simulated network ingested for real: every answer validated against
 * its lexicon output schema, counts compared with the simulator's ground truth.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import {
  AppBskyActorGetProfile,
  AppBskyActorGetProfiles,
  AppBskyActorSearchActors,
  AppBskyActorSearchActorsTypeahead,
  AppBskyFeedGetAuthorFeed,
  AppBskyFeedGetFeedGenerator,
  AppBskyFeedGetFeedGenerators,
  AppBskyFeedGetLikes,
  AppBskyFeedGetPosts,
  AppBskyFeedGetPostThread,
  AppBskyFeedGetQuotes,
  AppBskyFeedGetRepostedBy,
  AppBskyFeedSearchPosts,
  AppBskyGraphGetFollowers,
  AppBskyGraphGetFollows,
  AppBskyGraphGetList,
  AppBskyGraphGetLists,
  AppBskyGraphGetRelationships,
  AppBskyGraphGetStarterPack,
} from '@atcute/bluesky';
import type { GroundTruth } from '../../src/sim/ground-truth.ts';
import { expectValid, firstRow, get, indexedNetwork, query, type IndexedNetwork } from './fixture.ts';

type Body = Record<string, any>;

let net: IndexedNetwork;
let truth: GroundTruth;
beforeAll(async () => {
  net = await indexedNetwork('xviews', { seed: 21, accounts: 60, commits: 5000, accountShare: 0.03 });
  truth = net.sim.groundTruth();
});

const postUri = (did: string, rkey: string) => `at://${did}/app.bsky.feed.post/${rkey}`;

describe('actors', () => {
  test('getProfile: counts from the aggregates, handle.invalid until verified, then the handle', async () => {
    const { did } = await firstRow(net.db, `select a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.followers_count desc, a.did limit 1`);
    const { status, body } = await get(net.app, query('app.bsky.actor.getProfile', { actor: did }));
    expect(status).toBe(200);
    expectValid(AppBskyActorGetProfile.mainSchema, body);
    const expected = truth.actors[did]!;
    expect({ followers: body.followersCount, follows: body.followsCount, posts: body.postsCount }).toEqual({
      followers: expected.followersCount,
      follows: expected.followsCount,
      posts: expected.postsCount,
    });
    expect(body.handle).toBe('handle.invalid');

    // the identity worker's job, done by hand only to see the handle shown and resolved
    const handle = `shown-${Date.now()}.sim.test`;
    await net.db.run((sql) => sql`update actors set handle = ${handle} where did = ${did}`);
    const shown = await get(net.app, query('app.bsky.actor.getProfile', { actor: handle.toUpperCase() }));
    expect(shown.body.handle).toBe(handle);
    const resolved = await get(net.app, query('com.atproto.identity.resolveHandle', { handle }));
    expect(resolved).toEqual({ status: 200, body: { did } });
    await net.db.run((sql) => sql`update actors set handle = null where did = ${did}`);
    // as the reference AppView answers (the conformance suite compares them)
    expect((await get(net.app, query('com.atproto.identity.resolveHandle', { handle }))).body).toEqual({ error: 'InvalidRequest', message: 'Unable to resolve handle' });
  });

  test('getProfile: unknown actor, bad identifier, deactivated account', async () => {
    expect(await get(net.app, query('app.bsky.actor.getProfile', { actor: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' }))).toEqual({
      status: 400,
      body: { error: 'InvalidRequest', message: 'Profile not found' },
    });
    const bad = await get(net.app, query('app.bsky.actor.getProfile', { actor: 'not an identifier' }));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('InvalidRequest');
    expect(bad.body.message).toContain('actor');
    const deactivated = await net.db.run((sql) => sql`select did from actors where status = 'deactivated' order by did limit 1`);
    if (deactivated.length > 0) {
      const answer = await get(net.app, query('app.bsky.actor.getProfile', { actor: deactivated[0]!.did }));
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe('AccountDeactivated');
      // every other method says it as for a missing account, as the reference AppView does
      const feed = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: deactivated[0]!.did }));
      expect(feed).toEqual({ status: 400, body: { error: 'InvalidRequest', message: 'Profile not found' } });
      expect(await get(net.app, query('app.bsky.graph.getLists', { actor: deactivated[0]!.did }))).toEqual({ status: 200, body: { lists: [] } });
    } else {
      throw new Error('the simulation should deactivate someone (accountShare)');
    }
  });

  test('getProfiles, searchActors, searchActorsTypeahead', async () => {
    const rows = await net.db.run((sql) => sql`select did from actors where status is null order by id limit 5`);
    const dids = rows.map((row) => row.did as string);
    const profiles = await get(net.app, query('app.bsky.actor.getProfiles', { actors: [...dids, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'] }));
    expectValid(AppBskyActorGetProfiles.mainSchema, profiles.body);
    expect((profiles.body.profiles as Body[]).map((p) => p.did)).toEqual(dids);

    const { name } = await firstRow(net.db, `select record->>'displayName' as name from profiles p join actors a on a.id = p.author_id where a.status is null and p.rkey = 'self' and p.record->>'displayName' is not null order by a.did limit 1`);
    const search = await get(net.app, query('app.bsky.actor.searchActors', { q: name, limit: 5 }));
    expectValid(AppBskyActorSearchActors.mainSchema, search.body);
    expect((search.body.actors as Body[]).some((actor) => actor.displayName === name)).toBe(true);
    const typeahead = await get(net.app, query('app.bsky.actor.searchActorsTypeahead', { q: name.slice(0, 3) }));
    expectValid(AppBskyActorSearchActorsTypeahead.mainSchema, typeahead.body);
    expect((typeahead.body.actors as Body[]).length).toBeGreaterThan(0);
  });

  test('searchActors does not match the words of descriptions (sql/00006)', async () => {
    const { word } = await firstRow(net.db, `
      select w.word from profiles p, regexp_split_to_table(lower(p.record->>'description'), '\\s+') as w(word)
      where p.rkey = 'self' and w.word ~ '^[a-z]{4,}$'
        and not exists (select 1 from profiles q where q.rkey = 'self' and lower(q.record->>'displayName') like '%' || w.word || '%')
        and not exists (select 1 from actors a where a.handle like w.word || '%')
      order by w.word limit 1`);
    const search = await get(net.app, query('app.bsky.actor.searchActors', { q: word, limit: 5 }));
    expect(search.status).toBe(200);
    expect(search.body.actors).toEqual([]);
  });
});

describe('feeds', () => {
  test('getAuthorFeed: every page valid, newest first, no gaps or repeats, reposts of deleted posts dropped', async () => {
    const { id, did } = await firstRow(net.db, `select a.id, a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.posts_count desc, a.did limit 1`);
    const expected = await net.db.run(
      (sql) => sql`
        select uri from (
          select 'at://' || ${did} || '/app.bsky.feed.post/' || rkey as uri, least(created_at, indexed_at) as t, rkey from posts where author_id = ${id}
          union all
          select 'at://' || ${did} || '/app.bsky.feed.repost/' || r.rkey, least(r.created_at, r.indexed_at), r.rkey from reposts r
          where r.author_id = ${id} and exists (select 1 from posts p join actors s on s.id = p.author_id and s.status is null
            where p.author_id = r.subject_actor_id and p.rkey = r.subject_rkey)
        ) x order by t desc, rkey desc`,
    );
    expect(expected.length).toBeGreaterThan(30);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { status, body } = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: did, limit: 7, cursor }));
      expect(status).toBe(200);
      expectValid(AppBskyFeedGetAuthorFeed.mainSchema, body);
      for (const item of body.feed as Body[]) seen.push(item.reason ? (item.reason.uri as string) : (item.post.uri as string));
      cursor = body.cursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen).toEqual(expected.map((row) => row.uri as string));
  });

  test('getAuthorFeed filters and the pinned post', async () => {
    const { did } = await firstRow(net.db, `select a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.posts_count desc, a.did limit 1`);
    const feedOf = async (filter: string) => {
      const { body } = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: did, filter, limit: 100 }));
      expectValid(AppBskyFeedGetAuthorFeed.mainSchema, body);
      return body.feed as Body[];
    };
    const noReplies = await feedOf('posts_no_replies');
    expect(noReplies.every((item) => item.reason || !item.post.record.reply)).toBe(true);
    const media = await feedOf('posts_with_media');
    expect(media.length).toBeGreaterThan(0);
    expect(media.every((item) => !item.reason && ['app.bsky.embed.images#view', 'app.bsky.embed.video#view', 'app.bsky.embed.recordWithMedia#view'].includes(item.post.embed?.$type))).toBe(true);
    const video = await feedOf('posts_with_video');
    expect(video.every((item) => JSON.stringify(item.post.embed).includes('app.bsky.embed.video#view'))).toBe(true);
    const threads = await feedOf('posts_and_author_threads');
    expect(threads.every((item) => item.reason || !item.reply || (item.reply.root.uri as string).startsWith(`at://${did}/`))).toBe(true);
    expect((await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: did, filter: 'nonsense' }))).status).toBe(400);

    // no pinned post in the simulated profiles: includePins changes nothing
    const pins = await get(net.app, query('app.bsky.feed.getAuthorFeed', { actor: did, includePins: true, limit: 3 }));
    expect((pins.body.feed as Body[]).some((item) => item.reason?.$type === 'app.bsky.feed.defs#reasonPin')).toBe(false);
  });

  test('getPosts: counts equal the ground truth; unknown posts are left out', async () => {
    const uris = Object.keys(truth.posts).slice(0, 25);
    const { body } = await get(net.app, query('app.bsky.feed.getPosts', { uris: [...uris.slice(0, 24), 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3aaaaaaaaaaaa'] }));
    expectValid(AppBskyFeedGetPosts.mainSchema, body);
    const posts = body.posts as Body[];
    const live = await net.db.run((sql) => sql`select did from actors where status is null`);
    const visible = new Set(live.map((row) => row.did as string));
    const expectedUris = uris.slice(0, 24).filter((uri) => visible.has(uri.split('/')[2]!));
    expect(posts.map((post) => post.uri)).toEqual(expectedUris);
    for (const post of posts) {
      const counts = truth.posts[post.uri]!;
      expect({ uri: post.uri, likes: post.likeCount, reposts: post.repostCount, replies: post.replyCount, quotes: post.quoteCount }).toEqual({
        uri: post.uri,
        likes: counts.likeCount,
        reposts: counts.repostCount,
        replies: counts.replyCount,
        quotes: counts.quoteCount,
      });
    }
  });

  test('quote chains: a quote of a quote shows two levels of viewRecord', async () => {
    const chain = await firstRow(net.db, `
      select a1.did as did, p1.rkey from posts p1
      join posts p2 on p2.author_id = p1.quote_actor_id and p2.rkey = p1.quote_rkey
      join posts p3 on p3.author_id = p2.quote_actor_id and p3.rkey = p2.quote_rkey
      join actors a1 on a1.id = p1.author_id and a1.status is null
      join actors a2 on a2.id = p2.author_id and a2.status is null
      join actors a3 on a3.id = p3.author_id and a3.status is null
      where not exists (select 1 from blocks b where (b.author_id, b.subject_actor_id) in
        ((a1.id, a2.id), (a2.id, a1.id), (a2.id, a3.id), (a3.id, a2.id), (a1.id, a3.id), (a3.id, a1.id)))
      order by p1.author_id, p1.rkey
      limit 1`);
    const { body } = await get(net.app, query('app.bsky.feed.getPosts', { uris: [postUri(chain.did, chain.rkey)] }));
    expectValid(AppBskyFeedGetPosts.mainSchema, body);
    const embed = body.posts[0].embed;
    const first = embed.$type === 'app.bsky.embed.record#view' ? embed.record : embed.record.record;
    expect(first.$type).toBe('app.bsky.embed.record#viewRecord');
    const inner = first.embeds[0];
    const second = inner.$type === 'app.bsky.embed.record#view' ? inner.record : inner.record.record;
    expect(second.$type).toBe('app.bsky.embed.record#viewRecord');
    expect(second.embeds).toBeUndefined();

    const quoted = await get(net.app, query('app.bsky.feed.getQuotes', { uri: first.uri }));
    expectValid(AppBskyFeedGetQuotes.mainSchema, quoted.body);
    expect((quoted.body.posts as Body[]).map((post) => post.uri)).toContain(postUri(chain.did, chain.rkey));
  });

  test('a quote of a deleted post is viewNotFound', async () => {
    const row = await firstRow(net.db, `
      select a.did, p.rkey from posts p join actors a on a.id = p.author_id and a.status is null
      where p.quote_actor_id is not null and p.embed->>'$type' = 'app.bsky.embed.record' and p.embed->'record'->>'uri' like '%app.bsky.feed.post%'
        and not exists (select 1 from posts q where q.author_id = p.quote_actor_id and q.rkey = p.quote_rkey)
      order by a.did, p.rkey limit 1`);
    const { body } = await get(net.app, query('app.bsky.feed.getPosts', { uris: [postUri(row.did, row.rkey)] }));
    expectValid(AppBskyFeedGetPosts.mainSchema, body);
    expect(body.posts[0].embed.record).toMatchObject({ $type: 'app.bsky.embed.record#viewNotFound', notFound: true });
  });

  test('getLikes and getRepostedBy list every liker and reposter once, across pages', async () => {
    const [liked] = Object.entries(truth.posts).sort((a, b) => b[1].likeCount - a[1].likeCount);
    const [uri, counts] = liked!;
    const likers: string[] = [];
    let cursor: string | undefined;
    do {
      const { body } = await get(net.app, query('app.bsky.feed.getLikes', { uri, limit: 3, cursor }));
      expectValid(AppBskyFeedGetLikes.mainSchema, body);
      likers.push(...(body.likes as Body[]).map((like) => like.actor.did as string));
      cursor = body.cursor;
    } while (cursor);
    const inactive = await net.db.run((sql) => sql`select count(*)::int as n from likes l join actors a on a.id = l.author_id
      where a.status is not null and l.subject_rkey = ${uri.split('/').at(-1)!}`);
    expect(likers.length).toBe(counts.likeCount - inactive[0]!.n);
    expect(new Set(likers).size).toBe(likers.length);

    const [reposted] = Object.entries(truth.posts).sort((a, b) => b[1].repostCount - a[1].repostCount);
    const { body } = await get(net.app, query('app.bsky.feed.getRepostedBy', { uri: reposted![0], limit: 100 }));
    expectValid(AppBskyFeedGetRepostedBy.mainSchema, body);
    expect((body.repostedBy as Body[]).length).toBeLessThanOrEqual(reposted![1].repostCount);
    expect((body.repostedBy as Body[]).length).toBeGreaterThan(0);
  });

  test('searchPosts: full text, author, lang, since/until, sort=top, pagination', async () => {
    const { word } = await firstRow(net.db, `select 'river' as word`);
    const all: string[] = [];
    let cursor: string | undefined;
    do {
      const { status, body } = await get(net.app, query('app.bsky.feed.searchPosts', { q: word, limit: 25, cursor }));
      expect(status).toBe(200);
      expectValid(AppBskyFeedSearchPosts.mainSchema, body);
      all.push(...(body.posts as Body[]).map((post) => post.uri as string));
      expect((body.posts as Body[]).every((post) => post.record.text.includes(word))).toBe(true);
      cursor = body.cursor;
    } while (cursor);
    const [count] = await net.db.run((sql) => sql`select count(*)::int as n from posts p join actors a on a.id = p.author_id and a.status is null
      where to_tsvector('simple', p.text) @@ to_tsquery('simple', ${word})`);
    expect(all.length).toBe(count!.n);
    expect(new Set(all).size).toBe(all.length);

    const top = await get(net.app, query('app.bsky.feed.searchPosts', { q: word, sort: 'top', limit: 5 }));
    expectValid(AppBskyFeedSearchPosts.mainSchema, top.body);
    const likes = (top.body.posts as Body[]).map((post) => post.likeCount + post.repostCount);
    expect(likes).toEqual([...likes].sort((a, b) => b - a));

    const author = all[0]!.split('/')[2]!;
    const byAuthor = await get(net.app, query('app.bsky.feed.searchPosts', { q: word, author, lang: 'en', since: '2024-01-01', until: '2030-01-01T00:00:00Z' }));
    expectValid(AppBskyFeedSearchPosts.mainSchema, byAuthor.body);
    expect((byAuthor.body.posts as Body[]).every((post) => post.author.did === author && post.record.langs?.includes('en'))).toBe(true);
    expect((await get(net.app, query('app.bsky.feed.searchPosts', { q: word, until: '2000-01-01' }))).body.posts).toEqual([]);
    expect((await get(net.app, query('app.bsky.feed.searchPosts', { q: word, since: 'yesterday' }))).status).toBe(400);
  });
});

describe('threads', () => {
  test('getPostThread: parents up to parentHeight, replies down to depth, counts match', async () => {
    const row = await firstRow(net.db, `
      select a.did, p.rkey from posts p join actors a on a.id = p.author_id and a.status is null
      join posts parent on parent.author_id = p.reply_parent_actor_id and parent.rkey = p.reply_parent_rkey
      where exists (
        select 1 from posts c join actors ca on ca.id = c.author_id and ca.status is null
        where c.reply_parent_actor_id = p.author_id and c.reply_parent_rkey = p.rkey
          and not exists (select 1 from blocks b where (b.author_id = c.author_id and b.subject_actor_id = p.author_id)
                                                  or (b.author_id = p.author_id and b.subject_actor_id = c.author_id)))
      order by p.author_id, p.rkey
      limit 1`);
    const uri = postUri(row.did, row.rkey);
    const { body } = await get(net.app, query('app.bsky.feed.getPostThread', { uri }));
    expectValid(AppBskyFeedGetPostThread.mainSchema, body);
    expect(body.thread.post.uri).toBe(uri);
    expect(body.thread.parent).toBeDefined();
    expect((body.thread.replies as Body[]).length).toBeGreaterThan(0);
    const flat = await get(net.app, query('app.bsky.feed.getPostThread', { uri, depth: 0, parentHeight: 0 }));
    expectValid(AppBskyFeedGetPostThread.mainSchema, flat.body);
    expect(flat.body.thread.parent).toBeUndefined();
    expect(flat.body.thread.replies).toBeUndefined();
  });

  test('forged replies that point at each other: every post is shown once, the answer stays small', async () => {
    // A replies to B; B and C reply to A: without a guard each level doubles (A -> {B, C} -> A -> ...)
    const { id } = await firstRow(net.db, `select id from actors where status is null order by id limit 1`);
    const did = (await firstRow(net.db, `select did from actors where id = ${id}`)).did as string;
    const [a, b, c] = ['3zzzzzzzzza22', '3zzzzzzzzzb22', '3zzzzzzzzzc22'];
    const cid = 'bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454';
    await net.db.run((sql) => sql`
      insert into posts (author_id, rkey, cid, created_at, text, reply_root_actor_id, reply_root_rkey, reply_parent_actor_id, reply_parent_rkey)
      values (${id}, ${a}, ${cid}, now(), 'a', ${id}, ${b}, ${id}, ${b}),
             (${id}, ${b}, ${cid}, now(), 'b', ${id}, ${a}, ${id}, ${a}),
             (${id}, ${c}, ${cid}, now(), 'c', ${id}, ${a}, ${id}, ${a})`);
    try {
      const { status, body } = await get(net.app, query('app.bsky.feed.getPostThread', { uri: postUri(did, a), depth: 24, parentHeight: 24 }));
      expect(status).toBe(200);
      const text = JSON.stringify(body);
      for (const rkey of [a, b, c]) expect([rkey, text.split(`"uri":"${postUri(did, rkey)}"`).length - 1]).toEqual([rkey, 1]);
      expect(text.length).toBeLessThan(20_000);
    } finally {
      await net.db.run((sql) => sql`delete from posts where author_id = ${id} and rkey in (${a}, ${b}, ${c})`);
    }
  });

  test('a reply whose parent was deleted shows the parent as notFoundPost', async () => {
    const row = await firstRow(net.db, `
      select a.did, p.rkey from posts p join actors a on a.id = p.author_id and a.status is null
      where p.reply_parent_actor_id is not null
        and not exists (select 1 from posts q where q.author_id = p.reply_parent_actor_id and q.rkey = p.reply_parent_rkey)
      order by a.did, p.rkey limit 1`);
    const { body } = await get(net.app, query('app.bsky.feed.getPostThread', { uri: postUri(row.did, row.rkey) }));
    expectValid(AppBskyFeedGetPostThread.mainSchema, body);
    expect(body.thread.parent).toMatchObject({ $type: 'app.bsky.feed.defs#notFoundPost', notFound: true });
    // the reply keeps its record's references to the deleted parent, CIDs included
    const reply = body.thread.post.record.reply;
    expect(reply.parent.uri).toBe(body.thread.parent.uri);
    expect(reply.parent.cid).toMatch(/^bafy/);
    expect(reply.root.cid).toMatch(/^bafy/);
  });

  test("a deleted post, and a deactivated account's post, answer NotFound", async () => {
    const missing = await get(net.app, query('app.bsky.feed.getPostThread', { uri: 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3aaaaaaaaaaaa' }));
    expect(missing).toMatchObject({ status: 400, body: { error: 'NotFound' } });
    const rows = await net.db.run((sql) => sql`select a.did, p.rkey from posts p join actors a on a.id = p.author_id where a.status = 'deactivated' order by a.did, p.rkey limit 1`);
    if (rows.length === 0) throw new Error('expected a deactivated account with posts');
    const hidden = await get(net.app, query('app.bsky.feed.getPostThread', { uri: postUri(rows[0]!.did, rows[0]!.rkey) }));
    expect(hidden).toMatchObject({ status: 400, body: { error: 'NotFound' } });
    const posts = await get(net.app, query('app.bsky.feed.getPosts', { uris: [postUri(rows[0]!.did, rows[0]!.rkey)] }));
    expect(posts.body.posts).toEqual([]);
  });
});

describe('graph', () => {
  test('getFollowers and getFollows page through exactly the followers count', async () => {
    const { did } = await firstRow(net.db, `select a.did from actors a join actor_counts c on c.actor_id = a.id where a.status is null order by c.followers_count desc, a.did limit 1`);
    const followers: string[] = [];
    let cursor: string | undefined;
    do {
      const { body } = await get(net.app, query('app.bsky.graph.getFollowers', { actor: did, limit: 4, cursor }));
      expectValid(AppBskyGraphGetFollowers.mainSchema, body);
      expect(body.subject.did).toBe(did);
      followers.push(...(body.followers as Body[]).map((actor) => actor.did as string));
      cursor = body.cursor;
    } while (cursor);
    const [expected] = await net.db.run((sql) => sql`select count(*)::int as n from follows f join actors a on a.id = f.author_id and a.status is null
      join actors s on s.id = f.subject_actor_id where s.did = ${did}`);
    expect(followers.length).toBe(expected!.n);
    expect(new Set(followers).size).toBe(followers.length);

    const follows = await get(net.app, query('app.bsky.graph.getFollows', { actor: did, limit: 100 }));
    expectValid(AppBskyGraphGetFollows.mainSchema, follows.body);
  });

  test('getRelationships shows follows and blocks both ways', async () => {
    const block = await firstRow(net.db, `select a.did as blocker, s.did as blocked from blocks b join actors a on a.id = b.author_id and a.status is null join actors s on s.id = b.subject_actor_id and s.status is null order by a.did, s.did limit 1`);
    const follow = await firstRow(net.db, `select a.did as follower, s.did as followed from follows f join actors a on a.id = f.author_id and a.status is null join actors s on s.id = f.subject_actor_id and s.status is null order by a.did, s.did limit 1`);
    const { body } = await get(net.app, query('app.bsky.graph.getRelationships', { actor: block.blocker, others: [block.blocked, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'] }));
    expectValid(AppBskyGraphGetRelationships.mainSchema, body);
    expect(body.relationships[0].blocking).toStartWith(`at://${block.blocker}/app.bsky.graph.block/`);
    expect(body.relationships[1]).toMatchObject({ notFound: true });
    const reverse = await get(net.app, query('app.bsky.graph.getRelationships', { actor: block.blocked, others: [block.blocker] }));
    expect(reverse.body.relationships[0].blockedBy).toStartWith(`at://${block.blocker}/app.bsky.graph.block/`);
    const follows = await get(net.app, query('app.bsky.graph.getRelationships', { actor: follow.follower, others: [follow.followed] }));
    expect(follows.body.relationships[0].following).toStartWith(`at://${follow.follower}/app.bsky.graph.follow/`);
  });

  test('getLists, getList, getStarterPack', async () => {
    const list = await firstRow(net.db, `select a.did, l.rkey from lists l join actors a on a.id = l.author_id and a.status is null
      where exists (select 1 from list_items i where i.ref_actor_id = l.author_id and i.ref_rkey = l.rkey) order by a.did, l.rkey limit 1`);
    const lists = await get(net.app, query('app.bsky.graph.getLists', { actor: list.did }));
    expectValid(AppBskyGraphGetLists.mainSchema, lists.body);
    expect((lists.body.lists as Body[]).length).toBeGreaterThan(0);
    const uri = `at://${list.did}/app.bsky.graph.list/${list.rkey}`;
    const { body } = await get(net.app, query('app.bsky.graph.getList', { list: uri }));
    expectValid(AppBskyGraphGetList.mainSchema, body);
    expect(body.list.uri).toBe(uri);
    expect(body.list.listItemCount).toBeGreaterThanOrEqual((body.items as Body[]).length);

    const pack = await firstRow(net.db, `select a.did, s.rkey from starter_packs s join actors a on a.id = s.author_id and a.status is null order by a.did, s.rkey limit 1`);
    const packView = await get(net.app, query('app.bsky.graph.getStarterPack', { starterPack: `at://${pack.did}/app.bsky.graph.starterpack/${pack.rkey}` }));
    expect(packView.status).toBe(200);
    expectValid(AppBskyGraphGetStarterPack.mainSchema, packView.body);
  });

  test('getFeedGenerator(s): the view, offline when its service cannot be resolved', async () => {
    const gen = await firstRow(net.db, `select a.did, g.rkey from feed_generators g join actors a on a.id = g.author_id and a.status is null order by a.did, g.rkey limit 1`);
    const uri = `at://${gen.did}/app.bsky.feed.generator/${gen.rkey}`;
    const { body } = await get(net.app, query('app.bsky.feed.getFeedGenerator', { feed: uri }));
    expectValid(AppBskyFeedGetFeedGenerator.mainSchema, body);
    expect(body.isOnline).toBe(false);
    const many = await get(net.app, query('app.bsky.feed.getFeedGenerators', { feeds: [uri] }));
    expectValid(AppBskyFeedGetFeedGenerators.mainSchema, many.body);
    expect((many.body.feeds as Body[]).length).toBe(1);
  });
});
