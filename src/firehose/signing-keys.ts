// signing-keys: a repo's current signing key, cached, and the verify-then-refetch-once policy.
//
// Owns the DID -> parsed signing key cache that commit verification reads. Promises: bounded
// (`maxEntries` DIDs, CLOCK eviction: a key in use stays) with a TTL; concurrent `get`s of one DID
// share one resolution and one parse; `invalidate(did)` (on an #identity event) drops the key here
// and the document in the resolver; `verifyCommit` answers 'ok' | 'bad-signature' |
// 'key-unavailable' and never throws. On a failed verification it refetches the key once and
// retries, unless the key in hand was fetched less than `minRefreshIntervalMs` ago: a repo that
// keeps sending bad signatures costs one PLC request per interval, not one per commit.
// `learn(did, key)` takes a key the directory published unasked (its export, plc-export.ts).
// A key that cannot be used (absent, in a form key-forms.ts cannot read, off its curve) is counted
// in `unusableKeys` by its reason, once per document or export line read, not once per commit.
// A cached secp256k1 key is its 65-byte point in one slab (DidSlots gives each DID its place),
// ~100 bytes per repo instead of ~1 KB of strings and objects; what is handed out is a copy, so a
// key in hand never changes under its holder. P-256 keys (rare in the network) keep their KeyObject.
import { toBase58Btc } from '@atcute/multibase';
import { isTransientResolutionFailure, type ResolvedDid } from '../identity/did-resolver.ts';
import { DidSlots, withLength } from '../lib/did-slots.ts';
import { KeyError, parseDidKey, verifyCommitSignature, type P256Key, type ParsedKey, type Secp256k1Key } from './signature.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type VerifyOutcome = 'ok' | 'bad-signature' | 'key-invalid' | 'key-unavailable';

export type SigningKeyErrorReason = 'resolution-failed' | 'no-signing-key' | 'bad-key';

export class SigningKeyError extends ReasonError<SigningKeyErrorReason> {
  override readonly name = 'SigningKeyError';
}

/**
 * Why a key is wanted ahead of its commit: 'prefetch' may wait behind other requests; 'new-repo' is
 * a prefetch for a repo's first commit, whose key the directory's export is about to bring.
 */
export type KeyPurpose = 'prefetch' | 'new-repo';

/** A resolver's answer: the key, and why it is null when the document has one that is unusable. */
export type KeyAnswer = Pick<ResolvedDid, 'signingKey'> & Partial<Pick<ResolvedDid, 'signingKeyProblem'>>;

/** The part of DidResolver this cache needs. */
export interface KeyResolver {
  resolve(did: string, purpose?: KeyPurpose): Promise<KeyAnswer>;
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

const UNCOMPRESSED_POINT_BYTES = 65;
const K256_MULTICODEC = [0xe7, 0x01];

/** A secp256k1 key rebuilt from its uncompressed point; the rarely read forms are derived on demand. */
class K256KeyCopy implements Secp256k1Key {
  readonly type = 'secp256k1';
  readonly uncompressed: Uint8Array;

  constructor(uncompressed: Uint8Array) {
    this.uncompressed = uncompressed;
  }

  get publicKey(): Uint8Array {
    const compressed = new Uint8Array(33);
    compressed[0] = 0x02 | (this.uncompressed[64]! & 1);
    compressed.set(this.uncompressed.subarray(1, 33), 1);
    return compressed;
  }

  get didKey(): string {
    return `did:key:z${toBase58Btc(Uint8Array.of(...K256_MULTICODEC, ...this.publicKey))}`;
  }
}

export class SigningKeyCache {
  readonly #resolver: KeyResolver;
  readonly #slots: DidSlots;
  /** slot -> uncompressed secp256k1 point, UNCOMPRESSED_POINT_BYTES each */
  #points: Uint8Array;
  #storedAt: Float64Array;
  /** slot -> P-256 key, for the slots that hold one */
  readonly #p256 = new Map<number, P256Key>();
  readonly #ttlMs: number;
  readonly #inflight = new Map<string, Promise<ParsedKey>>();
  readonly #minRefreshIntervalMs: number;
  readonly #now: () => number;
  /** unusable keys met, by reason: `no-atproto-key`, `not-on-curve` or a key-forms.ts reason */
  readonly unusableKeys = new Map<string, number>();

  constructor(resolver: KeyResolver, options: SigningKeyCacheOptions = {}) {
    this.#resolver = resolver;
    this.#now = options.now ?? Date.now;
    this.#minRefreshIntervalMs = options.minRefreshIntervalMs ?? 30_000;
    this.#ttlMs = options.ttlMs ?? 60 * 60_000;
    this.#slots = new DidSlots(options.maxEntries ?? 100_000);
    this.#points = new Uint8Array(this.#slots.allocated * UNCOMPRESSED_POINT_BYTES);
    this.#storedAt = new Float64Array(this.#slots.allocated);
  }

  /** The repo's signing key; rejects with a SigningKeyError. `purpose` is passed to the resolver. */
  get(did: string, purpose?: KeyPurpose): Promise<ParsedKey> {
    const slot = this.#liveSlot(did);
    if (slot >= 0) return Promise.resolve(this.#keyIn(slot));
    const pending = this.#inflight.get(did);
    if (pending !== undefined) return pending;
    // an invalidate() during the load detaches it: its answer may predate the change, so it
    // is returned to its waiters but not cached
    const promise: Promise<ParsedKey> = this.#load(did, purpose).then(
      (key) => {
        if (this.#inflight.get(did) === promise) {
          this.#inflight.delete(did);
          this.#store(did, key);
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
    const slot = this.#liveSlot(did);
    if (slot < 0) return null;
    if (verifyCommitSignature(unsignedBytes, sig, this.#keyIn(slot))) return 'ok';
    return this.#now() - this.#storedAt[slot]! < this.#minRefreshIntervalMs ? 'bad-signature' : null;
  }

  /** Whether `get(did)` would answer from memory, without a request. */
  has(did: string): boolean {
    return this.#liveSlot(did) >= 0 || this.#inflight.has(did);
  }

  /**
   * A key the directory published without being asked: it replaces the cached one. Null (the DID
   * has no key now) or a key that does not parse drops the DID instead; a changed key also drops the
   * resolver's copy of the document.
   */
  learn(did: string, signingKey: string | null): void {
    let key: ParsedKey | null = null;
    if (signingKey !== null) {
      try {
        key = parseDidKey(signingKey);
      } catch (err) {
        if (!(err instanceof KeyError)) throw err;
        this.#countUnusable(err.reason);
      }
    }
    const slot = this.#slots.find(did);
    if (key === null) {
      if (slot >= 0) this.invalidate(did);
      return;
    }
    if (slot >= 0 && this.#keyIn(slot).didKey !== key.didKey) this.#resolver.invalidate(did);
    this.#store(did, key);
  }

  invalidate(did: string): void {
    const slot = this.#slots.find(did);
    if (slot >= 0) this.#forget(slot);
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

    const slot = this.#liveSlot(did);
    if (slot >= 0 && this.#now() - this.#storedAt[slot]! < this.#minRefreshIntervalMs) return 'bad-signature';
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

  /** The slot of `did`'s key, or -1 when absent or older than the TTL (then dropped). */
  #liveSlot(did: string): number {
    const slot = this.#slots.find(did);
    if (slot < 0) return -1;
    if (this.#storedAt[slot]! + this.#ttlMs <= this.#now()) {
      this.#forget(slot);
      return -1;
    }
    return slot;
  }

  #keyIn(slot: number): ParsedKey {
    const start = slot * UNCOMPRESSED_POINT_BYTES;
    return this.#p256.get(slot) ?? new K256KeyCopy(this.#points.slice(start, start + UNCOMPRESSED_POINT_BYTES));
  }

  #store(did: string, key: ParsedKey): void {
    let slot = this.#slots.find(did);
    if (slot < 0) {
      slot = this.#slots.add(did);
      if (this.#slots.allocated > this.#storedAt.length) {
        this.#points = withLength(this.#points, this.#slots.allocated * UNCOMPRESSED_POINT_BYTES);
        this.#storedAt = withLength(this.#storedAt, this.#slots.allocated);
      }
    }
    this.#storedAt[slot] = this.#now();
    if (key.type === 'p256') {
      this.#p256.set(slot, key);
    } else {
      this.#p256.delete(slot);
      this.#points.set(key.uncompressed, slot * UNCOMPRESSED_POINT_BYTES);
    }
  }

  #forget(slot: number): void {
    this.#slots.remove(slot);
    this.#p256.delete(slot);
  }

  #countUnusable(reason: string): void {
    this.unusableKeys.set(reason, (this.unusableKeys.get(reason) ?? 0) + 1);
  }

  async #load(did: string, purpose: KeyPurpose | undefined): Promise<ParsedKey> {
    let answer: KeyAnswer;
    try {
      answer = await this.#resolver.resolve(did, purpose);
    } catch (err) {
      throw new SigningKeyError('resolution-failed', `cannot resolve ${did}`, { cause: err });
    }
    if (answer.signingKey === null) {
      const problem = answer.signingKeyProblem ?? null;
      this.#countUnusable(problem ?? 'no-atproto-key');
      if (problem === null) throw new SigningKeyError('no-signing-key', `${did} has no #atproto key`);
      throw new SigningKeyError('bad-key', `${did} has an unusable key: ${problem}`);
    }
    try {
      return parseDidKey(answer.signingKey);
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      this.#countUnusable(err.reason);
      throw new SigningKeyError('bad-key', `${did} has an unusable key: ${err.reason}`, { cause: err });
    }
  }
}

/** A failure of `get`: one that may pass (the directory is down) is 'key-unavailable'; anything definitive is 'key-invalid'. */
export function keyFailure(err: unknown): 'key-invalid' | 'key-unavailable' {
  if (err instanceof SigningKeyError && err.reason === 'resolution-failed') {
    return isTransientResolutionFailure(err.cause) ? 'key-unavailable' : 'key-invalid';
  }
  return 'key-invalid';
}
