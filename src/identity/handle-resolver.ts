// handle-resolver: handle -> DID, the second half of a bidirectional handle check.
//
// Owns handle lookups and their cache. Promises: a syntactically invalid handle, or one under a
// TLD atproto disallows (.local, .arpa, .invalid, .localhost, .internal, .example, .onion, .alt),
// resolves to null without any request. With a trusted `resolverUrl` (HANDLE_RESOLVER_URL) only its
// `com.atproto.identity.resolveHandle` is asked: a DID, or null on 400/404; 5xx, 429, timeouts and
// network errors reject with HandleResolutionError (the answer is unknown, not negative). Without
// it, DNS TXT `_atproto.<handle>` is asked first (exactly one distinct `did=` value wins; several
// is an ambiguous, i.e. null, answer), then `https://<handle>/.well-known/atproto-did`; only when
// both fail to give an answer at all (DNS server failure and HTTP 5xx/timeout/network) does it
// reject, so an outage of our own resolver never marks handles invalid. Answers (DIDs and nulls)
// are cached for `cacheTtlMs`; `fresh: true` skips the cache, and `verify` trusts only a cached
// answer that agrees. HTTP requests go through the
// HostGate when one is given (well-known hosts are grouped by parent domain for handles of three
// or more labels, so `*.bsky.social` shares one bucket).
import { promises as dns } from 'node:dns';
import { httpGet, HttpGetError, type FetchLike } from './http-get.ts';
import { outbound, type Outbound } from '../outbound/guarded-fetch.ts';
import type { HostGate, Outcome, Verdict } from './host-gate.ts';
import { LruCache } from './lru-cache.ts';

export class HandleResolutionError extends Error {
  override readonly name = 'HandleResolutionError';
  readonly handle: string;

  constructor(handle: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.handle = handle;
  }
}

export type ResolveTxt = (name: string) => Promise<string[][]>;

export interface HandleResolverOptions {
  /** trusted XRPC service (HANDLE_RESOLVER_URL); null: DNS then HTTPS well-known */
  resolverUrl?: string | null;
  /** for the trusted service (default: globalThis.fetch) */
  fetch?: FetchLike;
  /** for https://<handle>/.well-known/atproto-did, a host a stranger names (default: the guarded client) */
  strangers?: Outbound;
  resolveTxt?: ResolveTxt;
  /** per lookup step (default 5000) */
  timeoutMs?: number;
  gate?: HostGate;
  /** lifetime of an answer (default 5 minutes) */
  cacheTtlMs?: number;
  /** cache bound (default 50_000) */
  maxEntries?: number;
  now?: () => number;
}

export interface ResolveHandleOptions {
  signal?: AbortSignal;
  /** skip the cache (an #identity event said something changed) */
  fresh?: boolean;
}

const HANDLE_RE =
  /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
const DISALLOWED_TLDS: ReadonlySet<string> = new Set(['local', 'arpa', 'invalid', 'localhost', 'internal', 'example', 'onion', 'alt']);
const NO_ANSWER_DNS_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME', 'NOTFOUND', 'NODATA']);
const MAX_BODY_BYTES = 2048;

/** null when `handle` is not a handle atproto allows; otherwise its normalised (lower-case) form. */
export const normalizeHandle = (handle: string): string | null => {
  const lower = handle.toLowerCase();
  if (lower.length > 253 || !HANDLE_RE.test(lower)) return null;
  const tld = lower.slice(lower.lastIndexOf('.') + 1);
  return DISALLOWED_TLDS.has(tld) ? null : lower;
};

/** The rate-limit and breaker key of a handle's well-known host. */
export const wellKnownHostKey = (handle: string): string => {
  const labels = handle.split('.');
  return labels.length >= 3 ? labels.slice(1).join('.') : handle;
};

type StepAnswer = { kind: 'did'; did: string } | { kind: 'none' } | { kind: 'error'; error: unknown };

const isDid = (value: unknown): value is string => typeof value === 'string' && value.length <= 2048 && DID_RE.test(value);

const httpVerdict = (outcome: Outcome<{ status: number }>): Verdict => {
  if (outcome.ok) return outcome.value.status >= 500 || outcome.value.status === 429 ? 'failure' : 'success';
  const error = outcome.error;
  if (error instanceof HttpGetError) {
    if (error.reason === 'aborted') return 'neutral';
    if (error.reason === 'too-large') return 'success';
  }
  return 'failure';
};

export class HandleResolver {
  readonly #resolverUrl: string | null;
  readonly #fetch: FetchLike;
  readonly #strangers: Outbound;
  readonly #resolveTxt: ResolveTxt;
  readonly #timeoutMs: number;
  readonly #gate: HostGate | null;
  readonly #cache: LruCache<string, string | null>;

  constructor(options: HandleResolverOptions = {}) {
    this.#resolverUrl = options.resolverUrl ? options.resolverUrl.replace(/\/+$/, '') : null;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#strangers = options.strangers ?? outbound();
    this.#resolveTxt = options.resolveTxt ?? ((name) => dns.resolveTxt(name));
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#gate = options.gate ?? null;
    const cacheOptions = { maxEntries: options.maxEntries ?? 50_000, ttlMs: options.cacheTtlMs ?? 5 * 60_000 };
    this.#cache = new LruCache(options.now ? { ...cacheOptions, now: options.now } : cacheOptions);
  }

  /**
   * True when `handle` currently resolves to `did`. Only an agreeing cached answer is trusted: a
   * cached "elsewhere" or "nowhere" is asked again, so a handle that just moved to `did` verifies.
   */
  async verify(handle: string, did: string, options: ResolveHandleOptions = {}): Promise<boolean> {
    if ((await this.resolve(handle, options)) === did) return true;
    if (options.fresh) return false;
    return (await this.resolve(handle, { ...options, fresh: true })) === did;
  }

  /** The DID `handle` points at, or null when it points nowhere (or is not a valid handle). */
  async resolve(handle: string, options: ResolveHandleOptions = {}): Promise<string | null> {
    const normalized = normalizeHandle(handle);
    if (normalized === null) return null;
    if (!options.fresh) {
      const cached = this.#cache.entry(normalized);
      if (cached !== undefined) return cached.value;
    }
    const did = this.#resolverUrl === null ? await this.#resolveDirect(normalized, options.signal) : await this.#resolveTrusted(normalized, options.signal);
    this.#cache.set(normalized, did);
    return did;
  }

  async #resolveTrusted(handle: string, signal: AbortSignal | undefined): Promise<string | null> {
    const url = `${this.#resolverUrl}/xrpc/com.atproto.identity.resolveHandle?handle=${encodeURIComponent(handle)}`;
    let result: { status: number; text: string };
    try {
      result = await this.#get(new URL(url).host, url, signal, this.#fetch);
    } catch (err) {
      throw new HandleResolutionError(handle, 'handle resolver did not answer', { cause: err });
    }
    if (result.status === 200) {
      const did = parseJsonField(result.text, 'did');
      if (isDid(did)) return did;
      throw new HandleResolutionError(handle, 'handle resolver answered without a DID');
    }
    if (result.status === 400 || result.status === 404) return null;
    throw new HandleResolutionError(handle, `handle resolver answered HTTP ${result.status}`);
  }

  async #resolveDirect(handle: string, signal: AbortSignal | undefined): Promise<string | null> {
    const fromDns = await this.#dnsStep(handle);
    if (fromDns.kind === 'did') return fromDns.did;
    signal?.throwIfAborted();
    const fromHttp = await this.#httpStep(handle, signal);
    if (fromHttp.kind === 'did') return fromHttp.did;
    if (fromDns.kind === 'error' && fromHttp.kind === 'error') {
      throw new HandleResolutionError(handle, 'neither DNS nor HTTPS answered', { cause: fromHttp.error });
    }
    return null;
  }

  async #dnsStep(handle: string): Promise<StepAnswer> {
    let records: string[][];
    try {
      records = await withTimeout(this.#resolveTxt(`_atproto.${handle}`), this.#timeoutMs);
    } catch (err) {
      const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
      if (typeof code === 'string' && NO_ANSWER_DNS_CODES.has(code)) return { kind: 'none' };
      return { kind: 'error', error: err };
    }
    const dids = new Set<string>();
    for (const chunks of records) {
      const text = chunks.join('');
      if (text.startsWith('did=')) dids.add(text.slice(4).trim());
    }
    if (dids.size !== 1) return { kind: 'none' };
    const [did] = dids;
    return isDid(did) ? { kind: 'did', did } : { kind: 'none' };
  }

  async #httpStep(handle: string, signal: AbortSignal | undefined): Promise<StepAnswer> {
    let result: { status: number; text: string };
    try {
      result = await this.#get(wellKnownHostKey(handle), `https://${handle}/.well-known/atproto-did`, signal, this.#strangers.fetch);
    } catch (err) {
      if (err instanceof HttpGetError && err.reason === 'aborted') throw err;
      // too large, or a host the guarded client will not reach: the handle does not resolve there
      if (err instanceof HttpGetError && (err.reason === 'too-large' || err.reason === 'refused')) return { kind: 'none' };
      return { kind: 'error', error: err };
    }
    if (result.status >= 500 || result.status === 429) return { kind: 'error', error: new Error(`HTTP ${result.status}`) };
    if (result.status !== 200) return { kind: 'none' };
    const did = result.text.split('\n')[0]!.trim();
    return isDid(did) ? { kind: 'did', did } : { kind: 'none' };
  }

  #get(hostKey: string, url: string, signal: AbortSignal | undefined, fetch: FetchLike): Promise<{ status: number; text: string }> {
    const get = () =>
      httpGet(url, {
        fetch,
        timeoutMs: this.#timeoutMs,
        maxBytes: MAX_BODY_BYTES,
        ...(signal ? { signal } : {}),
        headers: { accept: 'application/json, text/plain' },
      });
    return this.#gate === null ? get() : this.#gate.run(hostKey, get, httpVerdict, signal);
  }
}

const parseJsonField = (text: string, field: string): unknown => {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && field in value ? (value as Record<string, unknown>)[field] : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Bounds a lookup that cannot be cancelled (node:dns has no AbortSignal): after the timeout the
 * lookup is left to finish on its own, its outcome observed and ignored.
 */
const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`timed out after ${ms} ms`), { code: 'ETIMEOUT' })), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
