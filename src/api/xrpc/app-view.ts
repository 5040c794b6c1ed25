/**
 * The AppView's read service: one method per XRPC query, plain values in, lexicon JSON out.
 *
 * Owns the semantics of each view: which page (queries.ts), what it hydrates (hydration/), which
 * errors the lexicon names (unknown actors, deactivated and taken-down accounts, blocks). Promises:
 * every page is built with a fixed number of statements (the page query, then hydration); a
 * `viewer` (the authenticated caller) only adds viewer state and block filtering; cursors are
 * opaque and resume strictly after the last item returned.
 */
import { Hydrator, type DocumentKey, type HydrateRequest } from '../../hydration/hydrator.ts';
import { keyOf, loadDocuments, loadRelations, type Db, type RecordKey } from '../../hydration/loaders.ts';
import { POST, Views, type Json, type ViewOptions } from '../../hydration/views.ts';
import { normalizeDatetime } from '../../pipeline/collections.ts';
import { XrpcError } from '../errors.ts';
import { resolveActors, resolveUris, type ActorRef, type ResolvedUri } from './actors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import type { FeedGeneratorClient } from './feed-generator-client.ts';
import { invalid } from './params.ts';
import * as Q from './queries.ts';

export interface Viewer {
  readonly did: string;
  /** null when the caller's account is not indexed here */
  readonly actorId: number | null;
}

export interface AppViewOptions extends ViewOptions {
  readonly db: Db;
  readonly feedGenerators: FeedGeneratorClient;
}

const TIME_CURSOR = ['time', 'int', 'text'] as const;
const MAX_THREAD_POSTS = 2_000;

const timeCursor = (cursor: string | undefined): Q.TimeCursor | undefined => {
  const parts = decodeCursor(cursor, TIME_CURSOR);
  return parts && { time: parts[0], actorId: parts[1], rkey: parts[2] };
};
const nextCursor = (rows: ReadonlyArray<{ cursor: Q.TimeCursor }>, limit: number): string | undefined => {
  const last = rows.at(-1);
  return last && rows.length >= limit ? encodeCursor([last.cursor.time, last.cursor.actorId, last.cursor.rkey]) : undefined;
};
const withCursor = <T extends Json>(body: T, cursor: string | undefined): T => (cursor === undefined ? body : { cursor, ...body });
const defined = <T>(values: ReadonlyArray<T | undefined>): T[] => values.filter((value): value is T => value !== undefined);

export class AppView {
  readonly #db: Db;
  readonly #hydrator: Hydrator;
  readonly #options: ViewOptions;
  readonly #feeds: FeedGeneratorClient;

  constructor(options: AppViewOptions) {
    this.#db = options.db;
    this.#hydrator = new Hydrator(options.db);
    this.#options = { imageUrlTemplate: options.imageUrlTemplate, videoUrlTemplate: options.videoUrlTemplate };
    this.#feeds = options.feedGenerators;
  }

  /** The viewer's actor id, looked up once per request. */
  async viewerFor(did: string): Promise<Viewer> {
    const actor = (await resolveActors(this.#db, [did])).get(did);
    return { did, actorId: actor?.id ?? null };
  }

  async #views(request: HydrateRequest, viewer: Viewer | null): Promise<Views> {
    const state = await this.#hydrator.hydrate(request, viewer?.actorId ?? null);
    return new Views(state, this.#options);
  }

  // ------------------------------------------------------------------ identity

  async resolveHandle(handle: string): Promise<Json> {
    const actor = (await resolveActors(this.#db, [handle])).get(handle);
    if (!actor || actor.handle === null) throw invalid('Unable to resolve handle');
    return { did: actor.did };
  }

  // ------------------------------------------------------------------ actors

  /**
   * An actor that must exist and be active, with the errors the reference AppView answers: its
   * getProfile names why (`AccountDeactivated`, `AccountTakedown`); every other method says
   * `InvalidRequest` "Profile not found" for an inactive account as for a missing one.
   */
  async #requireActor(identifier: string, why: 'profile' | 'not-found' = 'not-found'): Promise<ActorRef> {
    const actor = (await resolveActors(this.#db, [identifier])).get(identifier);
    if (!actor || actor.status === 'deleted') throw invalid('Profile not found');
    if (actor.status !== null && why === 'not-found') throw invalid('Profile not found');
    if (actor.status === 'deactivated') throw new XrpcError(400, 'AccountDeactivated', 'Account is deactivated');
    if (actor.status === 'takendown' || actor.status === 'suspended') throw new XrpcError(400, 'AccountTakedown', 'Account has been suspended');
    return actor;
  }

  async getProfile(actor: string, viewer: Viewer | null): Promise<Json> {
    const found = await this.#requireActor(actor, 'profile');
    const views = await this.#views({ actors: [found.id], detailedActors: [found.id] }, viewer);
    const profile = views.profileDetailed(found.id);
    if (!profile) throw invalid('Profile not found');
    return profile;
  }

  async getProfiles(actors: readonly string[], viewer: Viewer | null): Promise<Json> {
    const resolved = await resolveActors(this.#db, actors);
    const ids = [...new Set(actors.map((actor) => resolved.get(actor)?.id).filter((id): id is number => id !== undefined))];
    const views = await this.#views({ actors: ids, detailedActors: ids }, viewer);
    return { profiles: defined(ids.map((id) => views.profileDetailed(id))) };
  }

  async searchActors(q: string, limit: number, cursor: string | undefined, typeahead: boolean, viewer: Viewer | null): Promise<Json> {
    const offset = decodeCursor(cursor, ['int'] as const)?.[0] ?? 0;
    if (offset < 0) throw invalid('cursor is not valid');
    const ids = await Q.searchActors(this.#db, q, typeahead, limit, offset);
    const views = await this.#views({ actors: ids }, viewer);
    const actors = defined(ids.map((id) => (typeahead ? views.profileBasic(id) : views.profile(id))));
    if (typeahead) return { actors };
    return withCursor({ actors }, ids.length >= limit ? encodeCursor([offset + ids.length]) : undefined);
  }

  // ------------------------------------------------------------------ feeds

  async getAuthorFeed(
    params: { actor: string; limit: number; cursor?: string | undefined; filter: string; includePins: boolean },
    viewer: Viewer | null,
  ): Promise<Json> {
    const filters: readonly Q.AuthorFeedFilter[] = ['posts_with_replies', 'posts_no_replies', 'posts_with_media', 'posts_and_author_threads', 'posts_with_video'];
    const filter = filters.find((known) => known === params.filter);
    if (!filter) throw invalid(`filter must be one of ${filters.join(', ')}`);
    const actor = await this.#requireActor(params.actor);
    const cursor = timeCursor(params.cursor);
    if (viewer?.actorId != null && viewer.actorId !== actor.id) {
      const relations = await loadRelations(this.#db, viewer.actorId, [actor.id]);
      if (relations.some((row) => row.kind === 'blocking' || row.kind === 'blockingByList')) throw new XrpcError(400, 'BlockedActor', 'Requester has blocked actor');
      if (relations.some((row) => row.kind === 'blockedBy' || row.kind === 'blockedByList')) throw new XrpcError(400, 'BlockedByActor', 'Requester is blocked by actor');
    }
    const rows = await Q.authorFeed(this.#db, actor.id, filter, params.limit, cursor);
    let pinned: RecordKey | null = null;
    if (params.includePins && cursor === undefined) pinned = await this.#pinnedPost(actor);
    const keys = rows.map((row) => row.post);
    const views = await this.#views({ posts: pinned ? [pinned, ...keys] : keys, replyContext: true, actors: [actor.id] }, viewer);
    const feed: Json[] = [];
    if (pinned) {
      const item = views.feedViewPost(pinned, 'pin');
      if (item) feed.push(item);
    }
    for (const row of rows) {
      if (pinned && !row.repost && row.post.actorId === pinned.actorId && row.post.rkey === pinned.rkey) continue;
      const item = views.feedViewPost(row.post, row.repost ? { repostBy: row.repost.by, repostRkey: row.repost.rkey, repostCid: row.repost.cid, indexedAt: row.repost.indexedAt } : undefined);
      if (item) feed.push(item);
    }
    return withCursor({ feed }, nextCursor(rows, params.limit));
  }

  async #pinnedPost(actor: ActorRef): Promise<RecordKey | null> {
    const record = await loadProfileRecord(this.#db, actor.id);
    const pinned = record?.pinnedPost as { uri?: unknown } | undefined;
    if (typeof pinned?.uri !== 'string') return null;
    const prefix = `at://${actor.did}/${POST}/`;
    return pinned.uri.startsWith(prefix) ? { actorId: actor.id, rkey: pinned.uri.slice(prefix.length) } : null;
  }

  async getTimeline(params: { limit: number; cursor?: string | undefined }, viewer: Viewer): Promise<Json> {
    const cursor = timeCursor(params.cursor);
    if (viewer.actorId === null) return { feed: [] };
    const rows = await Q.timeline(this.#db, viewer.actorId, params.limit, cursor);
    const views = await this.#views({ posts: rows.map((row) => row.post), replyContext: true }, viewer);
    const feed: Json[] = [];
    for (const row of rows) {
      if (views.viewerBlocks(row.post.actorId) || (row.repost && views.viewerBlocks(row.repost.by))) continue;
      const item = views.feedViewPost(row.post, row.repost ? { repostBy: row.repost.by, repostRkey: row.repost.rkey, repostCid: row.repost.cid, indexedAt: row.repost.indexedAt } : undefined);
      if (item) feed.push(item);
    }
    return withCursor({ feed }, nextCursor(rows, params.limit));
  }

  async getActorLikes(params: { actor: string; limit: number; cursor?: string | undefined }, viewer: Viewer): Promise<Json> {
    const actor = await this.#requireActor(params.actor);
    // likes are private to their author in the reference AppView
    if (viewer.actorId !== actor.id) throw invalid('Profile not found');
    const rows = await Q.actorLikes(this.#db, actor.id, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ posts: rows.map((row) => row.post), replyContext: true }, viewer);
    const feed = defined(rows.map((row) => (views.viewerBlocks(row.post.actorId) ? undefined : views.feedViewPost(row.post))));
    return withCursor({ feed }, nextCursor(rows, params.limit));
  }

  async getPosts(uris: readonly string[], viewer: Viewer | null): Promise<Json> {
    const resolved = await resolveUris(this.#db, uris);
    const keys = defined(uris.map((uri) => resolved.get(uri))).filter((key) => key.collection === POST);
    const views = await this.#views({ posts: keys }, viewer);
    return { posts: defined(keys.map((key) => views.post(key))) };
  }

  async #requirePost(uri: string): Promise<ResolvedUri> {
    const key = (await resolveUris(this.#db, [uri])).get(uri);
    if (!key) throw invalid(`uri must be an AT-URI of a known record`);
    return key;
  }

  async getLikes(params: { uri: string; cid?: string | undefined; limit: number; cursor?: string | undefined }, viewer: Viewer | null): Promise<Json> {
    const subject = await this.#requirePost(params.uri);
    const rows = await Q.interactions(this.#db, 'likes', subject, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ actors: rows.map((row) => row.actorId) }, viewer);
    const likes = defined(
      rows.map((row) => {
        const actor = views.profile(row.actorId);
        return actor && { indexedAt: row.indexedAt, createdAt: row.createdAt, actor };
      }),
    );
    return withCursor({ uri: params.uri, ...(params.cid ? { cid: params.cid } : {}), likes }, nextCursor(rows, params.limit));
  }

  async getRepostedBy(params: { uri: string; cid?: string | undefined; limit: number; cursor?: string | undefined }, viewer: Viewer | null): Promise<Json> {
    const subject = await this.#requirePost(params.uri);
    const rows = await Q.interactions(this.#db, 'reposts', subject, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ actors: rows.map((row) => row.actorId) }, viewer);
    const repostedBy = defined(rows.map((row) => views.profile(row.actorId)));
    return withCursor({ uri: params.uri, ...(params.cid ? { cid: params.cid } : {}), repostedBy }, nextCursor(rows, params.limit));
  }

  async getQuotes(params: { uri: string; cid?: string | undefined; limit: number; cursor?: string | undefined }, viewer: Viewer | null): Promise<Json> {
    const subject = await this.#requirePost(params.uri);
    const rows = await Q.quotes(this.#db, subject, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ posts: rows.map((row) => row.post) }, viewer);
    const posts = defined(rows.map((row) => (views.viewerBlocks(row.post.actorId) ? undefined : views.post(row.post))));
    return withCursor({ uri: params.uri, ...(params.cid ? { cid: params.cid } : {}), posts }, nextCursor(rows, params.limit));
  }

  async searchPosts(
    params: {
      q: string;
      sort: string;
      author?: string | undefined;
      mentions?: string | undefined;
      since?: string | undefined;
      until?: string | undefined;
      lang?: string | undefined;
      tag?: string[] | undefined;
      limit: number;
      cursor?: string | undefined;
    },
    viewer: Viewer | null,
  ): Promise<Json> {
    if (params.sort !== 'latest' && params.sort !== 'top') throw invalid('sort must be latest or top');
    const since = params.since === undefined ? null : searchTime(params.since, 'since');
    const until = params.until === undefined ? null : searchTime(params.until, 'until');
    const identifiers = [params.author, params.mentions].filter((value): value is string => value !== undefined);
    const actors = await resolveActors(this.#db, identifiers);
    const author = params.author === undefined ? null : actors.get(params.author);
    const mentions = params.mentions === undefined ? null : actors.get(params.mentions);
    if (author === undefined || mentions === undefined) return { posts: [] };
    const cursor = params.sort === 'top' ? decodeCursor(params.cursor, ['int'] as const)?.[0] : timeCursor(params.cursor);
    if (typeof cursor === 'number' && cursor < 0) throw invalid('cursor is not valid');
    const rows = await Q.searchPosts(this.#db, {
      q: params.q,
      sort: params.sort,
      authorId: author?.id ?? null,
      mentionsDid: mentions?.did ?? null,
      since,
      until,
      lang: params.lang ?? null,
      tags: params.tag ?? [],
      limit: params.limit,
      cursor,
    });
    const views = await this.#views({ posts: rows.map((row) => row.post) }, viewer);
    const posts = defined(rows.map((row) => (views.viewerBlocks(row.post.actorId) ? undefined : views.post(row.post))));
    const next =
      rows.length < params.limit ? undefined : params.sort === 'top' ? encodeCursor([(typeof cursor === 'number' ? cursor : 0) + rows.length]) : nextCursor(rows, params.limit);
    return withCursor({ posts }, next);
  }

  // ------------------------------------------------------------------ threads

  async getPostThread(params: { uri: string; depth: number; parentHeight: number }, viewer: Viewer | null): Promise<Json> {
    const anchor = (await resolveUris(this.#db, [params.uri])).get(params.uri);
    if (!anchor || anchor.collection !== POST) throw new XrpcError(400, 'NotFound', `Post not found: ${params.uri}`);
    const [ancestors, descendants, [rootRow]] = await Promise.all([
      this.#db.run(
        (sql) => sql`
          with recursive up(actor_id, rkey, height) as (
            select reply_parent_actor_id, reply_parent_rkey, 1 from posts
              where author_id = ${anchor.actorId} and rkey = ${anchor.rkey} and reply_parent_actor_id is not null
            union all
            select p.reply_parent_actor_id, p.reply_parent_rkey, up.height + 1 from up
              join posts p on p.author_id = up.actor_id and p.rkey = up.rkey
              where p.reply_parent_actor_id is not null and up.height < ${params.parentHeight}
          )
          select actor_id, rkey from up`,
      ),
      params.depth === 0
        ? Promise.resolve([])
        : this.#db.run(
            (sql) => sql`
              with recursive down(actor_id, rkey, depth) as (
                select p.author_id, p.rkey, 1 from posts p where p.reply_parent_actor_id = ${anchor.actorId} and p.reply_parent_rkey = ${anchor.rkey}
                union all
                select p.author_id, p.rkey, down.depth + 1 from down
                  join posts p on p.reply_parent_actor_id = down.actor_id and p.reply_parent_rkey = down.rkey
                  where down.depth < ${params.depth}
              )
              select actor_id, rkey from down limit ${MAX_THREAD_POSTS}`,
          ),
      this.#db.run((sql) => sql`select reply_root_actor_id, reply_root_rkey from posts where author_id = ${anchor.actorId} and rkey = ${anchor.rkey}`),
    ]);
    // the thread's root: its threadgate is the thread's
    const threadRoot: RecordKey =
      rootRow?.replyRootActorId != null ? { actorId: rootRow.replyRootActorId as number, rkey: rootRow.replyRootRkey as string } : anchor;
    const keys: RecordKey[] = [anchor, ...[...ancestors, ...descendants].map((row) => ({ actorId: row.actorId as number, rkey: row.rkey as string }))];
    const views = await this.#views({ posts: keys, documents: [{ table: 'threadgates', ...threadRoot }] }, viewer);
    const state = views.state;
    const anchorPost = state.posts.get(keyOf(anchor.actorId, anchor.rkey));
    if (!anchorPost) throw new XrpcError(400, 'NotFound', `Post not found: ${params.uri}`);
    if (views.viewerBlocks(anchorPost.authorId)) return { thread: views.blockedPost(views.uri(anchor.actorId, POST, anchor.rkey)!, anchorPost.authorId) };

    const children = new Map<string, RecordKey[]>();
    for (const post of state.posts.values()) {
      if (post.replyParentActorId === null || post.replyParentRkey === null) continue;
      const parent = keyOf(post.replyParentActorId, post.replyParentRkey);
      const list = children.get(parent) ?? [];
      list.push({ actorId: post.authorId, rkey: post.rkey });
      children.set(parent, list);
    }
    const rootAuthor = anchorPost.replyRootActorId ?? anchorPost.authorId;

    // each post is shown once: forged replies can point at each other (a -> b -> a), and a
    // cycle with more than one reply a post would otherwise grow the answer exponentially
    const shown = new Set<string>([keyOf(anchor.actorId, anchor.rkey)]);
    const node = (key: RecordKey, depth: number): Json | undefined => {
      const view = views.post(key);
      if (!view) return undefined;
      // threadContext.rootAuthorLike (the root author's like of this post) is not looked up: {} as
      // the reference answers a post the root author has not liked
      const out: Json = { $type: 'app.bsky.feed.defs#threadViewPost', post: view, threadContext: {} };
      if (depth < params.depth) {
        const replies = (children.get(keyOf(key.actorId, key.rkey)) ?? [])
          .filter((reply) => !shown.has(keyOf(reply.actorId, reply.rkey)))
          .filter((reply) => !views.viewerBlocks(reply.actorId) && !views.blockedBetween(reply.actorId, anchorPost.authorId))
          .sort((a, b) => {
            const own = Number(b.actorId === rootAuthor) - Number(a.actorId === rootAuthor);
            if (own !== 0) return own;
            const pa = state.posts.get(keyOf(a.actorId, a.rkey))!;
            const pb = state.posts.get(keyOf(b.actorId, b.rkey))!;
            return pa.createdAt < pb.createdAt ? -1 : pa.createdAt > pb.createdAt ? 1 : 0;
          });
        for (const reply of replies) shown.add(keyOf(reply.actorId, reply.rkey));
        out.replies = defined(replies.map((reply) => node(reply, depth + 1)));
      }
      return out;
    };
    const thread = node(anchor, 0);
    if (!thread) throw new XrpcError(400, 'NotFound', `Post not found: ${params.uri}`);

    // parents, up to parentHeight: a missing one ends the chain as notFoundPost, a blocked one as blockedPost
    let child: Json = thread;
    let current = anchorPost;
    for (let height = 0; height < params.parentHeight && current.replyParentActorId !== null && current.replyParentRkey !== null; height++) {
      const parentKey = { actorId: current.replyParentActorId, rkey: current.replyParentRkey };
      if (shown.has(keyOf(parentKey.actorId, parentKey.rkey))) break; // a forged cycle of parents
      shown.add(keyOf(parentKey.actorId, parentKey.rkey));
      const parentPost = state.posts.get(keyOf(parentKey.actorId, parentKey.rkey));
      const stub = views.postOrStub(parentKey, current.authorId);
      if (!parentPost || !stub || stub.$type !== 'app.bsky.feed.defs#postView') {
        if (stub) child.parent = stub;
        break;
      }
      const { $type: _type, ...view } = stub;
      const parentNode: Json = { $type: 'app.bsky.feed.defs#threadViewPost', post: view, threadContext: {} };
      child.parent = parentNode;
      child = parentNode;
      current = parentPost;
    }
    const threadgate = views.threadgate(threadRoot);
    return threadgate ? { thread, threadgate } : { thread };
  }

  // ------------------------------------------------------------------ graph

  async getFollows(params: { actor: string; limit: number; cursor?: string | undefined }, viewer: Viewer | null, followers: boolean): Promise<Json> {
    const actor = await this.#requireActor(params.actor);
    const rows = await Q.graphPage(this.#db, followers ? 'followers' : 'follows', actor.id, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ actors: [actor.id, ...rows.map((row) => row.actorId)] }, viewer);
    const subject = views.profile(actor.id);
    if (!subject) throw invalid('Profile not found');
    const list = defined(rows.map((row) => views.profile(row.actorId)));
    return withCursor(followers ? { subject, followers: list } : { subject, follows: list }, nextCursor(rows, params.limit));
  }

  async getBlocks(params: { limit: number; cursor?: string | undefined }, viewer: Viewer): Promise<Json> {
    if (viewer.actorId === null) return { blocks: [] };
    const rows = await Q.graphPage(this.#db, 'blocks', viewer.actorId, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ actors: rows.map((row) => row.actorId) }, viewer);
    return withCursor({ blocks: defined(rows.map((row) => views.profile(row.actorId))) }, nextCursor(rows, params.limit));
  }

  async getRelationships(params: { actor: string; others?: string[] | undefined }): Promise<Json> {
    const others = params.others ?? [];
    const resolved = await resolveActors(this.#db, [params.actor, ...others]);
    const actor = resolved.get(params.actor);
    if (!actor) throw new XrpcError(400, 'ActorNotFound', 'Actor not found');
    const ids = defined(others.map((other) => resolved.get(other)?.id));
    const rows = await loadRelations(this.#db, actor.id, ids);
    const listRkeys = rows.filter((row) => row.listActorId !== null);
    const listDids = new Map<number, string>();
    if (listRkeys.length > 0) {
      const listActors = await this.#db.run((sql) => sql`select id, did from actors where id = any(${listRkeys.map((row) => row.listActorId!)}::int4[])`);
      for (const row of listActors) listDids.set(row.id, row.did);
    }
    const relationships = others.map((other) => {
      const found = resolved.get(other);
      if (!found) return { $type: 'app.bsky.graph.defs#notFoundActor', actor: other, notFound: true };
      const out: Json = { $type: 'app.bsky.graph.defs#relationship', did: found.did };
      for (const row of rows) {
        if (row.other !== found.id) continue;
        if (row.kind === 'following') out.following = `at://${actor.did}/app.bsky.graph.follow/${row.rkey}`;
        else if (row.kind === 'followedBy') out.followedBy = `at://${found.did}/app.bsky.graph.follow/${row.rkey}`;
        else if (row.kind === 'blocking') out.blocking = `at://${actor.did}/app.bsky.graph.block/${row.rkey}`;
        else if (row.kind === 'blockedBy') out.blockedBy = `at://${found.did}/app.bsky.graph.block/${row.rkey}`;
        else if (row.listActorId !== null && listDids.has(row.listActorId)) {
          const uri = `at://${listDids.get(row.listActorId)}/app.bsky.graph.list/${row.rkey}`;
          if (row.kind === 'blockingByList') out.blockingByList = uri;
          else out.blockedByList = uri;
        }
      }
      return out;
    });
    return { actor: actor.did, relationships };
  }

  async getList(params: { list: string; limit: number; cursor?: string | undefined }, viewer: Viewer | null): Promise<Json> {
    const list = await this.#requirePost(params.list);
    if (list.collection !== 'app.bsky.graph.list') throw invalid('list must be the AT-URI of a list');
    const rows = await Q.listItems(this.#db, list, params.limit, timeCursor(params.cursor));
    const views = await this.#views({ documents: [{ table: 'lists', actorId: list.actorId, rkey: list.rkey }], actors: rows.map((row) => row.subjectId) }, viewer);
    const listView = views.list(list);
    if (!listView) throw invalid('List not found');
    const items = defined(
      rows.map((row) => {
        const subject = views.profile(row.subjectId);
        const uri = views.uri(row.itemActorId, 'app.bsky.graph.listitem', row.itemRkey) ?? `at://${list.actor.did}/app.bsky.graph.listitem/${row.itemRkey}`;
        return subject && { uri, subject };
      }),
    );
    return withCursor({ list: listView, items }, nextCursor(rows, params.limit));
  }

  async getLists(params: { actor: string; limit: number; cursor?: string | undefined; purposes?: string[] | undefined }, viewer: Viewer | null): Promise<Json> {
    // as the reference: the lists of an account that is gone or inactive are none, not an error
    const actor = (await resolveActors(this.#db, [params.actor])).get(params.actor);
    if (!actor || actor.status !== null) return { lists: [] };
    const after = decodeCursor(params.cursor, ['text'] as const)?.[0];
    const purposes = params.purposes?.map((purpose) =>
      purpose === 'modlist' || purpose === 'curatelist' || purpose === 'referencelist' ? `app.bsky.graph.defs#${purpose}` : purpose,
    );
    const rkeys = await Q.actorLists(this.#db, actor.id, purposes ?? null, params.limit, after);
    const views = await this.#views({ documents: rkeys.map((rkey) => ({ table: 'lists' as const, actorId: actor.id, rkey })) }, viewer);
    const lists = defined(rkeys.map((rkey) => views.list({ actorId: actor.id, rkey })));
    return withCursor({ lists }, rkeys.length >= params.limit ? encodeCursor([rkeys.at(-1)!]) : undefined);
  }

  async getStarterPack(uri: string, viewer: Viewer | null): Promise<Json> {
    const pack = await this.#requirePost(uri);
    if (pack.collection !== 'app.bsky.graph.starterpack') throw invalid('starterPack must be the AT-URI of a starter pack');
    const [packRow] = await loadDocuments(this.#db, [{ table: 'starter_packs', actorId: pack.actorId, rkey: pack.rkey }], null);
    if (!packRow) throw invalid('Starter pack not found');
    const list = packRow.refActorId !== null && packRow.refRkey !== null ? { actorId: packRow.refActorId, rkey: packRow.refRkey } : null;
    const sample = list ? await Q.listItems(this.#db, list, 12, undefined) : [];
    const feedUris = Array.isArray(packRow.record.feeds)
      ? packRow.record.feeds.map((feed: unknown) => (feed as { uri?: unknown }).uri).filter((value): value is string => typeof value === 'string')
      : [];
    const feeds = [...(await resolveUris(this.#db, feedUris)).values()].filter((feed) => feed.collection === 'app.bsky.feed.generator');
    const documents: DocumentKey[] = [
      { table: 'starter_packs', actorId: pack.actorId, rkey: pack.rkey },
      ...(list ? [{ table: 'lists' as const, ...list }] : []),
      ...feeds.map((feed) => ({ table: 'feed_generators' as const, actorId: feed.actorId, rkey: feed.rkey })),
    ];
    const views = await this.#views({ documents, actors: sample.map((row) => row.subjectId) }, viewer);
    const basic = views.starterPackBasic(pack);
    if (!basic) throw invalid('Starter pack not found');
    const { listItemCount: _count, ...view } = basic;
    const out: Json = { ...view, ...(await Q.starterPackJoins(this.#db, uri)) };
    if (list) {
      const listView = views.listViewBasic(list);
      if (listView) out.list = listView;
      out.listItemsSample = defined(
        sample.map((row) => {
          const subject = views.profile(row.subjectId);
          const itemUri = views.uri(row.itemActorId, 'app.bsky.graph.listitem', row.itemRkey);
          return subject && itemUri ? { uri: itemUri, subject } : undefined;
        }),
      );
    }
    out.feeds = defined(feeds.map((feed) => views.generator(feed)));
    return { starterPack: out };
  }

  // ------------------------------------------------------------------ feed generators

  async getFeedGenerator(feed: string, viewer: Viewer | null): Promise<Json> {
    const key = (await resolveUris(this.#db, [feed])).get(feed);
    if (!key || key.collection !== 'app.bsky.feed.generator') throw invalid('could not find feed');
    const views = await this.#views({ documents: [{ table: 'feed_generators', actorId: key.actorId, rkey: key.rkey }] }, viewer);
    const view = views.generator(key);
    if (!view) throw invalid('could not find feed');
    const endpoint = await this.#feeds.serviceEndpoint(String(view.did));
    return { view, isOnline: endpoint !== null, isValid: endpoint !== null };
  }

  async getFeedGenerators(feeds: readonly string[], viewer: Viewer | null): Promise<Json> {
    const resolved = await resolveUris(this.#db, feeds);
    const keys = defined(feeds.map((feed) => resolved.get(feed))).filter((key) => key.collection === 'app.bsky.feed.generator');
    const views = await this.#views({ documents: keys.map((key) => ({ table: 'feed_generators' as const, actorId: key.actorId, rkey: key.rkey })) }, viewer);
    return { feeds: defined(keys.map((key) => views.generator(key))) };
  }

  async getFeed(params: { feed: string; limit: number; cursor?: string | undefined }, viewer: Viewer | null, authorization: string | null): Promise<Json> {
    const key = (await resolveUris(this.#db, [params.feed])).get(params.feed);
    if (!key || key.collection !== 'app.bsky.feed.generator') throw new XrpcError(400, 'UnknownFeed', `Unknown feed: ${params.feed}`);
    const [generator] = await loadDocuments(this.#db, [{ table: 'feed_generators', actorId: key.actorId, rkey: key.rkey }], null);
    const serviceDid = generator?.record.did;
    if (typeof serviceDid !== 'string') throw new XrpcError(400, 'UnknownFeed', `Unknown feed: ${params.feed}`);
    const skeleton = await this.#feeds.getSkeleton(`at://${key.actor.did}/app.bsky.feed.generator/${key.rkey}`, serviceDid, params, authorization);
    const items = skeleton.items.slice(0, params.limit);
    const resolved = await resolveUris(this.#db, items.flatMap((item) => (item.repost ? [item.post, item.repost] : [item.post])));
    const postKeys = defined(items.map((item) => resolved.get(item.post)));
    const views = await this.#views({ posts: postKeys, replyContext: true }, viewer);
    const feed: Json[] = [];
    for (const item of items) {
      const post = resolved.get(item.post);
      if (!post || post.collection !== POST || views.viewerBlocks(post.actorId)) continue;
      const repost = item.repost ? resolved.get(item.repost) : undefined;
      const reason = item.pin
        ? ('pin' as const)
        : repost && repost.collection === 'app.bsky.feed.repost'
          ? { repostBy: repost.actorId, repostRkey: repost.rkey, indexedAt: new Date().toISOString() }
          : undefined;
      const view = views.feedViewPost(post, reason);
      if (!view) continue;
      if (item.feedContext !== undefined) view.feedContext = item.feedContext;
      feed.push(view);
    }
    return withCursor({ feed }, skeleton.cursor);
  }
}

/** A datetime or a bare date (YYYY-MM-DD), as searchPosts' since/until allow. */
function searchTime(value: string, name: string): string {
  // normalizeDatetime: an instant PostgreSQL can hold (years 1-9999), or null
  const time = normalizeDatetime(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (time === null) throw invalid(`${name} must be a datetime or a date (YYYY-MM-DD) of the years 1 to 9999`);
  return time;
}

/** An actor's profile record, for its pinned post. */
async function loadProfileRecord(db: Db, actorId: number): Promise<Record<string, unknown> | null> {
  const rows = await db.run((sql) => sql`select record from profiles where author_id = ${actorId} and rkey = 'self'`);
  return (rows[0]?.record as Record<string, unknown> | undefined) ?? null;
}
