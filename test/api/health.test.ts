import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Elysia } from 'elysia';
import { createApp } from '../../src/api/app.ts';
import { Database } from '../../src/db/database.ts';
import { loadMigrations, migrate, pendingMigrations } from '../../src/db/migrator.ts';
import { silentLogger } from '../../src/log.ts';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let test_db: TestDatabase;
let db: Database;
const migrationsDir = join(import.meta.dir, '../../sql');

beforeAll(async () => {
  test_db = await createTestDatabase('health');
  db = new Database({ url: test_db.url, poolSize: 2 });
});
afterAll(async () => {
  await db.close();
  await test_db.drop();
});

function appFor(database: Database) {
  return createApp({
    log: silentLogger,
    readiness: {
      database: () => database.run((sql) => sql`select 1`).then(() => ({ ok: true })),
      migrations: async () => {
        const pending = await pendingMigrations(database, await loadMigrations(migrationsDir));
        return pending.length ? { ok: false, reason: `pending: ${pending.join(', ')}` } : { ok: true };
      },
    },
  });
}

const get = (app: { handle(request: Request): Promise<Response> }, path: string) => app.handle(new Request(`http://aqueduct.test${path}`));

describe('health and readiness', () => {
  test('/health answers ok without touching the database', async () => {
    const unreachable = new Database({ url: 'postgres://nobody:x@127.0.0.1:1/none', poolSize: 1, connectTimeoutSeconds: 1 });
    const response = await get(appFor(unreachable), '/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(unreachable.stats().connectionErrors).toBe(0);
    await unreachable.close();
  });

  test('/ready is 503 with the reason until migrations are applied, then 200', async () => {
    const app = appFor(db);
    const before = await get(app, '/ready');
    expect(before.status).toBe(503);
    const body = (await before.json()) as { checks: Record<string, { ok: boolean; reason?: string }> };
    expect(body.checks.database).toEqual({ ok: true });
    expect(body.checks.migrations?.ok).toBe(false);
    expect(body.checks.migrations?.reason).toContain('00001_init');

    await migrate(db, await loadMigrations(migrationsDir));
    const after = await get(app, '/ready');
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ status: 'ready', checks: { database: { ok: true }, migrations: { ok: true } } });
  });

  test('/ready is 503 naming the database when it does not answer', async () => {
    const unreachable = new Database({ url: 'postgres://nobody:x@127.0.0.1:1/none', poolSize: 1, connectTimeoutSeconds: 1 });
    const response = await get(appFor(unreachable), '/ready');
    expect(response.status).toBe(503);
    const body = (await response.json()) as { checks: Record<string, { ok: boolean; reason?: string }> };
    expect(body.checks.database?.ok).toBe(false);
    expect(body.checks.database?.reason).toBeString();
    expect(unreachable.stats().connectionErrors).toBeGreaterThan(0);
    await unreachable.close();
  });

  test('unknown routes give a JSON 404', async () => {
    const response = await get(appFor(db), '/no/such/route');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({ error: 'NotFound', message: 'no route for /no/such/route' });
  });

  test('an unexpected error is a plain 500 with no stack trace', async () => {
    const app = appFor(db).use(
      new Elysia().get('/boom', () => {
        throw new Error('secret internals at /src/somewhere.ts:12');
      }),
    );
    const response = await get(app, '/boom');
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: 'InternalServerError', message: 'Internal Server Error' });
    expect(text).not.toContain('somewhere.ts');
  });
});
