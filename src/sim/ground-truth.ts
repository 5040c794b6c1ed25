/**
 * Ground truth: what a correct indexer must hold after consuming the simulated firehose.
 *
 * Owns: the rules below, applied to accepted events in seq order; nothing else.
 *
 * Accepted events. A frame counts only if it decodes, its seq is greater than every seq already
 * accepted (duplicates and replays of older seqs are ignored), and, for `#commit`, its CAR holds the
 * commit block under the CID named in the frame and the commit signature verifies against the
 * `#atproto` key of the repo's DID document. Anything else is rejected whole: none of its ops count.
 *
 * Records. Only the collections in KNOWN_COLLECTIONS count; ops on any other collection (e.g.
 * `com.example.thing`) are ignored. The state of a path `at://did/collection/rkey` is the value of
 * the latest accepted create/update, removed by an accepted delete. A value counts ("live") only if
 * it passes the collection's app.bsky lexicon (@atcute/bluesky); an invalid value does not count,
 * and an invalid update makes the path not count. `records[collection]` = number of live records.
 *
 * Actors. Every DID with at least one accepted `#commit` (whatever its ops), minus DIDs whose latest
 * `#account` event has status `deleted`. Deactivated accounts are still actors and keep their
 * records. An account deletion removes every record it authored (an AppView purges a deleted
 * account's data); the simulator never writes for a deleted account again. `actorCount` = number of actors; `handle` = latest known handle (the DID
 * document's, updated by `#identity`), or null if never seen.
 *
 * Per actor (every actor, and only actors):
 *   followersCount = live follows whose `subject` is the DID (the follower need not be an actor)
 *   followsCount   = live follows authored by the DID
 *   postsCount     = live posts authored by the DID
 *
 * Per post (every live post, keyed by its at-uri, and only live posts):
 *   likeCount   = live likes whose `subject.uri` is the post's uri
 *   repostCount = live reposts whose `subject.uri` is the post's uri
 *   replyCount  = live posts whose `reply.parent.uri` is the post's uri
 *   quoteCount  = live posts whose embed is `app.bsky.embed.record` with `record.uri` = the post's uri,
 *                 or `app.bsky.embed.recordWithMedia` with `record.record.uri` = the post's uri
 * Subjects are matched by uri only (a strong ref's cid is not compared); uris use DIDs.
 */
import {
  AppBskyActorProfile,
  AppBskyFeedGenerator,
  AppBskyFeedLike,
  AppBskyFeedPost,
  AppBskyFeedPostgate,
  AppBskyFeedRepost,
  AppBskyFeedThreadgate,
  AppBskyGraphBlock,
  AppBskyGraphFollow,
  AppBskyGraphList,
  AppBskyGraphListblock,
  AppBskyGraphListitem,
  AppBskyGraphStarterpack,
  AppBskyLabelerService,
} from '@atcute/bluesky';
import { is } from '@atcute/lexicons/validations';

const SCHEMAS = {
  'app.bsky.actor.profile': AppBskyActorProfile.mainSchema,
  'app.bsky.feed.generator': AppBskyFeedGenerator.mainSchema,
  'app.bsky.feed.like': AppBskyFeedLike.mainSchema,
  'app.bsky.feed.post': AppBskyFeedPost.mainSchema,
  'app.bsky.feed.postgate': AppBskyFeedPostgate.mainSchema,
  'app.bsky.feed.repost': AppBskyFeedRepost.mainSchema,
  'app.bsky.feed.threadgate': AppBskyFeedThreadgate.mainSchema,
  'app.bsky.graph.block': AppBskyGraphBlock.mainSchema,
  'app.bsky.graph.follow': AppBskyGraphFollow.mainSchema,
  'app.bsky.graph.list': AppBskyGraphList.mainSchema,
  'app.bsky.graph.listblock': AppBskyGraphListblock.mainSchema,
  'app.bsky.graph.listitem': AppBskyGraphListitem.mainSchema,
  'app.bsky.graph.starterpack': AppBskyGraphStarterpack.mainSchema,
  'app.bsky.labeler.service': AppBskyLabelerService.mainSchema,
} as const;

export type KnownCollection = keyof typeof SCHEMAS;

export const KNOWN_COLLECTIONS: readonly KnownCollection[] = Object.keys(SCHEMAS).sort() as KnownCollection[];

const isKnown = (collection: string): collection is KnownCollection => Object.hasOwn(SCHEMAS, collection);

/** Whether `record` is a valid record of `collection` (false for unknown collections). */
export const isValidRecord = (collection: string, record: unknown): boolean => {
  if (!isKnown(collection)) return false;
  return is(SCHEMAS[collection], record);
};

export interface TruthOp {
  readonly action: 'create' | 'update' | 'delete';
  readonly collection: string;
  readonly rkey: string;
  /** the record value for create/update (plain or CBOR-decoded form); null for delete */
  readonly record: unknown;
}

export interface PostCounts {
  likeCount: number;
  repostCount: number;
  replyCount: number;
  quoteCount: number;
}

export interface ActorCounts {
  handle: string | null;
  followersCount: number;
  followsCount: number;
  postsCount: number;
}

export interface GroundTruth {
  /** highest seq the simulator emitted (accepted or not); an indexer's cursor ends here */
  lastSeq: number;
  /** accepted #commit events */
  acceptedCommits: number;
  actorCount: number;
  /** live records per known collection (every known collection is present, zeros included) */
  records: Record<KnownCollection, number>;
  /** every live post by at-uri */
  posts: Record<string, PostCounts>;
  /** every actor by DID */
  actors: Record<string, ActorCounts>;
}

/** What aggregation needs from a live record; everything else is dropped at apply time. */
interface LiveRecord {
  readonly collection: KnownCollection;
  readonly author: string;
  /** like/repost subject uri, follow subject DID */
  readonly subject: string | null;
  readonly replyParent: string | null;
  readonly quoted: string | null;
}

const field = (value: unknown, ...path: string[]): unknown => {
  let cur = value;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = Reflect.get(cur, key);
  }
  return cur;
};

const stringAt = (value: unknown, ...path: string[]): string | null => {
  const v = field(value, ...path);
  return typeof v === 'string' ? v : null;
};

const summarize = (collection: KnownCollection, author: string, record: unknown): LiveRecord => {
  let subject: string | null = null;
  let replyParent: string | null = null;
  let quoted: string | null = null;
  if (collection === 'app.bsky.feed.like' || collection === 'app.bsky.feed.repost') {
    subject = stringAt(record, 'subject', 'uri');
  } else if (collection === 'app.bsky.graph.follow') {
    subject = stringAt(record, 'subject');
  } else if (collection === 'app.bsky.feed.post') {
    replyParent = stringAt(record, 'reply', 'parent', 'uri');
    const embedType = stringAt(record, 'embed', '$type');
    if (embedType === 'app.bsky.embed.record') quoted = stringAt(record, 'embed', 'record', 'uri');
    else if (embedType === 'app.bsky.embed.recordWithMedia') quoted = stringAt(record, 'embed', 'record', 'record', 'uri');
  }
  return { collection, author, subject, replyParent, quoted };
};

export class GroundTruthBuilder {
  #live = new Map<string, LiveRecord>();
  #committed = new Set<string>();
  #deleted = new Set<string>();
  #handles = new Map<string, string>();
  #acceptedCommits = 0;
  #lastSeq = 0;

  /** Records the highest seq seen, accepted or not. */
  noteSeq(seq: number): void {
    if (seq > this.#lastSeq) this.#lastSeq = seq;
  }

  applyCommit(did: string, ops: readonly TruthOp[]): void {
    this.#acceptedCommits++;
    this.#committed.add(did);
    for (const op of ops) {
      if (!isKnown(op.collection)) continue;
      const uri = `at://${did}/${op.collection}/${op.rkey}`;
      if (op.action === 'delete' || !is(SCHEMAS[op.collection], op.record)) {
        this.#live.delete(uri);
      } else {
        this.#live.set(uri, summarize(op.collection, did, op.record));
      }
    }
  }

  /**
   * A repo that existed before the simulation (preloaded): its records are live and its DID an
   * actor, as an indexer that imported it holds them, but it counts no commit.
   */
  applyRepo(did: string, handle: string, records: readonly TruthOp[]): void {
    const commits = this.#acceptedCommits;
    this.applyCommit(did, records);
    this.#acceptedCommits = commits;
    this.#handles.set(did, handle);
  }

  applyIdentity(did: string, handle: string | undefined): void {
    if (handle !== undefined) this.#handles.set(did, handle);
  }

  applyAccount(did: string, status: string | undefined): void {
    if (status === 'deleted') {
      this.#deleted.add(did);
      for (const [uri, record] of this.#live) if (record.author === did) this.#live.delete(uri);
    } else {
      this.#deleted.delete(did);
    }
  }

  result(): GroundTruth {
    const records = Object.fromEntries(KNOWN_COLLECTIONS.map((c) => [c, 0])) as Record<KnownCollection, number>;
    const posts: Record<string, PostCounts> = {};
    const actors: Record<string, ActorCounts> = {};
    const dids = [...this.#committed].filter((d) => !this.#deleted.has(d)).sort();
    for (const did of dids) {
      actors[did] = { handle: this.#handles.get(did) ?? null, followersCount: 0, followsCount: 0, postsCount: 0 };
    }
    const postUris: string[] = [];
    for (const [uri, rec] of this.#live) {
      records[rec.collection]++;
      if (rec.collection === 'app.bsky.feed.post') postUris.push(uri);
    }
    postUris.sort();
    for (const uri of postUris) posts[uri] = { likeCount: 0, repostCount: 0, replyCount: 0, quoteCount: 0 };
    for (const rec of this.#live.values()) {
      switch (rec.collection) {
        case 'app.bsky.feed.like': {
          const p = rec.subject === null ? undefined : posts[rec.subject];
          if (p !== undefined) p.likeCount++;
          break;
        }
        case 'app.bsky.feed.repost': {
          const p = rec.subject === null ? undefined : posts[rec.subject];
          if (p !== undefined) p.repostCount++;
          break;
        }
        case 'app.bsky.graph.follow': {
          const followed = rec.subject === null ? undefined : actors[rec.subject];
          if (followed !== undefined) followed.followersCount++;
          const follower = actors[rec.author];
          if (follower !== undefined) follower.followsCount++;
          break;
        }
        case 'app.bsky.feed.post': {
          const author = actors[rec.author];
          if (author !== undefined) author.postsCount++;
          const parent = rec.replyParent === null ? undefined : posts[rec.replyParent];
          if (parent !== undefined) parent.replyCount++;
          const quoted = rec.quoted === null ? undefined : posts[rec.quoted];
          if (quoted !== undefined) quoted.quoteCount++;
          break;
        }
        default:
          break;
      }
    }
    return {
      lastSeq: this.#lastSeq,
      acceptedCommits: this.#acceptedCommits,
      actorCount: dids.length,
      records,
      posts,
      actors,
    };
  }
}
