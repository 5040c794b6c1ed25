// did-resolver: did:plc and did:web resolution with a bounded cache, for code off the hot path.
//
// Owns DID document fetching and its cache. Promises: `resolve` settles within `timeoutMs` (headers
// and body), reads at most `maxDocumentBytes`, and rejects only with a DidResolutionError carrying
// a fixed `reason`; concurrent resolves of one DID share one request; answers are cached in a
// bounded LRU (`ttlMs`), definitive failures (not-found, tombstoned, bad-document) for
// `negativeTtlMs`, transient ones (timeout, network, http-status) not at all; `invalidate(did)`
// drops the cached answer and detaches any request in flight, whose answer is then not cached
// (it may predate the change that caused the invalidation).
// did:web is host-level only (atproto does not use paths), fetched through the guarded client
// (src/outbound: no private addresses, no redirect elsewhere), over https except for the
// ALLOW_PRIVATE_HOSTS hosts (tests, local setups); a host it refuses is a definitive 'refused'.
// The PLC directory is the operator's choice (PLC_URL) and is fetched directly.
import { DidDocumentError, parseDidDocument, type DidDocumentInfo } from './did-document.ts';
import { BodyTooLarge, readBounded, type FetchLike } from './http-get.ts';
import { LruCache } from './lru-cache.ts';
import { OutboundRefused, outbound, type Outbound } from '../outbound/guarded-fetch.ts';

export type DidResolutionErrorReason =
  | 'unsupported-did'
  | 'not-found'
  | 'tombstoned'
  | 'timeout'
  | 'http-status'
  | 'network'
  | 'bad-document'
  | 'refused';

export class DidResolutionError extends Error {
  override readonly name = 'DidResolutionError';
  readonly reason: DidResolutionErrorReason;
  readonly did: string;
  /** HTTP status when the reason came from one */
  readonly status: number | null;

  constructor(
    reason: DidResolutionErrorReason,
    did: string,
    message: string,
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options);
    this.reason = reason;
    this.did = did;
    this.status = options?.status ?? null;
  }
}

/**
 * Whether a resolution failure may pass (timeout, network, a 5xx or a status-less HTTP failure, or
 * anything that is not a DidResolutionError) rather than say something definitive about the DID.
 */
export const isTransientResolutionFailure = (error: unknown): boolean => {
  if (!(error instanceof DidResolutionError)) return true;
  if (error.reason === 'timeout' || error.reason === 'network') return true;
  return error.reason === 'http-status' && (error.status === null || error.status >= 500);
};

export type ResolvedDid = DidDocumentInfo;

export type { FetchLike };

export interface DidResolverOptions {
  /** PLC directory base URL, e.g. https://plc.directory */
  plcUrl: string;
  /** for the PLC directory (default: globalThis.fetch) */
  fetch?: FetchLike;
  /** for did:web documents, named by strangers (default: the guarded client, no private hosts) */
  strangers?: Outbound;
  /** whole-request budget, headers and body (default 5000) */
  timeoutMs?: number;
  /** lifetime of a resolved document (default 1 hour) */
  ttlMs?: number;
  /** lifetime of a definitive failure (default 5 minutes) */
  negativeTtlMs?: number;
  /** cache bound (default 50_000) */
  maxEntries?: number;
  /** largest accepted document (default 64 KiB) */
  maxDocumentBytes?: number;
  /** clock for the cache, injectable for tests */
  now?: () => number;
}

/** A did:plc identifier: 24 characters of lowercase base32. */
export const PLC_DID = /^did:plc:[a-z2-7]{24}$/;
/** A did:web identifier at a host: the host, and the port when it is encoded (`%3A`). */
export const WEB_DID = /^did:web:([a-zA-Z0-9.-]{1,253})(?:%3[aA]([0-9]{1,5}))?$/;
const CACHEABLE_FAILURES: ReadonlySet<DidResolutionErrorReason> = new Set(['not-found', 'tombstoned', 'bad-document', 'refused']);
const ACCEPT = 'application/did+ld+json, application/json';

export class DidResolver {
  readonly #plcUrl: string;
  readonly #fetch: FetchLike;
  readonly #strangers: Outbound;
  readonly #timeoutMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxDocumentBytes: number;
  readonly #cache: LruCache<string, ResolvedDid | DidResolutionError>;
  readonly #inflight = new Map<string, Promise<ResolvedDid>>();

  constructor(options: DidResolverOptions) {
    this.#plcUrl = options.plcUrl.replace(/\/+$/, '');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#strangers = options.strangers ?? outbound();
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#negativeTtlMs = options.negativeTtlMs ?? 5 * 60_000;
    this.#maxDocumentBytes = options.maxDocumentBytes ?? 64 * 1024;
    const cacheOptions = { maxEntries: options.maxEntries ?? 50_000, ttlMs: options.ttlMs ?? 60 * 60_000 };
    this.#cache = new LruCache(options.now ? { ...cacheOptions, now: options.now } : cacheOptions);
  }

  /** Number of cached answers (documents and definitive failures). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  resolve(did: string): Promise<ResolvedDid> {
    const cached = this.#cache.get(did);
    if (cached !== undefined) {
      return cached instanceof DidResolutionError ? Promise.reject(cached) : Promise.resolve(cached);
    }
    const pending = this.#inflight.get(did);
    if (pending !== undefined) return pending;

    const promise: Promise<ResolvedDid> = this.#load(did).then(
      (resolved) => {
        if (this.#inflight.get(did) === promise) {
          this.#inflight.delete(did);
          this.#cache.set(did, resolved);
        }
        return resolved;
      },
      (err: unknown) => {
        const error =
          err instanceof DidResolutionError
            ? err
            : new DidResolutionError('network', did, 'resolution failed', { cause: err });
        if (this.#inflight.get(did) === promise) {
          this.#inflight.delete(did);
          if (CACHEABLE_FAILURES.has(error.reason)) this.#cache.set(did, error, this.#negativeTtlMs);
        }
        throw error;
      },
    );
    this.#inflight.set(did, promise);
    return promise;
  }

  /** The host (`name[:port]`) a resolve of `did` asks, or null for an unsupported DID. */
  documentHost(did: string): string | null {
    try {
      return new URL(this.#documentUrl(did).url).host;
    } catch {
      return null;
    }
  }

  /** Forgets the cached answer for `did`; a request in flight is detached and not cached. */
  invalidate(did: string): void {
    this.#cache.delete(did);
    this.#inflight.delete(did);
  }

  #documentUrl(did: string): { url: string; redirect: RequestRedirect; fetch: FetchLike } {
    if (PLC_DID.test(did)) return { url: `${this.#plcUrl}/${did}`, redirect: 'follow', fetch: this.#fetch };
    const web = WEB_DID.exec(did);
    if (web !== null) {
      const host = web[1]!.toLowerCase();
      const port = web[2];
      const scheme = this.#strangers.allowsHttp(host) ? 'http' : 'https';
      const authority = port === undefined ? host : `${host}:${port}`;
      // a did:web document lives at its host; a redirect elsewhere is not followed
      return { url: `${scheme}://${authority}/.well-known/did.json`, redirect: 'manual', fetch: this.#strangers.fetch };
    }
    throw new DidResolutionError('unsupported-did', did, 'not a did:plc or host-level did:web');
  }

  async #load(did: string): Promise<ResolvedDid> {
    const { url, redirect, fetch } = this.#documentUrl(did);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    const failed = (err: unknown, what: string): DidResolutionError =>
      controller.signal.aborted
        ? new DidResolutionError('timeout', did, `${what}: timed out after ${this.#timeoutMs} ms`, { cause: err })
        : new DidResolutionError('network', did, `${what}: network error`, { cause: err });
    try {
      let response: Response;
      try {
        response = await fetch(url, { signal: controller.signal, redirect, headers: { accept: ACCEPT } });
      } catch (err) {
        if (err instanceof OutboundRefused) throw new DidResolutionError('refused', did, `not fetched: ${err.message}`, { cause: err });
        throw failed(err, 'fetch');
      }
      const { status } = response;
      if (status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        if (status === 404) throw new DidResolutionError('not-found', did, 'DID not found', { status });
        if (status === 410) throw new DidResolutionError('tombstoned', did, 'DID tombstoned', { status });
        throw new DidResolutionError('http-status', did, `unexpected HTTP ${status}`, { status });
      }
      let text: string;
      try {
        text = await readBounded(response, this.#maxDocumentBytes);
      } catch (err) {
        if (err instanceof BodyTooLarge) throw new DidResolutionError('bad-document', did, 'document too large');
        throw failed(err, 'body');
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new DidResolutionError('bad-document', did, 'document is not JSON', { cause: err });
      }
      let info: DidDocumentInfo;
      try {
        info = parseDidDocument(json);
      } catch (err) {
        if (!(err instanceof DidDocumentError)) throw err;
        throw new DidResolutionError('bad-document', did, `bad document: ${err.reason}`, { cause: err });
      }
      if (info.did !== did) throw new DidResolutionError('bad-document', did, 'document id differs from DID');
      return info;
    } finally {
      clearTimeout(timer);
    }
  }
}
