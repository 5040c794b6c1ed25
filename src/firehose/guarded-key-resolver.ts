/**
 * The DID resolver that commit verification uses, behind a circuit breaker per host.
 *
 * When the PLC directory (or a did:web host) keeps failing for a reason that may pass (timeouts,
 * network errors, 5xx), its circuit opens and lookups fail at once as 'network' instead of each
 * waiting for a timeout: verification answers 'key-unavailable' straight away, the commit is
 * indexed and counted unverified, and ingestion keeps its speed while the directory is down. One
 * probe per cooldown tests the host; its success closes the circuit. Definitive answers (not
 * found, tombstoned, a bad document) count as the host working.
 */
import { CircuitBreakers, CircuitOpenError } from '../identity/circuit-breaker.ts';
import { outbound } from '../outbound/guarded-fetch.ts';
import { DidResolutionError, DidResolver, isTransientResolutionFailure, type ResolvedDid } from '../identity/did-resolver.ts';
import type { KeyResolver } from './signing-keys.ts';

export class GuardedKeyResolver implements KeyResolver {
  readonly #resolver: DidResolver;
  readonly #breakers: CircuitBreakers;

  constructor(resolver: DidResolver, breakers: CircuitBreakers = new CircuitBreakers()) {
    this.#resolver = resolver;
    this.#breakers = breakers;
  }

  async resolve(did: string): Promise<ResolvedDid> {
    const host = this.#resolver.documentHost(did);
    if (host === null) return this.#resolver.resolve(did);
    try {
      this.#breakers.enter(host);
    } catch (error) {
      if (!(error instanceof CircuitOpenError)) throw error;
      throw new DidResolutionError('network', did, `${host} is failing: not asked until ${new Date(error.retryAt).toISOString()}`, { cause: error });
    }
    try {
      const resolved = await this.#resolver.resolve(did);
      this.#breakers.success(host);
      return resolved;
    } catch (error) {
      if (isTransientResolutionFailure(error)) this.#breakers.failure(host);
      else this.#breakers.success(host);
      throw error;
    }
  }

  invalidate(did: string): void {
    this.#resolver.invalidate(did);
  }
}

/**
 * The resolver a verifying thread fetches keys with: the directory at `plcUrl`, and did:web hosts
 * through the guarded client (ALLOW_PRIVATE_HOSTS let through), behind circuit breakers. The
 * signing-key cache lives on the pipeline's thread, so the document cache stays small.
 */
export const commitKeyResolver = (plcUrl: string, allowPrivateHosts: readonly string[] = []): GuardedKeyResolver =>
  new GuardedKeyResolver(
    new DidResolver({ plcUrl, fetch: globalThis.fetch, strangers: outbound({ allowPrivateHosts: new Set(allowPrivateHosts) }), maxEntries: 1000 }),
  );
