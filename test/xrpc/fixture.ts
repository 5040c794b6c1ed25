/**
 * A simulated network ingested into a migrated database, and the XRPC app over it.
 *
 * `indexedNetwork(options)` starts the simulator, ingests everything it generates with the real
 * ingester (verified commits) and returns the database, the simulator and an Elysia app with the
 * XRPC routes; `get` calls it through `app.handle`, and `valid` checks a body against the output
 * schema of a query from @atcute/bluesky.
 */
import { afterAll, expect } from 'bun:test';
import { Elysia } from 'elysia';
import { safeParse, type BaseSchema } from '@atcute/lexicons/validations';
import { errorHandling } from '../../src/api/errors.ts';
import { xrpcRoutes, type XrpcOptions } from '../../src/api/xrpc/routes.ts';
import { DEFAULT_VIDEO_URL_TEMPLATE } from '../../src/hydration/views.ts';
import { DEFAULT_IMAGE_URL_TEMPLATE } from '../../src/identity/profile-view.ts';
import type { Database } from '../../src/db/database.ts';
import { silentLogger } from '../../src/log.ts';
import { startIngester } from '../../src/pipeline/ingester.ts';
import { until } from '../support/until.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.ts';
import { migratedDatabase } from '../support/schema.ts';

export const APPVIEW_DID = 'did:web:appview.test';

export interface IndexedNetwork {
  readonly sim: Simulator;
  readonly db: Database;
  app: ReturnType<typeof xrpcApp>;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

export function xrpcApp(db: Pick<Database, 'run'>, plcUrl: string, extra: Partial<XrpcOptions> = {}) {
  return new Elysia().use(errorHandling(silentLogger)).use(
    xrpcRoutes({
      db,
      log: silentLogger,
      appviewDid: APPVIEW_DID,
      appviewEndpoint: 'https://appview.test',
      plcUrl,
      imageUrlTemplate: DEFAULT_IMAGE_URL_TEMPLATE,
      videoUrlTemplate: DEFAULT_VIDEO_URL_TEMPLATE,
      ...extra,
    }),
  );
}

export async function indexedNetwork(prefix: string, options: SimulatorOptions): Promise<IndexedNetwork> {
  const sim = await startSimulator({ pregenerate: true, ...options });
  cleanups.push(() => sim.stop());
  const migrated = await migratedDatabase(prefix, 6);
  cleanups.push(() => migrated.close());
  const ingester = await startIngester(
    { relayUrl: sim.url.replace(/^http/, 'ws'), firehoseStart: { kind: 'seq', seq: 0 }, plcUrl: sim.url, plcFollowExport: true, verifyCommits: true, maxConcurrentOps: 80 },
    migrated.db,
    silentLogger,
  );
  const truth = sim.groundTruth();
  await until(() => ingester.pipeline.committedSeq === truth.lastSeq, { timeoutMs: 120_000 });
  await ingester.stop();
  return { sim, db: migrated.db, app: xrpcApp(migrated.db, sim.url) };
}

/** The first row `sql` (a constant query over the ingested data) returns; fails the test when it returns none. */
export async function firstRow(db: Pick<Database, 'run'>, sql: string): Promise<Record<string, any>> {
  const rows = await db.run((tx) => tx.unsafe(sql));
  expect(rows.length).toBeGreaterThan(0);
  return rows[0] as Record<string, any>;
}

export interface Answer {
  readonly status: number;
  readonly body: Record<string, any>;
}

export async function get(app: { handle(request: Request): Promise<Response> }, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await app.handle(new Request(`http://aqueduct.test${path}`, { headers }));
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

export const query = (nsid: string, params: Record<string, string | number | boolean | readonly string[] | undefined>): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) search.append(name, item);
    else search.set(name, String(value));
  }
  const qs = search.toString();
  return `/xrpc/${nsid}${qs ? `?${qs}` : ''}`;
};

/** Asserts that `body` matches the query's output schema, showing the issues when it does not. */
export function expectValid(meta: { output: { schema: BaseSchema } | null } | { output: unknown }, body: unknown): void {
  const schema = (meta.output as { schema: BaseSchema }).schema;
  const result = safeParse(schema, body);
  if (!result.ok) {
    expect({ message: result.message, body: JSON.stringify(body).slice(0, 2000) }).toEqual({ message: 'valid', body: '' });
  }
}
