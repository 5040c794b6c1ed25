/**
 * The HTTP application: one Elysia instance composed of one plugin per concern.
 *
 * `createApp` takes plain services and returns the app; it does not listen, so tests call
 * `app.handle(new Request(...))` and `main.ts` calls `app.listen(port)`.
 */
import { Elysia } from 'elysia';
import type { Logger } from '../log.ts';
import { dashboardRoutes } from './dashboard.ts';
import { errorHandling } from './errors.ts';
import { healthRoutes, type ReadinessCheck } from './health.ts';
import type { BackfillSource, MetricsService } from './metrics/metrics-service.ts';
import { metricsRoutes } from './metrics/routes.ts';
import { rateLimitRoutes, type RateLimitOptions } from './rate-limit.ts';
import { adminAuth } from './admin-auth.ts';
import { backfillRoutes } from './backfill.ts';
import { xrpcRoutes, type XrpcOptions } from './xrpc/routes.ts';

export interface AppServices {
  readonly log: Logger;
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** The metrics endpoints, /metrics and the dashboard; left out by tests of other concerns. */
  readonly metrics?: MetricsService;
  /** The app.bsky XRPC read API and this AppView's did.json; left out by tests of other concerns. */
  readonly xrpc?: XrpcOptions;
  /** Per-client limits on /xrpc/ (RATE_LIMIT, TRUST_PROXY); none when absent. */
  readonly rateLimit?: RateLimitOptions;
  /** POST /api/backfill (queueing whole-repo imports); left out by tests of other concerns. */
  readonly backfill?: BackfillSource;
  /** ADMIN_TOKEN: the dashboard and metrics need it (open when absent); actions need it set. */
  readonly adminToken?: string;
}

export function createApp(services: AppServices) {
  const { metrics } = services;
  return new Elysia()
    .use(errorHandling(services.log))
    .use(adminAuth(services.adminToken ?? null))
    .use(healthRoutes(services.readiness))
    .use(services.rateLimit ? rateLimitRoutes(services.rateLimit) : new Elysia())
    .use(services.xrpc ? xrpcRoutes(services.xrpc) : new Elysia())
    .use(metrics ? metricsRoutes(metrics) : new Elysia())
    .use(metrics ? dashboardRoutes(metrics) : new Elysia())
    .use(services.backfill ? backfillRoutes(services.backfill) : new Elysia());
}

export type App = ReturnType<typeof createApp>;
