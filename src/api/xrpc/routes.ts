/**
 * The XRPC surface as one Elysia plugin: `/xrpc/<nsid>`, `/xrpc/_health`, `/.well-known/did.json`.
 *
 * `xrpcRoutes(options)` takes plain services and config values and wires the method table, the
 * service-auth verifier and the AppView service; handlers here only read the request (NSID, query
 * string, Authorization) and hand plain values on. Unknown methods answer
 * `501 MethodNotImplemented`; a query called with POST answers `400 InvalidRequest`; every error
 * is an `XrpcError`, mapped to `{error, message}` by `errors.ts`.
 */
import { Elysia } from 'elysia';
import type { Database } from '../../db/database.ts';
import { DidResolver } from '../../identity/did-resolver.ts';
import type { FetchLike } from '../../identity/http-get.ts';
import type { Logger } from '../../log.ts';
import { isNsid } from '../../lib/syntax.ts';
import type { Outbound } from '../../outbound/guarded-fetch.ts';
import { XrpcError } from '../errors.ts';
import { AppView } from './app-view.ts';
import { ServiceAuth, type KeyResolver } from './auth.ts';
import { RateLimiter } from '../rate-limit.ts';
import { FeedGeneratorClient } from './feed-generator-client.ts';
import { methodTable, type CallContext } from './methods.ts';

export interface XrpcOptions {
  readonly db: Pick<Database, 'run'>;
  readonly log: Logger;
  /** APPVIEW_DID: the audience of service tokens, and the DID `/.well-known/did.json` describes */
  readonly appviewDid: string;
  /** https://APPVIEW_HOSTNAME: the `#bsky_appview` service endpoint */
  readonly appviewEndpoint: string;
  readonly plcUrl: string;
  readonly imageUrlTemplate: string;
  readonly videoUrlTemplate: string;
  /** DID documents of token issuers; default: a DidResolver on `plcUrl` */
  readonly keyResolver?: KeyResolver;
  /** for the PLC directory (tests) */
  readonly fetch?: FetchLike;
  /** the guarded client for what strangers name: feed generators, token issuers' did:web (default: no private hosts) */
  readonly strangers?: Outbound;
  readonly version?: string;
  /**
   * Requests per window per authenticated viewer (RATE_LIMIT, as per client address): taken after
   * the token verified, so nobody can spend another account's budget by naming it.
   */
  readonly viewerRateLimit?: { readonly limit: number; readonly windowSeconds: number };
}

export function xrpcRoutes(options: XrpcOptions) {
  const version = options.version ?? '0.1.0';
  const clients = { plcUrl: options.plcUrl, ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.strangers ? { strangers: options.strangers } : {}) };
  const feedGenerators = new FeedGeneratorClient(clients);
  const app = new AppView({
    db: options.db,
    feedGenerators,
    imageUrlTemplate: options.imageUrlTemplate,
    videoUrlTemplate: options.videoUrlTemplate,
  });
  const auth = new ServiceAuth({
    audience: options.appviewDid,
    resolver: options.keyResolver ?? new DidResolver(clients),
    clockSkewSeconds: 5,
  });
  const methods = methodTable(app);
  const perViewer = options.viewerRateLimit ? new RateLimiter(options.viewerRateLimit.limit, options.viewerRateLimit.windowSeconds) : null;

  const call = async (nsid: string, request: Request, headers: Record<string, string | number>): Promise<unknown> => {
    const method = methods.get(nsid);
    if (!method) {
      if (!isNsid(nsid)) throw new XrpcError(400, 'InvalidRequest', 'not a valid method name');
      throw new XrpcError(501, 'MethodNotImplemented', `Method Not Implemented: ${nsid}`);
    }
    const authorization = request.headers.get('authorization');
    let viewer: CallContext['viewer'] = null;
    if (method.auth !== 'none' && authorization) {
      const did = await auth.verify(authorization, { lxm: method.lxm ?? [nsid], checkAudience: method.checkAudience !== false });
      const verdict = perViewer?.take(did);
      if (verdict) {
        // the tighter of the two budgets is the one the client sees
        if (Number(verdict.headers['ratelimit-remaining']) <= Number(headers['ratelimit-remaining'] ?? Infinity)) Object.assign(headers, verdict.headers);
        if (!verdict.allowed) {
          headers['retry-after'] = String(verdict.retryAfterSeconds);
          throw new XrpcError(429, 'RateLimitExceeded', 'Rate Limit Exceeded');
        }
      }
      viewer = await app.viewerFor(did);
    }
    if (method.auth === 'required' && viewer === null) throw new XrpcError(401, 'AuthRequired', 'Authentication Required');
    return method.call(new URL(request.url).searchParams, { viewer, authorization });
  };

  return new Elysia({ name: 'xrpc' })
    .get('/xrpc/_health', async ({ set }) => {
      try {
        await options.db.run((sql) => sql`select 1`);
        return { version };
      } catch (error) {
        options.log.warn('xrpc health check failed', { error });
        set.status = 503;
        return { version, error: 'Service Unavailable' };
      }
    })
    .get('/.well-known/did.json', ({ set }) => {
      if (!options.appviewDid.startsWith('did:web:')) {
        set.status = 404;
        return { error: 'NotFound', message: 'this AppView does not use a did:web identity' };
      }
      return appviewDidDocument(options.appviewDid, options.appviewEndpoint);
    })
    .get('/xrpc/:nsid', ({ params, request, set }) => call(params.nsid, request, set.headers as Record<string, string | number>))
    .post('/xrpc/:nsid', ({ params }) => {
      if (methods.has(params.nsid)) throw new XrpcError(400, 'InvalidRequest', `Incorrect HTTP method (POST) expected GET`);
      throw new XrpcError(501, 'MethodNotImplemented', `Method Not Implemented: ${params.nsid}`);
    });
}

/** The AppView's DID document: the services a PDS looks up to proxy `app.bsky.*` here. */
export function appviewDidDocument(did: string, endpoint: string): Record<string, unknown> {
  return {
    '@context': ['https://www.w3.org/ns/did/v1'],
    id: did,
    service: [
      { id: '#bsky_appview', type: 'BskyAppView', serviceEndpoint: endpoint },
      { id: '#bsky_notif', type: 'BskyNotificationService', serviceEndpoint: endpoint },
    ],
  };
}
