/**
 * The XRPC method table: NSID -> lexicon parameters, authentication, and the service call.
 *
 * Each entry parses its parameters with the method's own lexicon schema (params.ts) and calls one
 * `AppView` method with plain values. `auth` says what a caller must present: `optional` methods
 * accept anonymous calls and add viewer state for an authenticated one; `required` ones answer 401
 * without a valid service token.
 */
import {
  AppBskyActorGetProfile,
  AppBskyActorGetProfiles,
  AppBskyActorSearchActors,
  AppBskyActorSearchActorsTypeahead,
  AppBskyFeedGetActorLikes,
  AppBskyFeedGetAuthorFeed,
  AppBskyFeedGetFeed,
  AppBskyFeedGetFeedGenerator,
  AppBskyFeedGetFeedGenerators,
  AppBskyFeedGetLikes,
  AppBskyFeedGetPosts,
  AppBskyFeedGetPostThread,
  AppBskyFeedGetQuotes,
  AppBskyFeedGetRepostedBy,
  AppBskyFeedGetTimeline,
  AppBskyFeedSearchPosts,
  AppBskyGraphGetBlocks,
  AppBskyGraphGetFollowers,
  AppBskyGraphGetFollows,
  AppBskyGraphGetList,
  AppBskyGraphGetLists,
  AppBskyGraphGetRelationships,
  AppBskyGraphGetStarterPack,
} from '@atcute/bluesky';
import * as v from '@atcute/lexicons/validations';
import type { AppView, Viewer } from './app-view.ts';
import { parseParams } from './params.ts';

export interface CallContext {
  readonly viewer: Viewer | null;
  /** the raw Authorization header, passed through to feed generators */
  readonly authorization: string | null;
}

export interface Method {
  readonly auth: 'none' | 'optional' | 'required';
  /** accepted `lxm` values of the service token (default: the method's own NSID) */
  readonly lxm?: readonly string[];
  /** getFeed's token is minted for the feed generator, not for us */
  readonly checkAudience?: boolean;
  call(search: URLSearchParams, context: CallContext): Promise<unknown>;
}

const RESOLVE_HANDLE_PARAMS = v.object({ handle: v.handleString() });

function method<P extends v.ObjectSchema>(
  params: P,
  auth: Method['auth'],
  handler: (params: v.InferOutput<P>, context: CallContext) => Promise<unknown>,
  extra: Pick<Method, 'lxm' | 'checkAudience'> = {},
): Method {
  return { auth, ...extra, call: (search, context) => handler(parseParams(params, search), context) };
}

/** The viewer of a `required` method (routes.ts guarantees it is there). */
const viewerOf = (context: CallContext): Viewer => context.viewer!;

export function methodTable(app: AppView): ReadonlyMap<string, Method> {
  const entries: Array<[string, Method]> = [
    ['com.atproto.identity.resolveHandle', method(RESOLVE_HANDLE_PARAMS, 'none', (p) => app.resolveHandle(p.handle))],
    ['app.bsky.actor.getProfile', method(AppBskyActorGetProfile.mainSchema.params, 'optional', (p, c) => app.getProfile(p.actor, c.viewer))],
    ['app.bsky.actor.getProfiles', method(AppBskyActorGetProfiles.mainSchema.params, 'optional', (p, c) => app.getProfiles(p.actors, c.viewer))],
    [
      'app.bsky.actor.searchActors',
      method(AppBskyActorSearchActors.mainSchema.params, 'optional', (p, c) => app.searchActors(p.q ?? p.term ?? '', p.limit, p.cursor, false, c.viewer)),
    ],
    [
      'app.bsky.actor.searchActorsTypeahead',
      method(AppBskyActorSearchActorsTypeahead.mainSchema.params, 'optional', (p, c) => app.searchActors(p.q ?? p.term ?? '', p.limit, undefined, true, c.viewer)),
    ],
    ['app.bsky.feed.getAuthorFeed', method(AppBskyFeedGetAuthorFeed.mainSchema.params, 'optional', (p, c) => app.getAuthorFeed(p, c.viewer))],
    ['app.bsky.feed.getTimeline', method(AppBskyFeedGetTimeline.mainSchema.params, 'required', (p, c) => app.getTimeline(p, viewerOf(c)))],
    ['app.bsky.feed.getActorLikes', method(AppBskyFeedGetActorLikes.mainSchema.params, 'required', (p, c) => app.getActorLikes(p, viewerOf(c)))],
    ['app.bsky.feed.getPosts', method(AppBskyFeedGetPosts.mainSchema.params, 'optional', (p, c) => app.getPosts(p.uris, c.viewer))],
    ['app.bsky.feed.getPostThread', method(AppBskyFeedGetPostThread.mainSchema.params, 'optional', (p, c) => app.getPostThread(p, c.viewer))],
    ['app.bsky.feed.getLikes', method(AppBskyFeedGetLikes.mainSchema.params, 'optional', (p, c) => app.getLikes(p, c.viewer))],
    ['app.bsky.feed.getRepostedBy', method(AppBskyFeedGetRepostedBy.mainSchema.params, 'optional', (p, c) => app.getRepostedBy(p, c.viewer))],
    ['app.bsky.feed.getQuotes', method(AppBskyFeedGetQuotes.mainSchema.params, 'optional', (p, c) => app.getQuotes(p, c.viewer))],
    ['app.bsky.feed.searchPosts', method(AppBskyFeedSearchPosts.mainSchema.params, 'optional', (p, c) => app.searchPosts(p, c.viewer))],
    ['app.bsky.feed.getFeedGenerator', method(AppBskyFeedGetFeedGenerator.mainSchema.params, 'optional', (p, c) => app.getFeedGenerator(p.feed, c.viewer))],
    ['app.bsky.feed.getFeedGenerators', method(AppBskyFeedGetFeedGenerators.mainSchema.params, 'optional', (p, c) => app.getFeedGenerators(p.feeds, c.viewer))],
    [
      'app.bsky.feed.getFeed',
      method(AppBskyFeedGetFeed.mainSchema.params, 'optional', (p, c) => app.getFeed(p, c.viewer, c.authorization), {
        lxm: ['app.bsky.feed.getFeedSkeleton', 'app.bsky.feed.getFeed'],
        checkAudience: false,
      }),
    ],
    ['app.bsky.graph.getFollowers', method(AppBskyGraphGetFollowers.mainSchema.params, 'optional', (p, c) => app.getFollows(p, c.viewer, true))],
    ['app.bsky.graph.getFollows', method(AppBskyGraphGetFollows.mainSchema.params, 'optional', (p, c) => app.getFollows(p, c.viewer, false))],
    ['app.bsky.graph.getBlocks', method(AppBskyGraphGetBlocks.mainSchema.params, 'required', (p, c) => app.getBlocks(p, viewerOf(c)))],
    ['app.bsky.graph.getRelationships', method(AppBskyGraphGetRelationships.mainSchema.params, 'optional', (p) => app.getRelationships(p))],
    ['app.bsky.graph.getList', method(AppBskyGraphGetList.mainSchema.params, 'optional', (p, c) => app.getList(p, c.viewer))],
    ['app.bsky.graph.getLists', method(AppBskyGraphGetLists.mainSchema.params, 'optional', (p, c) => app.getLists(p, c.viewer))],
    ['app.bsky.graph.getStarterPack', method(AppBskyGraphGetStarterPack.mainSchema.params, 'optional', (p, c) => app.getStarterPack(p.starterPack, c.viewer))],
  ];
  return new Map(entries);
}
