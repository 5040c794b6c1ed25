// signing-keys: a repo's current signing key, cached, and the verify-then-refetch-once policy.
//
// Owns the DID -> parsed signing key cache that commit verification reads. Promises: a bounded LRU
// with TTL; concurrent `get`s of one DID share one resolution and one parse; `invalidate(did)`
// (on an #identity event) drops the key here and the document in the resolver; `verifyCommit`
// answers 'ok' | 'bad-signature' | 'key-unavailable' and never throws. On a failed verification
// it refetches the key once and retries, unless the key in hand was fetched less than
// `minRefreshIntervalMs` ago: a repo that keeps sending bad signatures costs one PLC request per
// interval, not one per commit.
import { isTransientResolutionFailure, type ResolvedDid } from '../identity/did-resolver.ts';
import { LruCache } from '../identity/lru-cache.ts';
import { KeyError, parseDidKey, verifyCommitSignature, type ParsedKey } from './signature.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type VerifyOutcome = 'ok' | 'bad-signature' | 'key-invalid' | 'key-unavailable';

export type SigningKeyErrorReason = 'resolution-failed' | 'no-signing-key' | 'bad-key';

export class SigningKeyError extends ReasonError<SigningKeyErrorReason> {
  override readonly name = 'SigningKeyError';
}

/** The part of DidResolver this cache needs. */
export interface KeyResolver {
  resolve(did: string): Promise<Pick<ResolvedDid, 'signingKey'>>;
  invalidate(did: string): void;
}

export interface SigningKeyCacheOptions {
  /** cache bound (default 100_000) */
  maxEntries?: number;
  /** key lifetime (default 1 hour) */
  ttlMs?: number;
  /** no refetch after a failed verify if the key is younger than this (default 30 s) */
  minRefreshIntervalMs?: number;
  /** clock, injectable for tests (default Date.now) */
  now?: () => number;
}

export class SigningKeyCache {
  readonly #resolver: KeyResolver;
  readonly #cache: LruCache<string, ParsedKey>;
  readonly #inflight = new Map<string, Promise<ParsedKey>>();
  readonly #minRefreshIntervalMs: number;
  readonly #now: () => number;

  constructor(resolver: KeyResolver, options: SigningKeyCacheOptions = {}) {
    this.#resolver = resolver;
    this.#now = options.now ?? Date.now;
    this.#minRefreshIntervalMs = options.minRefreshIntervalMs ?? 30_000;
    this.#cache = new LruCache({
      maxEntries: options.maxEntries ?? 100_000,
      ttlMs: options.ttlMs ?? 60 * 60_000,
      now: this.#now,
    });
  }

  /** The repo's signing key; rejects with a SigningKeyError. */
  get(did: string): Promise<ParsedKey> {
    const cached = this.#cache.get(did);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.#inflight.get(did);
    if (pending !== undefined) return pending;
    // an invalidate() during the load detaches it: its answer may predate the change, so it
    // is returned to its waiters but not cached
    const promise: Promise<ParsedKey> = this.#load(did).then(
      (key) => {
        if (this.#inflight.get(did) === promise) {
          this.#inflight.delete(did);
          this.#cache.set(did, key);
        }
        return key;
      },
      (err: unknown) => {
        if (this.#inflight.get(did) === promise) this.#inflight.delete(did);
        throw err;
      },
    );
    this.#inflight.set(did, promise);
    return promise;
  }

  /**
   * Verifies with the key in memory, without waiting: 'ok' or 'bad-signature' when the key is
   * cached and fresh enough to trust a failure, null when the caller must use `verifyCommit`
   * (no key yet, or a failure that deserves a refetch).
   */
  verifyCached(did: string, unsignedBytes: Uint8Array, sig: Uint8Array): 'ok' | 'bad-signature' | null {
    const entry = this.#cache.entry(did);
    if (entry === undefined) return null;
    if (verifyCommitSignature(unsignedBytes, sig, entry.value)) return 'ok';
    return this.#now() - entry.storedAt < this.#minRefreshIntervalMs ? 'bad-signature' : null;
  }

  /** Whether `get(did)` would answer from memory, without a request. */
  has(did: string): boolean {
    return this.#cache.get(did) !== undefined || this.#inflight.has(did);
  }

  invalidate(did: string): void {
    this.#cache.delete(did);
    this.#inflight.delete(did);
    this.#resolver.invalidate(did);
  }

  async verifyCommit(did: string, unsignedBytes: Uint8Array, sig: Uint8Array): Promise<VerifyOutcome> {
    let key: ParsedKey;
    try {
      key = await this.get(did);
    } catch (err) {
      return keyFailure(err);
    }
    if (verifyCommitSignature(unsignedBytes, sig, key)) return 'ok';

    const storedAt = this.#cache.entry(did)?.storedAt;
    if (storedAt !== undefined && this.#now() - storedAt < this.#minRefreshIntervalMs) return 'bad-signature';
    this.invalidate(did);
    let fresh: ParsedKey;
    try {
      fresh = await this.get(did);
    } catch (err) {
      return keyFailure(err);
    }
    if (fresh.didKey === key.didKey) return 'bad-signature';
    return verifyCommitSignature(unsignedBytes, sig, fresh) ? 'ok' : 'bad-signature';
  }

  async #load(did: string): Promise<ParsedKey> {
    let signingKey: string | null;
    try {
      ({ signingKey } = await this.#resolver.resolve(did));
    } catch (err) {
      throw new SigningKeyError('resolution-failed', `cannot resolve ${did}`, { cause: err });
    }
    if (signingKey === null) throw new SigningKeyError('no-signing-key', `${did} has no #atproto key`);
    let key: ParsedKey;
    try {
      key = parseDidKey(signingKey);
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      throw new SigningKeyError('bad-key', `${did} has an unusable key: ${err.reason}`, { cause: err });
    }
    return key;
  }
}

/** A failure that may pass (the directory is down) is 'key-unavailable'; anything definitive is 'key-invalid'. */
function keyFailure(err: unknown): 'key-invalid' | 'key-unavailable' {
  if (err instanceof SigningKeyError && err.reason === 'resolution-failed') {
    return isTransientResolutionFailure(err.cause) ? 'key-unavailable' : 'key-invalid';
  }
  return 'key-invalid';
}
