/**
 * Views: the app.bsky JSON shapes, built from a `HydrationState` with no I/O.
 *
 * Owns the lexicon shapes (profiles, posts, embeds, feed items, threads' building blocks, lists,
 * generators, starter packs, labelers). Promises: pure; an absent or hidden record gives
 * `undefined` (or the lexicon's notFound/blocked member where the lexicon has one); handles that
 * are not verified show as `handle.invalid`; counts come from the aggregate tables; blocks hide
 * content as the lexicon says: a post whose author and the viewer block each other is
 * `blockedPost` / `viewBlocked`, and so is a quote or reply across a block between two authors.
 */
import { imageUrl, profileFields, type ImageKind } from '../identity/profile-view.ts';
import { docKey, EMBED_DOCUMENT_TABLES, embedRefOf, type HydrationState } from './hydrator.ts';
import { keyOf, VISIBLE_STATUSES, type ActorRow, type DocumentRow, type DocumentTable, type PostRow, type RecordKey } from './loaders.ts';

export type Json = Record<string, unknown>;

export interface ViewOptions {
  /** IMAGE_URL_TEMPLATE: `{kind}`, `{did}`, `{cid}` (see identity/profile-view.ts) */
  readonly imageUrlTemplate: string;
  /** VIDEO_URL_TEMPLATE: `{did}`, `{cid}`, `{file}` (playlist.m3u8 or thumbnail.jpg) */
  readonly videoUrlTemplate: string;
}

export const DEFAULT_VIDEO_URL_TEMPLATE = 'https://video.bsky.app/watch/{did}/{cid}/{file}';
export const INVALID_HANDLE = 'handle.invalid';

export const COLLECTION_OF_TABLE: Readonly<Record<DocumentTable, string>> = {
  lists: 'app.bsky.graph.list',
  feed_generators: 'app.bsky.feed.generator',
  starter_packs: 'app.bsky.graph.starterpack',
  labelers: 'app.bsky.labeler.service',
  threadgates: 'app.bsky.feed.threadgate',
  postgates: 'app.bsky.feed.postgate',
};

export const POST = 'app.bsky.feed.post';

/** Depth of embeds rendered: the page's posts, what they quote, and what that quotes (no embeds). */
const MAX_EMBED_DEPTH = 2;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export function isVisibleActor(actor: ActorRow | undefined): actor is ActorRow {
  return actor !== undefined && (actor.status === null || VISIBLE_STATUSES.includes(actor.status));
}

export class Views {
  readonly #state: HydrationState;
  readonly #options: ViewOptions;

  constructor(state: HydrationState, options: ViewOptions) {
    this.#state = state;
    this.#options = options;
  }

  get state(): HydrationState {
    return this.#state;
  }

  // ---------------------------------------------------------------- URIs and blocks

  did(actorId: number): string | undefined {
    return this.#state.actors.get(actorId)?.did;
  }

  uri(actorId: number, collection: string, rkey: string): string | undefined {
    const did = this.did(actorId);
    return did === undefined ? undefined : `at://${did}/${collection}/${rkey}`;
  }

  /** The viewer blocks `actorId` or is blocked by it (directly or through a list). */
  viewerBlocks(actorId: number): boolean {
    const relation = this.#state.relations.get(actorId);
    return relation !== undefined && (relation.blocking !== undefined || relation.blockedBy === true || relation.blockingByList !== undefined);
  }

  /** Either of two actors blocks the other. */
  blockedBetween(a: number, b: number): boolean {
    return a !== b && (this.#state.blocks.has(`${a}>${b}`) || this.#state.blocks.has(`${b}>${a}`));
  }

  // ---------------------------------------------------------------- profiles

  /**
   * The viewer's relation to an account. Mutes (and their reposts-only and quotes-only kinds) are
   * the viewer's private state, which Aqueduct does not keep yet: never muted.
   */
  actorViewer(actorId: number): Json | undefined {
    const { viewer } = this.#state;
    if (viewer === null) return undefined;
    if (viewer === actorId) return { muted: false, mutedOnlyReposts: false, mutedOnlyQuoteposts: false, blockedBy: false };
    const relation = this.#state.relations.get(actorId) ?? {};
    const did = this.did(actorId);
    const viewerDid = this.did(viewer);
    const out: Json = { muted: false, mutedOnlyReposts: false, mutedOnlyQuoteposts: false, blockedBy: relation.blockedBy === true };
    if (relation.blocking !== undefined && viewerDid) out.blocking = `at://${viewerDid}/app.bsky.graph.block/${relation.blocking}`;
    if (relation.blockingByList) {
      const list = this.listViewBasic(relation.blockingByList);
      if (list) out.blockingByList = list;
    }
    const blocked = this.viewerBlocks(actorId);
    if (!blocked && relation.following !== undefined && viewerDid) out.following = `at://${viewerDid}/app.bsky.graph.follow/${relation.following}`;
    if (!blocked && relation.followedBy !== undefined && did) out.followedBy = `at://${did}/app.bsky.graph.follow/${relation.followedBy}`;
    return out;
  }

  profileBasic(actorId: number): Json | undefined {
    const actor = this.#state.actors.get(actorId);
    if (!isVisibleActor(actor)) return undefined;
    const fields = profileFields(actor.profile);
    const out: Json = { did: actor.did, handle: actor.handle ?? INVALID_HANDLE };
    if (fields.displayName !== null) out.displayName = fields.displayName;
    const avatar = fields.avatarCid ? this.#image('avatar', actor, fields.avatarCid) : null;
    if (avatar) out.avatar = avatar;
    // who may subscribe to the account's activity: the app.bsky.notification.declaration record,
    // which is not indexed; without one the reference AppView answers 'followers', the default
    out.associated = { activitySubscription: { allowSubscriptions: 'followers' } };
    const viewer = this.actorViewer(actorId);
    if (viewer) out.viewer = viewer;
    out.labels = this.#selfLabels(actor.profile, actor.did, actor.profileCid, `at://${actor.did}/app.bsky.actor.profile/self`, actor.profileCreatedAt);
    const createdAt = str(isObject(actor.profile) ? actor.profile.createdAt : undefined);
    if (createdAt) out.createdAt = createdAt;
    return out;
  }

  profile(actorId: number): Json | undefined {
    const basic = this.profileBasic(actorId);
    if (!basic) return undefined;
    const actor = this.#state.actors.get(actorId)!;
    const fields = profileFields(actor.profile);
    if (fields.description !== null) basic.description = fields.description;
    if (actor.profileIndexedAt) basic.indexedAt = actor.profileIndexedAt;
    return basic;
  }

  profileDetailed(actorId: number): Json | undefined {
    const out = this.profile(actorId);
    if (!out) return undefined;
    const actor = this.#state.actors.get(actorId)!;
    const fields = profileFields(actor.profile);
    const banner = fields.bannerCid ? this.#image('banner', actor, fields.bannerCid) : null;
    if (banner) out.banner = banner;
    out.followersCount = actor.followersCount;
    out.followsCount = actor.followsCount;
    out.postsCount = actor.postsCount;
    const associated = this.#state.associated.get(actorId);
    if (associated) {
      out.associated = {
        ...(out.associated as Json),
        lists: associated.lists,
        feedgens: associated.feedgens,
        starterPacks: associated.starterPacks,
        labeler: associated.labeler,
      };
    }
    if (fields.pinnedPost) out.pinnedPost = fields.pinnedPost;
    return out;
  }

  // ---------------------------------------------------------------- posts

  post(key: RecordKey): Json | undefined {
    const post = this.#state.posts.get(keyOf(key.actorId, key.rkey));
    if (!post) return undefined;
    const author = this.profileBasic(post.authorId);
    const uri = this.uri(post.authorId, POST, post.rkey);
    if (!author || !uri) return undefined;
    const out: Json = {
      uri,
      cid: post.cid,
      author,
      record: this.postRecord(post),
    };
    const embed = this.embed(post, 0);
    if (embed) out.embed = embed;
    out.replyCount = post.replyCount;
    out.repostCount = post.repostCount;
    out.likeCount = post.likeCount;
    out.quoteCount = post.quoteCount;
    // bookmarks are private to the AppView that keeps them; Aqueduct keeps none
    out.bookmarkCount = 0;
    out.indexedAt = post.indexedAt;
    const gate = post.replyRootActorId === null ? this.threadgate({ actorId: post.authorId, rkey: post.rkey }) : undefined;
    if (gate) out.threadgate = gate;
    const viewer = this.#postViewer(post);
    if (viewer) out.viewer = viewer;
    out.labels = this.#postLabels(post, uri);
    return out;
  }

  /** The post record as its author wrote it (what the index keeps of it). */
  postRecord(post: PostRow): Json {
    const record: Json = { $type: POST, text: post.text, createdAt: post.createdAt };
    if (post.langs?.length) record.langs = post.langs;
    if (post.facets) record.facets = post.facets;
    if (post.embed) record.embed = post.embed;
    if (post.labels?.length) record.labels = { $type: 'com.atproto.label.defs#selfLabels', values: post.labels.map((val) => ({ val })) };
    if (post.tags?.length) record.tags = post.tags;
    const root = this.#strongRef(post.replyRootActorId, post.replyRootRkey, post.replyRootCid);
    const parent = this.#strongRef(post.replyParentActorId, post.replyParentRkey, post.replyParentCid);
    // The index keeps the CIDs the reply names, so the reference survives its targets' deletion.
    if (root && parent) record.reply = { root, parent };
    return record;
  }

  /** A post in a union position: postView, or notFoundPost / blockedPost. */
  postOrStub(key: RecordKey, relativeTo: number | null = null): Json | undefined {
    const uri = this.uri(key.actorId, POST, key.rkey);
    if (!uri) return undefined;
    const post = this.#state.posts.get(keyOf(key.actorId, key.rkey));
    if (post && (this.viewerBlocks(post.authorId) || (relativeTo !== null && this.blockedBetween(post.authorId, relativeTo)))) {
      return this.blockedPost(uri, post.authorId);
    }
    const view = post ? this.post(key) : undefined;
    return view ? { $type: 'app.bsky.feed.defs#postView', ...view } : { $type: 'app.bsky.feed.defs#notFoundPost', uri, notFound: true };
  }

  blockedPost(uri: string, authorId: number): Json {
    const author: Json = { did: this.did(authorId) };
    const viewer = this.actorViewer(authorId);
    if (viewer) author.viewer = viewer;
    return { $type: 'app.bsky.feed.defs#blockedPost', uri, blocked: true, author };
  }

  /** feedViewPost: the post, its reply context, and why it is in the feed. */
  feedViewPost(key: RecordKey, reason?: { repostBy: number; repostRkey: string; repostCid?: string | null; indexedAt: string } | 'pin'): Json | undefined {
    const post = this.#state.posts.get(keyOf(key.actorId, key.rkey));
    const view = this.post(key);
    if (!post || !view) return undefined;
    const out: Json = { post: view };
    if (post.replyParentActorId !== null && post.replyParentRkey !== null) {
      const parent = this.postOrStub({ actorId: post.replyParentActorId, rkey: post.replyParentRkey }, post.authorId);
      const root =
        post.replyRootActorId !== null && post.replyRootRkey !== null
          ? this.postOrStub({ actorId: post.replyRootActorId, rkey: post.replyRootRkey }, post.authorId)
          : parent;
      if (parent && root) {
        const reply: Json = { root, parent };
        const parentRow = this.#state.posts.get(keyOf(post.replyParentActorId, post.replyParentRkey));
        if (parentRow?.replyParentActorId != null) {
          const grandparent = this.profileBasic(parentRow.replyParentActorId);
          if (grandparent) reply.grandparentAuthor = grandparent;
        }
        out.reply = reply;
      }
    }
    if (reason === 'pin') out.reason = { $type: 'app.bsky.feed.defs#reasonPin' };
    else if (reason) {
      const by = this.profileBasic(reason.repostBy);
      if (!by) return undefined;
      const repost: Json = { $type: 'app.bsky.feed.defs#reasonRepost', by, indexedAt: reason.indexedAt };
      const uri = this.uri(reason.repostBy, 'app.bsky.feed.repost', reason.repostRkey);
      if (uri) repost.uri = uri;
      if (reason.repostCid) repost.cid = reason.repostCid;
      out.reason = repost;
    }
    return out;
  }

  // ---------------------------------------------------------------- embeds

  embed(post: PostRow, depth: number): Json | undefined {
    const embed = post.embed;
    if (!isObject(embed)) return undefined;
    const actor = this.#state.actors.get(post.authorId);
    if (!actor) return undefined;
    switch (embed.$type) {
      case 'app.bsky.embed.images':
      case 'app.bsky.embed.external':
      case 'app.bsky.embed.video':
        return this.#media(actor, embed);
      case 'app.bsky.embed.record': {
        if (depth >= MAX_EMBED_DEPTH) return undefined;
        const record = this.#recordEmbed(post, depth);
        return record ? { $type: 'app.bsky.embed.record#view', record } : undefined;
      }
      case 'app.bsky.embed.recordWithMedia': {
        const media = isObject(embed.media) ? this.#media(actor, embed.media) : undefined;
        if (depth >= MAX_EMBED_DEPTH) return media;
        const record = this.#recordEmbed(post, depth);
        if (!record || !media) return media;
        return { $type: 'app.bsky.embed.recordWithMedia#view', record: { record }, media };
      }
      default:
        return undefined;
    }
  }

  #recordEmbed(post: PostRow, depth: number): Json | undefined {
    const ref = embedRefOf(post);
    if (!ref) return undefined;
    if (ref.collection !== POST) {
      const table = EMBED_DOCUMENT_TABLES[ref.collection];
      const key = { actorId: ref.actorId, rkey: ref.rkey };
      const view =
        table === 'feed_generators'
          ? this.generator(key)
          : table === 'lists'
            ? this.list(key)
            : table === 'starter_packs'
              ? this.starterPackBasic(key)
              : table === 'labelers'
                ? this.labeler(key)
                : undefined;
      if (view) return { $type: typeForTable(table!), ...view };
      return { $type: 'app.bsky.embed.record#viewNotFound', uri: ref.uri, notFound: true };
    }
    const quoted = this.#state.posts.get(keyOf(ref.actorId, ref.rkey));
    const uri = this.uri(ref.actorId, POST, ref.rkey) ?? ref.uri;
    if (!quoted) return { $type: 'app.bsky.embed.record#viewNotFound', uri, notFound: true };
    if (this.viewerBlocks(quoted.authorId) || this.blockedBetween(quoted.authorId, post.authorId)) {
      const author: Json = { did: this.did(quoted.authorId) };
      const viewer = this.actorViewer(quoted.authorId);
      if (viewer) author.viewer = viewer;
      return { $type: 'app.bsky.embed.record#viewBlocked', uri, blocked: true, author };
    }
    const postUri = this.uri(post.authorId, POST, post.rkey);
    const gate = this.#state.documents.get(docKey('postgates', ref.actorId, ref.rkey));
    const detached = gate?.record.detachedEmbeddingUris;
    if (postUri && Array.isArray(detached) && detached.includes(postUri)) {
      return { $type: 'app.bsky.embed.record#viewDetached', uri, detached: true };
    }
    const author = this.profileBasic(quoted.authorId);
    if (!author) return { $type: 'app.bsky.embed.record#viewNotFound', uri, notFound: true };
    const out: Json = {
      $type: 'app.bsky.embed.record#viewRecord',
      uri,
      cid: quoted.cid,
      author,
      value: this.postRecord(quoted),
      labels: this.#postLabels(quoted, uri),
      likeCount: quoted.likeCount,
      replyCount: quoted.replyCount,
      repostCount: quoted.repostCount,
      quoteCount: quoted.quoteCount,
      indexedAt: quoted.indexedAt,
    };
    // as the reference: the quoted post's own embed below it, [] when it has none; nothing at the depth limit
    if (depth + 1 < MAX_EMBED_DEPTH) {
      const inner = this.embed(quoted, depth + 1);
      out.embeds = inner ? [inner] : [];
    }
    return out;
  }

  #media(actor: ActorRow, embed: Json): Json | undefined {
    const did = actor.did;
    if (embed.$type === 'app.bsky.embed.images' && Array.isArray(embed.images)) {
      const images: Json[] = [];
      for (const image of embed.images) {
        if (!isObject(image)) continue;
        const cid = blobCid(image.image);
        const thumb = cid ? this.#image('feed_thumbnail', actor, cid) : null;
        const fullsize = cid ? this.#image('feed_fullsize', actor, cid) : null;
        if (!thumb || !fullsize) continue;
        const view: Json = { thumb, fullsize, alt: str(image.alt) ?? '' };
        if (isObject(image.aspectRatio)) view.aspectRatio = image.aspectRatio;
        images.push(view);
      }
      return { $type: 'app.bsky.embed.images#view', images };
    }
    if (embed.$type === 'app.bsky.embed.external' && isObject(embed.external)) {
      const external = embed.external;
      const view: Json = { uri: str(external.uri) ?? '', title: str(external.title) ?? '', description: str(external.description) ?? '' };
      const cid = blobCid(external.thumb);
      const thumb = cid ? this.#image('feed_thumbnail', actor, cid) : null;
      if (thumb) view.thumb = thumb;
      return { $type: 'app.bsky.embed.external#view', external: view };
    }
    if (embed.$type === 'app.bsky.embed.video') {
      const cid = blobCid(embed.video);
      if (!cid) return undefined;
      const video = (file: string): string =>
        this.#options.videoUrlTemplate.replaceAll('{did}', did).replaceAll('{cid}', cid).replaceAll('{file}', file);
      const view: Json = { $type: 'app.bsky.embed.video#view', cid, playlist: video('playlist.m3u8'), thumbnail: video('thumbnail.jpg') };
      if (typeof embed.alt === 'string') view.alt = embed.alt;
      if (isObject(embed.aspectRatio)) view.aspectRatio = embed.aspectRatio;
      return view;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- lists, generators, packs, labelers

  #document(table: DocumentTable, key: RecordKey): { doc: DocumentRow; uri: string } | undefined {
    const doc = this.#state.documents.get(docKey(table, key.actorId, key.rkey));
    const uri = this.uri(key.actorId, COLLECTION_OF_TABLE[table], key.rkey);
    return doc && uri ? { doc, uri } : undefined;
  }

  listViewBasic(key: RecordKey): Json | undefined {
    const found = this.#document('lists', key);
    if (!found) return undefined;
    const { doc, uri } = found;
    const out: Json = { uri, cid: doc.cid, name: str(doc.record.name) ?? '', purpose: str(doc.record.purpose) ?? '' };
    const avatar = this.#docImage(key.actorId, doc.record.avatar);
    if (avatar) out.avatar = avatar;
    out.listItemCount = doc.itemCount;
    out.labels = [];
    out.indexedAt = doc.indexedAt;
    return out;
  }

  list(key: RecordKey): Json | undefined {
    const basic = this.listViewBasic(key);
    const creator = this.profile(key.actorId);
    if (!basic || !creator) return undefined;
    const { doc } = this.#document('lists', key)!;
    const out: Json = { ...basic, creator };
    if (typeof doc.record.description === 'string') out.description = doc.record.description;
    if (Array.isArray(doc.record.descriptionFacets)) out.descriptionFacets = doc.record.descriptionFacets;
    return out;
  }

  generator(key: RecordKey): Json | undefined {
    const found = this.#document('feed_generators', key);
    const creator = this.profile(key.actorId);
    if (!found || !creator) return undefined;
    const { doc, uri } = found;
    const out: Json = { uri, cid: doc.cid, did: str(doc.record.did) ?? '', creator, displayName: str(doc.record.displayName) ?? '' };
    if (typeof doc.record.description === 'string') out.description = doc.record.description;
    if (Array.isArray(doc.record.descriptionFacets)) out.descriptionFacets = doc.record.descriptionFacets;
    const avatar = this.#docImage(key.actorId, doc.record.avatar);
    if (avatar) out.avatar = avatar;
    out.likeCount = doc.itemCount;
    if (typeof doc.record.acceptsInteractions === 'boolean') out.acceptsInteractions = doc.record.acceptsInteractions;
    if (typeof doc.record.contentMode === 'string') out.contentMode = doc.record.contentMode;
    out.labels = [];
    if (this.#state.viewer !== null) {
      const viewerDid = this.did(this.#state.viewer);
      out.viewer = doc.viewerLike && viewerDid ? { like: `at://${viewerDid}/app.bsky.feed.like/${doc.viewerLike}` } : {};
    }
    out.indexedAt = doc.indexedAt;
    return out;
  }

  starterPackBasic(key: RecordKey): Json | undefined {
    const found = this.#document('starter_packs', key);
    const creator = this.profileBasic(key.actorId);
    if (!found || !creator) return undefined;
    const { doc, uri } = found;
    const out: Json = { uri, cid: doc.cid, record: doc.record, creator, labels: [], indexedAt: doc.indexedAt };
    if (doc.refActorId !== null && doc.refRkey !== null) {
      const list = this.#state.documents.get(docKey('lists', doc.refActorId, doc.refRkey));
      if (list) out.listItemCount = list.itemCount;
    }
    return out;
  }

  labeler(key: RecordKey): Json | undefined {
    const found = this.#document('labelers', key);
    const creator = this.profile(key.actorId);
    if (!found || !creator) return undefined;
    const { doc, uri } = found;
    const out: Json = { uri, cid: doc.cid, creator, likeCount: doc.itemCount, labels: [], indexedAt: doc.indexedAt };
    if (this.#state.viewer !== null) {
      const viewerDid = this.did(this.#state.viewer);
      out.viewer = doc.viewerLike && viewerDid ? { like: `at://${viewerDid}/app.bsky.feed.like/${doc.viewerLike}` } : {};
    }
    return out;
  }

  // ---------------------------------------------------------------- helpers

  #postViewer(post: PostRow): Json | undefined {
    const { viewer } = this.#state;
    if (viewer === null) return undefined;
    const viewerDid = this.did(viewer);
    const key = keyOf(post.authorId, post.rkey);
    const out: Json = {};
    const like = this.#state.likes.get(key);
    const repost = this.#state.reposts.get(key);
    if (like && viewerDid) out.like = `at://${viewerDid}/app.bsky.feed.like/${like}`;
    if (repost && viewerDid) out.repost = `at://${viewerDid}/app.bsky.feed.repost/${repost}`;
    out.threadMuted = false;
    // bookmarks are private state the AppView keeps; Aqueduct keeps none
    out.bookmarked = false;
    out.embeddingDisabled = this.#embeddingDisabled(post);
    return out;
  }

  /** The threadgate view of a thread's root post, when it has one (its `lists`: the lists its rules name that are loaded). */
  threadgate(root: RecordKey): Json | undefined {
    const gate = this.#state.documents.get(docKey('threadgates', root.actorId, root.rkey));
    const uri = this.uri(root.actorId, 'app.bsky.feed.threadgate', root.rkey);
    if (!gate || !uri) return undefined;
    const lists: Json[] = [];
    for (const rule of Array.isArray(gate.record.allow) ? gate.record.allow : []) {
      if (!isObject(rule) || rule.$type !== 'app.bsky.feed.threadgate#listRule' || typeof rule.list !== 'string') continue;
      const list = this.#listByUri(rule.list);
      if (list) lists.push(list);
    }
    return { uri, cid: gate.cid, record: gate.record, lists };
  }

  #listByUri(uri: string): Json | undefined {
    for (const document of this.#state.documents.values()) {
      if (document.table === 'lists' && this.uri(document.authorId, 'app.bsky.graph.list', document.rkey) === uri) {
        return this.listViewBasic({ actorId: document.authorId, rkey: document.rkey });
      }
    }
    return undefined;
  }

  #embeddingDisabled(post: PostRow): boolean {
    const gate = this.#state.documents.get(docKey('postgates', post.authorId, post.rkey));
    const rules = gate?.record.embeddingRules;
    return Array.isArray(rules) && rules.some((rule) => isObject(rule) && rule.$type === 'app.bsky.feed.postgate#disableRule');
  }

  #postLabels(post: PostRow, uri: string): Json[] {
    const did = this.did(post.authorId);
    if (!did || !post.labels?.length) return [];
    return post.labels.map((val) => ({ src: did, uri, cid: post.cid, val, cts: post.createdAt }));
  }

  #selfLabels(record: unknown, did: string, cid: string | null, uri: string, createdAt: string | null): Json[] {
    if (!isObject(record) || !isObject(record.labels) || !Array.isArray(record.labels.values)) return [];
    const out: Json[] = [];
    for (const label of record.labels.values) {
      if (!isObject(label) || typeof label.val !== 'string') continue;
      const view: Json = { src: did, uri, val: label.val, cts: createdAt ?? new Date(0).toISOString() };
      if (cid) view.cid = cid;
      out.push(view);
    }
    return out;
  }

  #strongRef(actorId: number | null, rkey: string | null, cid: string | null): Json | undefined {
    if (actorId === null || rkey === null || cid === null) return undefined;
    const uri = this.uri(actorId, POST, rkey);
    return uri ? { uri, cid } : undefined;
  }

  #image(kind: ImageKind, actor: ActorRow, cid: string): string | null {
    return imageUrl(this.#options.imageUrlTemplate, { kind, did: actor.did, cid, pdsEndpoint: actor.pdsEndpoint });
  }

  #docImage(actorId: number, blob: unknown): string | null {
    const actor = this.#state.actors.get(actorId);
    const cid = blobCid(blob);
    return actor && cid ? this.#image('avatar', actor, cid) : null;
  }
}

function typeForTable(table: DocumentTable): string {
  switch (table) {
    case 'feed_generators':
      return 'app.bsky.feed.defs#generatorView';
    case 'lists':
      return 'app.bsky.graph.defs#listView';
    case 'starter_packs':
      return 'app.bsky.graph.defs#starterPackViewBasic';
    default:
      return 'app.bsky.labeler.defs#labelerView';
  }
}

/** The CID of a blob in its JSON form ({ref: {$link}}), or of a legacy blob ({cid}). */
export function blobCid(value: unknown): string | null {
  if (!isObject(value)) return null;
  const ref = value.ref;
  const cid = isObject(ref) ? ref.$link : value.cid;
  return typeof cid === 'string' ? cid : null;
}
