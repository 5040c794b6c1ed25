/**
 * Liveness and readiness.
 *
 * `GET /health` answers `{status:"ok"}` from memory: it never touches the database, so a slow
 * database cannot make an orchestrator kill a live process. `GET /ready` runs every readiness
 * check (database answers, migrations applied, firehose connected or disabled...) and answers 200
 * only when all pass, else 503 with each failing check's reason.
 */
import { Elysia } from 'elysia';

export interface CheckResult {
  readonly ok: boolean;
  readonly reason?: string;
}

export type ReadinessCheck = () => Promise<CheckResult>;

export function healthRoutes(checks: Readonly<Record<string, ReadinessCheck>>) {
  return new Elysia({ name: 'health' })
    .get('/health', () => ({ status: 'ok' }))
    .get('/ready', async ({ set }) => {
      const entries = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check)] as const),
      );
      const results = Object.fromEntries(entries);
      const ready = entries.every(([, result]) => result.ok);
      set.status = ready ? 200 : 503;
      return { status: ready ? 'ready' : 'not-ready', checks: results };
    });
}

async function runCheck(check: ReadinessCheck): Promise<CheckResult> {
  try {
    return await check();
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
