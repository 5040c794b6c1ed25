/**
 * A backfill as the tests run it: the real Backfill, importer, writer and politeness over a
 * migrated test database and the simulator's hosts, with a verifier of its own and, when given,
 * a live ingester whose commits the imports hold and release.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Backfill, type BackfillFigures } from '../../src/backfill/backfill.ts';
import { HostPoliteness } from '../../src/backfill/host-politeness.ts';
import { ImportWriter } from '../../src/backfill/import-writer.ts';
import { RepoImporter } from '../../src/backfill/repo-import.ts';
import type { Database } from '../../src/db/database.ts';
import { WorkerVerifier, type CommitVerifier } from '../../src/firehose/verifier.ts';
import { DidResolver } from '../../src/identity/did-resolver.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { outbound } from '../../src/outbound/guarded-fetch.ts';
import type { Ingester } from '../../src/pipeline/ingester.ts';
import { until } from '../support/until.ts';

export interface TestBackfill {
  readonly backfill: Backfill;
  readonly spillDir: string;
  /** Resolves once nothing is queued, listed or being imported. */
  settled(timeoutMs?: number): Promise<BackfillFigures>;
  stop(): Promise<void>;
}

export interface TestBackfillOptions {
  readonly db: Database;
  /** the simulator's base URL: PLC directory and relay */
  readonly simUrl: string;
  /** hosts the guarded client may reach (the simulator's addresses) */
  readonly allowPrivateHosts: readonly string[];
  readonly ingester?: Ingester;
  readonly concurrency?: number;
  readonly hostRate?: number;
  readonly memoryBytes?: number;
  /** the importer's caps (repo-import.ts): largest CAR, whole-fetch budget, longest silence */
  readonly maxRepoBytes?: number;
  readonly timeoutMs?: number;
  readonly stallMs?: number;
  /** imports at once per host (default: the Backfill's) */
  readonly perHost?: number;
}

export async function startTestBackfill(options: TestBackfillOptions): Promise<TestBackfill> {
  const strangers = outbound({ allowPrivateHosts: new Set(options.allowPrivateHosts) });
  const ownVerifier: CommitVerifier | null = options.ingester ? null : await WorkerVerifier.start(options.simUrl, silentLogger, { allowPrivateHosts: [...options.allowPrivateHosts] });
  const verifier = options.ingester ? options.ingester.verifier : ownVerifier;
  const hosts = new HostPoliteness({ defaultRate: options.hostRate ?? 1000 });
  const spillDir = mkdtempSync(join(tmpdir(), 'aqueduct-spill-'));
  const backfill = new Backfill({
    db: options.db,
    importer: new RepoImporter({
      db: options.db,
      dids: new DidResolver({ plcUrl: options.simUrl, strangers, ttlMs: 60_000 }),
      strangers,
      verifier,
      live: options.ingester?.live ?? null,
      hosts,
      writer: new ImportWriter(options.db),
      spillDir,
      ...(options.memoryBytes === undefined ? {} : { memoryBytes: options.memoryBytes }),
      ...(options.maxRepoBytes === undefined ? {} : { maxRepoBytes: options.maxRepoBytes }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.stallMs === undefined ? {} : { stallMs: options.stallMs }),
    }),
    strangers,
    hosts,
    relayHost: new URL(options.simUrl).host,
    log: process.env.BACKFILL_TEST_LOG ? createLogger('debug') : silentLogger,
    concurrency: options.concurrency ?? 8,
    ...(options.perHost === undefined ? {} : { perHost: options.perHost }),
    idleMs: 50,
  });
  await backfill.start();
  const settledNow = async (): Promise<boolean> => {
    const [row] = await options.db.run((sql) => sql<{ queued: number; listing: number }[]>`
      select (select count(*)::int from backfill_repos where state = 'queued') as queued,
        (select count(*)::int from backfill_hosts where state = 'listing') as listing`);
    return row!.queued === 0 && row!.listing === 0 && backfill.figures.active === 0;
  };
  return {
    backfill,
    spillDir,
    settled: async (timeoutMs = 60_000) => {
      await until(settledNow, { timeoutMs });
      return backfill.figures;
    },
    stop: async () => {
      await backfill.stop();
      await ownVerifier?.close();
      rmSync(spillDir, { recursive: true, force: true });
    },
  };
}
