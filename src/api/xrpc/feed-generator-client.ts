/**
 * Feed generators: where a feed's service lives, and its skeleton.
 *
 * `serviceEndpoint(did)` reads the `#bsky_fg` service of the generator's DID document (did:plc
 * from the PLC directory, did:web from its host), cached for ten minutes. Everything a generator's
 * DID names (its did:web host, its service) is reached through the guarded client (src/outbound:
 * no private addresses; plain http only to ALLOW_PRIVATE_HOSTS). `getSkeleton` calls `app.bsky.feed.getFeedSkeleton` there with a time and size
 * budget, passes the caller's authorization through (the PDS minted it for the generator), and
 * validates the answer against the lexicon. Every failure is an `XrpcError`: 400 `UnknownFeed`
 * when the generator cannot be found, 502 `UpstreamFailure` when it answers badly or not at all.
 */
import { AppBskyFeedGetFeedSkeleton } from '@atcute/bluesky';
import { safeParse } from '@atcute/lexicons/validations';
import { PLC_DID, WEB_DID } from '../../identity/did-resolver.ts';
import { httpGet, type FetchLike } from '../../identity/http-get.ts';
import { outbound, type Outbound } from '../../outbound/guarded-fetch.ts';
import { LruCache } from '../../identity/lru-cache.ts';
import { XrpcError } from '../errors.ts';

export interface FeedGeneratorClientOptions {
  readonly plcUrl: string;
  /** for the PLC directory (default: globalThis.fetch) */
  readonly fetch?: FetchLike;
  /** for what generators name (default: the guarded client, no private hosts) */
  readonly strangers?: Outbound;
  readonly timeoutMs?: number;
}

export interface SkeletonItem {
  readonly post: string;
  readonly repost?: string;
  readonly pin?: boolean;
  readonly feedContext?: string;
}

export interface Skeleton {
  readonly items: readonly SkeletonItem[];
  readonly cursor?: string;
}

const MAX_DOCUMENT_BYTES = 64 * 1024;
const MAX_SKELETON_BYTES = 1024 * 1024;

export class FeedGeneratorClient {
  readonly #plcUrl: string;
  readonly #fetch: FetchLike;
  readonly #strangers: Outbound;
  readonly #timeoutMs: number;
  readonly #endpoints = new LruCache<string, string | null>({ maxEntries: 10_000, ttlMs: 10 * 60_000 });

  constructor(options: FeedGeneratorClientOptions) {
    this.#plcUrl = options.plcUrl.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#strangers = options.strangers ?? outbound();
    this.#timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** The generator service's base URL, or null when its DID document has none. */
  async serviceEndpoint(did: string): Promise<string | null> {
    const cached = this.#endpoints.get(did);
    if (cached !== undefined) return cached;
    const document = this.#documentUrl(did);
    if (document === null) return null;
    let endpoint: string | null = null;
    try {
      const { status, text } = await httpGet(document.url, { fetch: document.fetch, timeoutMs: this.#timeoutMs, maxBytes: MAX_DOCUMENT_BYTES, redirect: 'manual' });
      if (status === 200) endpoint = readFeedService(JSON.parse(text), did, this.#strangers.allowsHttp);
    } catch {
      return null; // transient: not cached
    }
    this.#endpoints.set(did, endpoint);
    return endpoint;
  }

  async getSkeleton(
    feedUri: string,
    generatorDid: string,
    params: { limit: number; cursor?: string | undefined },
    authorization: string | null,
  ): Promise<Skeleton> {
    const endpoint = await this.serviceEndpoint(generatorDid);
    // one reason for every failure: the detail would tell a stranger what the server can reach
    if (endpoint === null) throw new XrpcError(400, 'UnknownFeed', 'could not resolve the feed generator service');
    const url = new URL('/xrpc/app.bsky.feed.getFeedSkeleton', endpoint);
    url.searchParams.set('feed', feedUri);
    url.searchParams.set('limit', String(params.limit));
    if (params.cursor) url.searchParams.set('cursor', params.cursor);
    let answer: { status: number; text: string };
    try {
      answer = await httpGet(url.href, {
        fetch: this.#strangers.fetch,
        timeoutMs: this.#timeoutMs,
        maxBytes: MAX_SKELETON_BYTES,
        headers: authorization ? { authorization } : {},
      });
    } catch {
      throw new XrpcError(502, 'UpstreamFailure', 'the feed generator did not answer');
    }
    if (answer.status === 400 && answer.text.includes('UnknownFeed')) throw new XrpcError(400, 'UnknownFeed', `unknown feed: ${feedUri}`);
    if (answer.status !== 200) throw new XrpcError(502, 'UpstreamFailure', `the feed generator answered ${answer.status}`);
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw new XrpcError(502, 'UpstreamFailure', 'the feed generator answered with invalid JSON');
    }
    const parsed = safeParse(AppBskyFeedGetFeedSkeleton.mainSchema.output.schema, body);
    if (!parsed.ok) throw new XrpcError(502, 'UpstreamFailure', 'the feed generator answered with an invalid skeleton');
    const items: SkeletonItem[] = parsed.value.feed.map((item) => {
      const reason = item.reason as { $type?: string; repost?: string } | undefined;
      return {
        post: item.post,
        ...(reason?.$type === 'app.bsky.feed.defs#skeletonReasonRepost' && reason.repost ? { repost: reason.repost } : {}),
        ...(reason?.$type === 'app.bsky.feed.defs#skeletonReasonPin' ? { pin: true } : {}),
        ...(item.feedContext !== undefined ? { feedContext: item.feedContext } : {}),
      };
    });
    return parsed.value.cursor !== undefined ? { items, cursor: parsed.value.cursor } : { items };
  }

  /** The PLC directory is the operator's; a did:web host is a stranger's, reached through the guard. */
  #documentUrl(did: string): { url: string; fetch: FetchLike } | null {
    if (PLC_DID.test(did)) return { url: `${this.#plcUrl}/${did}`, fetch: this.#fetch };
    const web = WEB_DID.exec(did);
    if (!web) return null;
    const host = web[1]!.toLowerCase();
    const authority = web[2] === undefined ? host : `${host}:${web[2]}`;
    return { url: `${this.#strangers.allowsHttp(host) ? 'http' : 'https'}://${authority}/.well-known/did.json`, fetch: this.#strangers.fetch };
  }
}

function readFeedService(doc: unknown, did: string, allowsHttp: (host: string) => boolean): string | null {
  if (typeof doc !== 'object' || doc === null) return null;
  const services = (doc as { service?: unknown }).service;
  if (!Array.isArray(services)) return null;
  for (const service of services) {
    if (typeof service !== 'object' || service === null) continue;
    const { id, type, serviceEndpoint } = service as { id?: unknown; type?: unknown; serviceEndpoint?: unknown };
    if ((id === '#bsky_fg' || id === `${did}#bsky_fg`) && type === 'BskyFeedGenerator' && typeof serviceEndpoint === 'string') {
      try {
        const url = new URL(serviceEndpoint);
        if (url.protocol === 'https:' || (url.protocol === 'http:' && allowsHttp(url.hostname))) return url.origin;
      } catch {
        return null;
      }
    }
  }
  return null;
}
