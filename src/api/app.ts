/**
 * The HTTP application: one Elysia instance composed of one plugin per concern.
 *
 * `createApp` takes plain services and returns the app; it does not listen, so tests call
 * `app.handle(new Request(...))` and `main.ts` calls `app.listen(port)`.
 */
import { Elysia } from 'elysia';
import type { Logger } from '../log.ts';
import { errorHandling } from './errors.ts';
import { healthRoutes, type ReadinessCheck } from './health.ts';

export interface AppServices {
  readonly log: Logger;
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
}

export function createApp(services: AppServices) {
  return new Elysia().use(errorHandling(services.log)).use(healthRoutes(services.readiness));
}

export type App = ReturnType<typeof createApp>;
