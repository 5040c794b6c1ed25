/**
 * Record values for the app.bsky collections, valid per their lexicons, plus the deliberately
 * broken ones the fault injector needs.
 *
 * Owns: the shape of every record the simulator writes.
 * Promises: the `valid*` builders only produce records that pass @atcute/bluesky validation
 * (byte-exact facet offsets, blob refs with raw CIDs, strong refs with real CIDs); the `invalid*`
 * builders produce records that fail it. All randomness comes from the given Rng.
 */
import type { CidLink } from '@atcute/cid';
import { link, rawCid } from './block.ts';
import type { Rng } from './rng.ts';

export const COLLECTIONS = {
  post: 'app.bsky.feed.post',
  like: 'app.bsky.feed.like',
  repost: 'app.bsky.feed.repost',
  follow: 'app.bsky.graph.follow',
  block: 'app.bsky.graph.block',
  profile: 'app.bsky.actor.profile',
  list: 'app.bsky.graph.list',
  listitem: 'app.bsky.graph.listitem',
  listblock: 'app.bsky.graph.listblock',
  generator: 'app.bsky.feed.generator',
  threadgate: 'app.bsky.feed.threadgate',
  postgate: 'app.bsky.feed.postgate',
  starterpack: 'app.bsky.graph.starterpack',
  labeler: 'app.bsky.labeler.service',
} as const;

export const UNKNOWN_COLLECTION = 'com.example.thing';

export interface StrongRef {
  readonly uri: string;
  readonly cid: string;
}

export interface Mentionable {
  readonly did: string;
  readonly handle: string;
}

export interface PostContext {
  readonly createdAt: string;
  /** someone to mention, if anyone exists yet */
  readonly mention: Mentionable | null;
  /** reply target: the parent and its thread root */
  readonly reply: { root: StrongRef; parent: StrongRef } | null;
  /** a post to quote */
  readonly quote: StrongRef | null;
}

type Json = Record<string, unknown>;

const WORDS = [
  'the', 'river', 'runs', 'under', 'old', 'stone', 'bridges', 'tonight', 'coffee', 'morning', 'build',
  'ship', 'small', 'tools', 'sunlight', 'garden', 'notes', 'reading', 'quiet', 'train', 'window',
  'music', 'friends', 'weekend', 'code', 'review', 'bread', 'rain', 'city', 'map', 'café', 'naïve',
  'über', 'façade', '日本語', 'привет', 'ñandú', '🚀', '🌊', '☕', 'déjà', 'vu', 'mañana', 'skål',
];
const TAGS = ['atproto', 'bluesky', 'art', 'photography', 'music', 'dev', 'books', 'cats'];
const LANGS = ['en', 'en', 'en', 'ja', 'pt', 'de', 'es', 'fr'];
const SELF_LABELS = ['sexual', 'nudity', 'porn', 'graphic-media'];
const LINK_HOSTS = ['example.com', 'news.example.org', 'blog.example.net'];

const encoder = new TextEncoder();
const utf8Length = (s: string): number => encoder.encode(s).length;

const words = (rng: Rng, min: number, max: number): string => {
  const n = rng.range(min, max);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(WORDS));
  return out.join(' ');
};

export const blobRef = (rng: Rng, mimeType: string, minSize: number, maxSize: number): Json => ({
  $type: 'blob',
  ref: link(rawCid(rng.bytes(24))) satisfies CidLink,
  mimeType,
  size: rng.range(minSize, maxSize),
});

/** Post text with byte-exact facets for the mention, link and tag pieces it contains. */
const richText = (rng: Rng, mention: Mentionable | null): { text: string; facets: Json[] } => {
  let text = '';
  const facets: Json[] = [];
  const add = (piece: string, feature: Json | null): void => {
    if (text.length > 0) text += ' ';
    const byteStart = utf8Length(text);
    text += piece;
    if (feature !== null) {
      facets.push({
        $type: 'app.bsky.richtext.facet',
        index: { byteStart, byteEnd: byteStart + utf8Length(piece) },
        features: [feature],
      });
    }
  };
  add(words(rng, 2, 10), null);
  if (mention !== null && rng.chance(0.25)) {
    add(`@${mention.handle}`, { $type: 'app.bsky.richtext.facet#mention', did: mention.did });
  }
  if (rng.chance(0.15)) {
    const uri = `https://${rng.pick(LINK_HOSTS)}/${rng.pick(WORDS.slice(0, 30))}/${rng.int(100000)}`;
    add(uri, { $type: 'app.bsky.richtext.facet#link', uri });
  }
  if (rng.chance(0.15)) {
    const tag = rng.pick(TAGS);
    add(`#${tag}`, { $type: 'app.bsky.richtext.facet#tag', tag });
  }
  if (rng.chance(0.5)) add(words(rng, 1, 8), null);
  return { text, facets };
};

const images = (rng: Rng): Json => {
  const list: Json[] = [];
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    list.push({
      alt: rng.chance(0.5) ? words(rng, 1, 6) : '',
      image: blobRef(rng, rng.chance(0.8) ? 'image/jpeg' : 'image/png', 20_000, 950_000),
      aspectRatio: { width: rng.range(300, 2000), height: rng.range(300, 2000) },
    });
  }
  return { $type: 'app.bsky.embed.images', images: list };
};

const external = (rng: Rng): Json => ({
  $type: 'app.bsky.embed.external',
  external: {
    uri: `https://${rng.pick(LINK_HOSTS)}/article/${rng.int(1_000_000)}`,
    title: words(rng, 2, 8),
    description: words(rng, 0, 20),
    ...(rng.chance(0.6) ? { thumb: blobRef(rng, 'image/jpeg', 5_000, 900_000) } : {}),
  },
});

const video = (rng: Rng): Json => ({
  $type: 'app.bsky.embed.video',
  video: blobRef(rng, 'video/mp4', 200_000, 40_000_000),
  aspectRatio: { width: 1080, height: rng.chance(0.5) ? 1920 : 1080 },
  ...(rng.chance(0.3) ? { alt: words(rng, 1, 6) } : {}),
});

const media = (rng: Rng): Json => {
  const kind = rng.weighted({ images: 70, external: 20, video: 10 });
  return kind === 'images' ? images(rng) : kind === 'external' ? external(rng) : video(rng);
};

export const post = (rng: Rng, ctx: PostContext): Json => {
  const { text, facets } = richText(rng, ctx.mention);
  const record: Json = { $type: COLLECTIONS.post, text, createdAt: ctx.createdAt };
  if (facets.length > 0) record.facets = facets;
  if (rng.chance(0.9)) record.langs = [rng.pick(LANGS)];
  if (ctx.reply !== null) record.reply = { root: { ...ctx.reply.root }, parent: { ...ctx.reply.parent } };
  if (ctx.quote !== null) {
    record.embed = rng.chance(0.7)
      ? { $type: 'app.bsky.embed.record', record: { ...ctx.quote } }
      : {
          $type: 'app.bsky.embed.recordWithMedia',
          record: { $type: 'app.bsky.embed.record', record: { ...ctx.quote } },
          media: media(rng),
        };
  } else {
    const roll = rng.float();
    if (roll < 0.18) record.embed = images(rng);
    else if (roll < 0.24) record.embed = external(rng);
    else if (roll < 0.27) record.embed = video(rng);
  }
  if (rng.chance(0.02)) {
    record.labels = { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: rng.pick(SELF_LABELS) }] };
  }
  return record;
};

/** An edit keeps reply, embed and createdAt (as clients do) and rewrites the text. */
export const editedPost = (rng: Rng, previous: Json): Json => {
  const { facets: _facets, ...rest } = previous;
  return { ...rest, text: `${words(rng, 2, 12)} (edited)` };
};

export const like = (subject: StrongRef, createdAt: string): Json => ({
  $type: COLLECTIONS.like,
  subject: { ...subject },
  createdAt,
});

export const repost = (subject: StrongRef, createdAt: string): Json => ({
  $type: COLLECTIONS.repost,
  subject: { ...subject },
  createdAt,
});

export const follow = (subject: string, createdAt: string): Json => ({ $type: COLLECTIONS.follow, subject, createdAt });

export const block = (subject: string, createdAt: string): Json => ({ $type: COLLECTIONS.block, subject, createdAt });

export const profile = (rng: Rng, name: string, createdAt: string): Json => {
  const record: Json = {
    $type: COLLECTIONS.profile,
    displayName: `${name[0]!.toUpperCase()}${name.slice(1).split('-')[0]}`,
    description: words(rng, 3, 20),
    createdAt,
  };
  if (rng.chance(0.8)) record.avatar = blobRef(rng, 'image/jpeg', 10_000, 900_000);
  if (rng.chance(0.4)) record.banner = blobRef(rng, 'image/jpeg', 50_000, 900_000);
  return record;
};

export type ListPurpose = 'app.bsky.graph.defs#curatelist' | 'app.bsky.graph.defs#modlist';

export const list = (rng: Rng, purpose: ListPurpose, createdAt: string): Json => ({
  $type: COLLECTIONS.list,
  purpose,
  name: words(rng, 1, 4).slice(0, 64),
  ...(rng.chance(0.6) ? { description: words(rng, 2, 15) } : {}),
  createdAt,
});

export const listitem = (subject: string, listUri: string, createdAt: string): Json => ({
  $type: COLLECTIONS.listitem,
  subject,
  list: listUri,
  createdAt,
});

export const listblock = (listUri: string, createdAt: string): Json => ({
  $type: COLLECTIONS.listblock,
  subject: listUri,
  createdAt,
});

export const generator = (rng: Rng, createdAt: string): Json => ({
  $type: COLLECTIONS.generator,
  did: 'did:web:feeds.sim.test',
  displayName: words(rng, 1, 3).slice(0, 24),
  ...(rng.chance(0.7) ? { description: words(rng, 3, 20) } : {}),
  createdAt,
});

export const threadgate = (rng: Rng, postUri: string, createdAt: string): Json => {
  const rules = [
    [{ $type: 'app.bsky.feed.threadgate#mentionRule' }],
    [{ $type: 'app.bsky.feed.threadgate#followingRule' }],
    [{ $type: 'app.bsky.feed.threadgate#followerRule' }, { $type: 'app.bsky.feed.threadgate#mentionRule' }],
    [],
  ];
  return { $type: COLLECTIONS.threadgate, post: postUri, allow: rng.pick(rules), createdAt };
};

export const postgate = (postUri: string, createdAt: string): Json => ({
  $type: COLLECTIONS.postgate,
  post: postUri,
  embeddingRules: [{ $type: 'app.bsky.feed.postgate#disableRule' }],
  createdAt,
});

export const starterpack = (rng: Rng, listUri: string, createdAt: string): Json => ({
  $type: COLLECTIONS.starterpack,
  name: words(rng, 1, 4).slice(0, 50),
  ...(rng.chance(0.5) ? { description: words(rng, 3, 15) } : {}),
  list: listUri,
  createdAt,
});

export const labelerService = (createdAt: string): Json => ({
  $type: COLLECTIONS.labeler,
  policies: { labelValues: ['spam', 'rude', 'misleading'] },
  createdAt,
});

export const unknownThing = (rng: Rng, createdAt: string): Json => ({
  $type: UNKNOWN_COLLECTION,
  note: words(rng, 2, 6),
  createdAt,
});

export type InvalidKind = 'likeWithoutSubject' | 'postTextNumber' | 'followSubjectNotDid' | 'repostBadCid' | 'postNoCreatedAt';

/** A record in a known collection that fails lexicon validation. */
export const invalid = (
  rng: Rng,
  kind: InvalidKind,
  subject: StrongRef,
  createdAt: string,
): { collection: string; record: Json } => {
  switch (kind) {
    case 'likeWithoutSubject':
      return { collection: COLLECTIONS.like, record: { $type: COLLECTIONS.like, createdAt } };
    case 'postTextNumber':
      return { collection: COLLECTIONS.post, record: { $type: COLLECTIONS.post, text: rng.int(1000), createdAt } };
    case 'followSubjectNotDid':
      return { collection: COLLECTIONS.follow, record: { $type: COLLECTIONS.follow, subject: 'not a did', createdAt } };
    case 'repostBadCid':
      return {
        collection: COLLECTIONS.repost,
        record: { $type: COLLECTIONS.repost, subject: { uri: subject.uri, cid: 'not-a-cid' }, createdAt },
      };
    case 'postNoCreatedAt':
      return { collection: COLLECTIONS.post, record: { $type: COLLECTIONS.post, text: words(rng, 1, 5) } };
  }
};
