/**
 * Inter-service authentication: the JWT a PDS signs for its user when it proxies a call here.
 *
 * `ServiceAuth.verify(authorization, { lxm, audience })` accepts only a compact JWS whose header
 * names ES256K or ES256, whose payload has `iss` (the user's DID, optionally `#fragment`), `aud`
 * (this AppView's DID, or `did#bsky_appview`), `exp` in the future but at most MAX_LIFETIME_SECONDS
 * ahead (a PDS mints them for 60 s), and `lxm` equal to the called method, signed by the
 * `#atproto` key of the issuer's DID document. If the signature fails with a cached key, the
 * document is fetched again, at most once per REFETCH_INTERVAL_MS per issuer (a stream of forged
 * tokens costs one fetch a minute, not one each). Any failure is an `XrpcError` 401 with the
 * reference AppView's error names (`BadJwt`, `JwtExpired`, `BadJwtAudience`,
 * `BadJwtLexiconMethod`, `BadJwtSignature`); an issuer whose key cannot be had gets the same
 * `BadJwtSignature` whatever the reason (no oracle of what this server can reach). Nothing here
 * throws anything else.
 */
import secp256k1 from 'secp256k1';
import { KeyError, parseDidKey, verifyCommitSignature, type ParsedKey } from '../../firehose/signature.ts';
import { XrpcError } from '../errors.ts';

export interface KeyResolver {
  resolve(did: string): Promise<{ readonly signingKey: string | null }>;
  invalidate(did: string): void;
}

export interface VerifyOptions {
  /** the method called; the token's `lxm` must equal it (or be one of them) */
  readonly lxm: string | readonly string[];
  /** false for getFeed, whose token is minted for the feed generator and passed through */
  readonly checkAudience?: boolean;
}

export interface ServiceAuthOptions {
  readonly audience: string;
  readonly resolver: KeyResolver;
  /** seconds of clock skew tolerated on `exp` (default 0) */
  readonly clockSkewSeconds?: number;
  readonly now?: () => number;
}

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
const MAX_TOKEN_CHARS = 8_192;
const MAX_LIFETIME_SECONDS = 300;
const REFETCH_INTERVAL_MS = 60_000;
const REFETCHES_REMEMBERED = 10_000;

const authError = (error: string, message: string): XrpcError => new XrpcError(401, error, message);

export class ServiceAuth {
  readonly #audience: string;
  readonly #resolver: KeyResolver;
  readonly #skew: number;
  readonly #now: () => number;
  /** issuer -> when its document was last fetched again after a failed signature */
  readonly #refetchedAt = new Map<string, number>();

  constructor(options: ServiceAuthOptions) {
    this.#audience = options.audience;
    this.#resolver = options.resolver;
    this.#skew = options.clockSkewSeconds ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /** The issuer's DID. */
  async verify(authorization: string, options: VerifyOptions): Promise<string> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match || match[1]!.length > MAX_TOKEN_CHARS) throw authError('AuthRequired', 'expected a Bearer token');
    const token = match[1]!;
    const parts = token.split('.');
    if (parts.length !== 3) throw authError('BadJwt', 'poorly formatted jwt');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeJson(headerPart);
    const payload = decodeJson(payloadPart);
    if (!header || !payload) throw authError('BadJwt', 'poorly formatted jwt');
    const alg = header.alg;
    if (alg !== 'ES256K' && alg !== 'ES256') throw authError('BadJwt', 'unsupported jwt algorithm');
    // access and refresh tokens of a PDS are not service tokens
    if (header.typ === 'at+jwt' || header.typ === 'refresh+jwt' || header.typ === 'dpop+jwt') throw authError('BadJwt', 'not a service token');

    const iss = typeof payload.iss === 'string' ? payload.iss.split('#')[0]! : '';
    if (!DID_RE.test(iss)) throw authError('BadJwt', 'jwt issuer is not a DID');
    if (typeof payload.exp !== 'number') throw authError('BadJwt', 'jwt has no expiry');
    if (this.#now() / 1000 > payload.exp + this.#skew) throw authError('JwtExpired', 'jwt expired');
    if (payload.exp > this.#now() / 1000 + MAX_LIFETIME_SECONDS + this.#skew) throw authError('BadJwt', 'jwt expires too far ahead');
    if (options.checkAudience !== false) {
      const aud = typeof payload.aud === 'string' ? payload.aud : '';
      if (aud !== this.#audience && aud.split('#')[0] !== this.#audience) throw authError('BadJwtAudience', 'jwt audience does not match service did');
    }
    const allowed = typeof options.lxm === 'string' ? [options.lxm] : options.lxm;
    if (typeof payload.lxm !== 'string') throw authError('BadJwtLexiconMethod', 'missing jwt lexicon method ("lxm")');
    if (!allowed.includes(payload.lxm)) throw authError('BadJwtLexiconMethod', `bad jwt lexicon method ("lxm"): must match ${allowed[0]}`);

    const signature = Buffer.from(signaturePart, 'base64url');
    const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`);
    const key = await this.#key(iss, false);
    if (this.#verify(signed, signature, key, alg)) return iss;
    if (!this.#mayRefetch(iss)) throw authError('BadJwtSignature', 'jwt signature does not match jwt issuer');
    const fresh = await this.#key(iss, true);
    if (fresh.didKey !== key.didKey && this.#verify(signed, signature, fresh, alg)) return iss;
    throw authError('BadJwtSignature', 'jwt signature does not match jwt issuer');
  }

  #verify(signed: Uint8Array, signature: Uint8Array, key: ParsedKey, alg: 'ES256K' | 'ES256'): boolean {
    if ((alg === 'ES256K') !== (key.type === 'secp256k1') || signature.length !== 64) return false;
    // JWT signatures may carry a high S (the reference verifier allows it); normalise for libsecp256k1
    const sig = key.type === 'secp256k1' ? normalizeK256(signature) : lowS(signature);
    return sig !== null && verifyCommitSignature(signed, sig, key);
  }

  #mayRefetch(did: string): boolean {
    const now = this.#now();
    const last = this.#refetchedAt.get(did);
    if (last !== undefined && now - last < REFETCH_INTERVAL_MS) return false;
    this.#refetchedAt.delete(did);
    if (this.#refetchedAt.size >= REFETCHES_REMEMBERED) this.#refetchedAt.delete(this.#refetchedAt.keys().next().value!);
    this.#refetchedAt.set(did, now);
    return true;
  }

  async #key(did: string, refresh: boolean): Promise<ParsedKey> {
    if (refresh) this.#resolver.invalidate(did);
    let multikey: string | null;
    try {
      multikey = (await this.#resolver.resolve(did)).signingKey;
    } catch {
      throw authError('BadJwtSignature', 'jwt signature does not match jwt issuer');
    }
    if (!multikey) throw authError('BadJwtSignature', 'jwt signature does not match jwt issuer');
    try {
      return parseDidKey(multikey);
    } catch (error) {
      if (error instanceof KeyError) throw authError('BadJwtSignature', 'jwt signature does not match jwt issuer');
      throw error;
    }
  }
}

function decodeJson(part: string): Record<string, unknown> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function normalizeK256(signature: Uint8Array): Uint8Array | null {
  try {
    return secp256k1.signatureNormalize(Uint8Array.from(signature));
  } catch {
    return null;
  }
}

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function lowS(signature: Uint8Array): Uint8Array {
  const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`);
  if (s <= P256_N >> 1n) return signature;
  const out = Uint8Array.from(signature);
  out.set(Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex'), 32);
  return out;
}
