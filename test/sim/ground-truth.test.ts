import { describe, expect, test } from 'bun:test';
import { GroundTruthBuilder, KNOWN_COLLECTIONS, type TruthOp } from '../../src/sim/ground-truth.ts';

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb';
const C = 'did:plc:cccccccccccccccccccccccc';
const T = '2025-01-01T00:00:00.000Z';
const CID1 = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
const post = (text: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ $type: 'app.bsky.feed.post', text, createdAt: T, ...extra });
const ref = (did: string, rkey: string) => ({ uri: `at://${did}/app.bsky.feed.post/${rkey}`, cid: CID1 });
const create = (collection: string, rkey: string, record: unknown): TruthOp => ({ action: 'create', collection, rkey, record });
const del = (collection: string, rkey: string): TruthOp => ({ action: 'delete', collection, rkey, record: null });

describe('ground truth rules', () => {
  test('aggregates count only live, valid records on live posts', () => {
    const g = new GroundTruthBuilder();
    g.applyCommit(A, [create('app.bsky.feed.post', 'p1', post('hello')), create('app.bsky.feed.post', 'p2', post('bye'))]);
    g.applyCommit(B, [
      create('app.bsky.feed.like', 'l1', { $type: 'app.bsky.feed.like', subject: ref(A, 'p1'), createdAt: T }),
      create('app.bsky.feed.like', 'l2', { $type: 'app.bsky.feed.like', subject: ref(A, 'p2'), createdAt: T }),
      create('app.bsky.feed.like', 'l3', { $type: 'app.bsky.feed.like', createdAt: T }), // invalid: no subject
      create('app.bsky.feed.repost', 'r1', { $type: 'app.bsky.feed.repost', subject: ref(A, 'p1'), createdAt: T }),
      create('app.bsky.feed.post', 'q1', post('quote', { embed: { $type: 'app.bsky.embed.record', record: ref(A, 'p1') } })),
      create('app.bsky.feed.post', 'x1', post(42)), // invalid: text is a number
      create('com.example.thing', 'u1', { $type: 'com.example.thing' }), // unknown collection
    ]);
    g.applyCommit(C, [
      create('app.bsky.feed.post', 'c1', post('reply', { reply: { root: ref(A, 'p1'), parent: ref(A, 'p1') } })),
      create('app.bsky.feed.post', 'c2', post('qm', {
        embed: { $type: 'app.bsky.embed.recordWithMedia', record: { $type: 'app.bsky.embed.record', record: ref(A, 'p1') }, media: { $type: 'app.bsky.embed.external', external: { uri: 'https://x.example', title: '', description: '' } } },
      })),
      create('app.bsky.graph.follow', 'f1', { $type: 'app.bsky.graph.follow', subject: A, createdAt: T }),
    ]);
    g.applyCommit(A, [del('app.bsky.feed.post', 'p2')]);
    g.applyCommit(C, [del('app.bsky.feed.like', 'nonexistent')]);
    const r = g.result();
    expect(r.posts[`at://${A}/app.bsky.feed.post/p1`]).toEqual({ likeCount: 1, repostCount: 1, replyCount: 1, quoteCount: 2 });
    expect(r.posts[`at://${A}/app.bsky.feed.post/p2`]).toBeUndefined();
    expect(r.records['app.bsky.feed.like']).toBe(2); // l1 and l2 stay live even though p2 is gone
    expect(r.records['app.bsky.feed.post']).toBe(4);
    expect(Object.keys(r.records).sort()).toEqual([...KNOWN_COLLECTIONS]);
    expect(r.actorCount).toBe(3);
    expect(r.actors[A]).toEqual({ handle: null, followersCount: 1, followsCount: 0, postsCount: 1 });
    expect(r.actors[C]).toEqual({ handle: null, followersCount: 0, followsCount: 1, postsCount: 2 });
    expect(r.acceptedCommits).toBe(5);
  });

  test('account deletion removes the actor and its records; deactivation keeps both', () => {
    const g = new GroundTruthBuilder();
    g.applyCommit(A, [create('app.bsky.graph.follow', 'f1', { $type: 'app.bsky.graph.follow', subject: B, createdAt: T })]);
    g.applyCommit(B, [create('app.bsky.feed.post', 'p1', post('hi'))]);
    g.applyIdentity(B, 'b.sim.test');
    g.applyAccount(A, 'deleted');
    g.applyAccount(B, 'deactivated');
    let r = g.result();
    expect(r.actorCount).toBe(1);
    expect(r.actors[A]).toBeUndefined();
    expect(r.actors[B]).toEqual({ handle: 'b.sim.test', followersCount: 0, followsCount: 0, postsCount: 1 });
    expect(r.records['app.bsky.graph.follow']).toBe(0);
    g.applyAccount(B, undefined);
    g.applyIdentity(B, undefined); // #identity without a handle keeps the known one
    r = g.result();
    expect(r.actors[B]!.handle).toBe('b.sim.test');
  });

  test('an update to an invalid value takes the record out; an update back restores it', () => {
    const g = new GroundTruthBuilder();
    g.applyCommit(A, [create('app.bsky.actor.profile', 'self', { $type: 'app.bsky.actor.profile', displayName: 'a' })]);
    expect(g.result().records['app.bsky.actor.profile']).toBe(1);
    g.applyCommit(A, [{ action: 'update', collection: 'app.bsky.actor.profile', rkey: 'self', record: { $type: 'app.bsky.actor.profile', displayName: 7 } }]);
    expect(g.result().records['app.bsky.actor.profile']).toBe(0);
    g.applyCommit(A, [{ action: 'update', collection: 'app.bsky.actor.profile', rkey: 'self', record: { $type: 'app.bsky.actor.profile' } }]);
    expect(g.result().records['app.bsky.actor.profile']).toBe(1);
  });
});
