/**
 * guarded-fetch: the one HTTP client for everything fetched on a stranger's behalf (did:web
 * documents, handles' /.well-known/atproto-did, PDSes, feed generators, service-auth issuers).
 *
 * A `fetch`-shaped function (FetchLike), so every caller keeps its own timeouts and size caps.
 * Promises: the URL must be http or https; its host is judged by address-policy.ts before any
 * lookup (IP literals in every form); a name is resolved here (the `resolve` seam) and the
 * connection goes to an address that passed the check, the one that was checked (no second
 * lookup, so no DNS rebinding between check and connect); redirects are followed by hand, at most
 * `maxRedirects`, each hop judged by the same rules, and an https request never continues over
 * http; `redirect: 'manual'` returns the 3xx itself. A refusal rejects with OutboundRefused, whose
 * `reason` is fixed and whose message names the host, for the log, never for a client. Hosts in
 * `allowPrivateHosts` (ALLOW_PRIVATE_HOSTS) skip the address checks, for the simulator, tests and
 * private deployments.
 */
import http from 'node:http';
import https from 'node:https';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { addressVerdict, hostVerdict } from './address-policy.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type OutboundRefusedReason = 'scheme' | 'address' | 'https-downgrade' | 'redirects';

export class OutboundRefused extends ReasonError<OutboundRefusedReason> {
  override readonly name = 'OutboundRefused';
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;
export type Resolve = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export interface GuardedFetchOptions {
  /** host names (lower case) allowed whatever they resolve to */
  readonly allowPrivateHosts?: ReadonlySet<string>;
  /** the resolver seam (default: the system's, every address) */
  readonly resolve?: Resolve;
  /** redirects followed at most (default 3) */
  readonly maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const systemResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true });

export function guardedFetch(options: GuardedFetchOptions = {}): FetchLike {
  const allow = options.allowPrivateHosts ?? new Set<string>();
  const resolve = options.resolve ?? systemResolve;
  const maxRedirects = options.maxRedirects ?? 3;

  /** The first resolved address that passes, for the connection to use. */
  const checkedLookup = (host: string): LookupFunction => (hostname, lookupOptions, callback) => {
    const all = typeof lookupOptions === 'object' && lookupOptions !== null && (lookupOptions as { all?: boolean }).all === true;
    resolve(hostname).then(
      (addresses) => {
        const usable = allow.has(host) ? [...addresses] : addresses.filter((entry) => addressVerdict(entry.address).allowed);
        if (usable.length === 0) {
          const why = addresses.length ? addressVerdict(addresses[0]!.address) : null;
          const error = new OutboundRefused('address', `${host} resolves to no address that may be fetched${why && !why.allowed ? ` (${why.reason})` : ''}`);
          callback(error as NodeJS.ErrnoException, '', 0);
          return;
        }
        if (all) (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [usable[0]!]);
        else callback(null, usable[0]!.address, usable[0]!.family);
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, '', 0),
    );
  };

  return async (input, init) => {
    let url = new URL(input);
    const httpsOnly = url.protocol === 'https:';
    let method = init.method ?? 'GET';
    for (let hop = 0; ; hop++) {
      const host = judgeHop(url, httpsOnly, allow);
      const response = await requestOnce(url, { ...init, method }, isIP(host) ? undefined : checkedLookup(host));
      if (!REDIRECTS.has(response.status) || init.redirect === 'manual') return response;
      const location = response.headers.get('location');
      await response.body?.cancel();
      if (!location) return response;
      if (hop >= maxRedirects) throw new OutboundRefused('redirects', `more than ${maxRedirects} redirects from ${input}`);
      url = new URL(location, url);
      if (response.status === 303) method = 'GET';
    }
  };
}

/** One hop's URL judged before anything is sent: its host, or an OutboundRefused. */
export function judgeHop(url: URL, httpsOnly: boolean, allow: ReadonlySet<string>): string {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OutboundRefused('scheme', `${url.protocol} URLs are not fetched`);
  if (httpsOnly && url.protocol !== 'https:') throw new OutboundRefused('https-downgrade', `a redirect from https to ${url.host} over http`);
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const verdict = hostVerdict(host, allow);
  if (!verdict.allowed) throw new OutboundRefused('address', `${host}: ${verdict.reason}`);
  return host;
}

function requestOnce(url: URL, init: RequestInit, lookup: LookupFunction | undefined): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(
      url,
      { method: init.method ?? 'GET', headers, ...(lookup ? { lookup } : {}), ...(init.signal ? { signal: init.signal } : {}) },
      (incoming) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (Array.isArray(value)) for (const item of value) responseHeaders.append(name, item);
          else if (value !== undefined) responseHeaders.set(name, value);
        }
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            incoming.on('data', (chunk: Buffer) => controller.enqueue(new Uint8Array(chunk)));
            incoming.on('end', () => controller.close());
            incoming.on('error', (error) => controller.error(error));
          },
          cancel() {
            incoming.destroy();
          },
        });
        const status = incoming.statusCode ?? 502;
        resolve(new Response(status === 204 || status === 304 ? null : body, { status, headers: responseHeaders }));
      },
    );
    request.on('error', reject);
    if (init.body !== undefined && init.body !== null) request.end(init.body as string | Uint8Array);
    else request.end();
  });
}

/** What a component that fetches for strangers is given: the guarded fetch, and where plain http may go. */
export interface Outbound {
  readonly fetch: FetchLike;
  /** true for the ALLOW_PRIVATE_HOSTS hosts only: everything else a stranger names is https */
  readonly allowsHttp: (host: string) => boolean;
}

export function outbound(options: GuardedFetchOptions = {}): Outbound {
  const allow = options.allowPrivateHosts ?? new Set<string>();
  return { fetch: guardedFetch(options), allowsHttp: (host) => allow.has(host.toLowerCase().replace(/^\[|\]$/g, '')) };
}
