/**
 * Aqueduct as one object: start everything in order, stop everything in reverse.
 *
 * config -> database (embedded when DATABASE_URL is unset) -> migrations -> ingester -> identity
 * worker -> metrics -> HTTP (health, metrics, dashboard, XRPC).
 * `main.ts` adds only process concerns (signals, exit codes); tests start a whole Aqueduct
 * in-process with this. `stop()` is idempotent and goes in reverse: HTTP, then the ingester
 * (which writes what it accepted), then the pool, then the embedded server.
 */
import { join } from 'node:path';
import { outbound } from './outbound/guarded-fetch.ts';
import { redactPassword, type Config } from './config.ts';
import type { Logger } from './log.ts';
import { createApp } from './api/app.ts';
import { MetricsService } from './api/metrics/metrics-service.ts';
import { Database } from './db/database.ts';
import { AnotherServerRunning, startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded-postgres.ts';
import { embeddedMigrations, loadMigrations, migrate, pendingMigrations } from './db/migrator.ts';
import { embeddedPostgresSettings } from './db/postgres-settings.ts';
import { RecentErrors, recordingLogger } from './lib/recent-errors.ts';
import { startIngester, type Ingester } from './pipeline/ingester.ts';
import { IdentityWorker } from './identity/identity-worker.ts';
import { DidResolver } from './identity/did-resolver.ts';
import { HostRateLimiter } from './identity/rate-limiter.ts';
import { WorkerVerifier } from './firehose/verifier.ts';
import { Backfill } from './backfill/backfill.ts';
import { HostPoliteness } from './backfill/host-politeness.ts';
import { ImportWriter } from './backfill/import-writer.ts';
import { RepoImporter } from './backfill/repo-import.ts';

export interface Aqueduct {
  /** The HTTP base URL, e.g. http://127.0.0.1:5000 */
  readonly url: string;
  readonly db: Database;
  /** null when FIREHOSE_ENABLED=false. */
  readonly ingester: Ingester | null;
  readonly backfill: Backfill;
  stop(): Promise<void>;
}

export interface AqueductHooks {
  /** Called if a background loop fails unexpectedly; the owner should stop and exit non-zero. */
  readonly onFatal?: (error: unknown) => void;
}

const READINESS_TIMEOUT_MS = 2_000;
/** tries in a row to start a dead embedded PostgreSQL again before giving up */
const EMBEDDED_RESTARTS = 8;
/** A read API statement that runs longer is cancelled: a view must not hold a connection. */
const API_STATEMENT_TIMEOUT_MS = 5_000;

export async function startAqueduct(config: Config, baseLog: Logger, hooks: AqueductHooks = {}): Promise<Aqueduct> {
  // Every warning and error also lands in the dashboard's "last errors" tile.
  const recentErrors = new RecentErrors();
  const log = recordingLogger(baseLog, recentErrors);
  const cleanups: Array<() => Promise<void>> = [];
  let stopping = false;
  const stop = once(async () => {
    stopping = true;
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log.error('error during shutdown', { error }));
    }
  });

  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === null) {
      const embeddedOptions = {
        dataDir: config.dataDir,
        binDir: config.postgresBinDir,
        settings: embeddedPostgresSettings(Math.max(100, config.dbPoolSize + 20), config.durableCommits),
        log,
      };
      let embedded: EmbeddedPostgres = await startEmbeddedPostgres(embeddedOptions);
      cleanups.push(() => embedded.stop());
      // Killed or crashed: started again on the same port, so every pool reconnects by itself and
      // ingestion resumes from what was committed (the pipeline retries its batch meanwhile;
      // /ready says the database does not answer). Given up, with the reason, after
      // EMBEDDED_RESTARTS tries in a row, or at once when another server took DATA_DIR over: a
      // supervisor then brings everything back.
      void (async () => {
        for (;;) {
          await embedded.died;
          if (stopping) return;
          log.error('the embedded PostgreSQL exited unexpectedly (killed or crashed): starting it again');
          for (let attempt = 1; ; attempt++) {
            try {
              embedded = await startEmbeddedPostgres({ ...embeddedOptions, port: embedded.port, stopLeftover: false });
              log.info('the embedded PostgreSQL is back', { attempt });
              break;
            } catch (error) {
              if (stopping) return;
              // another Aqueduct took DATA_DIR over (it stopped our server): leave it to that one
              if (error instanceof AnotherServerRunning || attempt >= EMBEDDED_RESTARTS) {
                log.error('the embedded PostgreSQL cannot be started again: stopping', { error });
                hooks.onFatal?.(error);
                return;
              }
              log.warn('starting the embedded PostgreSQL again failed: retrying', { attempt, error });
              await Bun.sleep(Math.min(30_000, 500 * 2 ** attempt));
            }
          }
        }
      })();
      databaseUrl = embedded.url;
    }

    // DB_POOL_SIZE is shared: a quarter (at least one connection) is the read API's own, with a
    // short statement timeout, so no client can hold the connections ingestion writes with; an
    // eighth (at least one) is the backfill's, so importing never takes the firehose's
    const apiPoolSize = Math.max(1, Math.floor(config.dbPoolSize / 4));
    const backfillPoolSize = Math.max(1, Math.floor(config.dbPoolSize / 8));
    const db = new Database({ url: databaseUrl, poolSize: Math.max(1, config.dbPoolSize - apiPoolSize - backfillPoolSize) });
    cleanups.push(() => db.close());
    const apiDb = new Database({ url: databaseUrl, poolSize: apiPoolSize, statementTimeoutMs: API_STATEMENT_TIMEOUT_MS, applicationName: 'aqueduct-api' });
    cleanups.push(() => apiDb.close());
    const backfillDb = new Database({ url: databaseUrl, poolSize: backfillPoolSize, applicationName: 'aqueduct-backfill' });
    cleanups.push(() => backfillDb.close());

    await db.run((sql) => sql`select 1`).catch((error: unknown) => {
      const where = config.databaseUrl ? `DATABASE_URL=${redactPassword(config.databaseUrl)}` : 'the embedded PostgreSQL';
      const fix = config.databaseUrl ? 'check that the server runs and the URL (host, port, user, password, database) is right, or unset DATABASE_URL to use the embedded PostgreSQL' : `check DATA_DIR=${config.dataDir}`;
      throw new Error(`cannot reach ${where} (${(error as Error).message}): ${fix}`, { cause: error });
    });
    const migrations = (await embeddedMigrations()) ?? (await loadMigrations(join(import.meta.dir, '..', 'sql')));
    const applied = await migrate(db, migrations);
    log.info(applied.length ? 'migrations applied' : 'database schema up to date', { applied: applied.join(',') || undefined, total: migrations.length });

    let ingester: Ingester | null = null;
    if (config.firehoseEnabled) {
      // Relative to this file, which sits beside main.ts both in src/ and in a compiled binary
      // (built with the worker as a second entry point, see package.json).
      const started = await startIngester(config, db, log, {
        verifyWorkerUrl: new URL('./firehose/verify-worker.ts', import.meta.url),
        spillDir: join(config.dataDir, 'resync-spill'),
      });
      ingester = started;
      cleanups.push(() => started.stop());
      started.done.catch((error: unknown) => {
        log.error('ingestion failed', { error });
        hooks.onFatal?.(error);
      });
    }

    // Everything strangers name (PDSes, did:web, handle hosts, feed generators) goes through one
    // guarded client: public addresses only, but for ALLOW_PRIVATE_HOSTS.
    const strangers = outbound({ allowPrivateHosts: new Set(config.allowPrivateHosts) });

    // Handles, DID documents and profiles: drains identity_queue, never on the ingestion path.
    const identity = new IdentityWorker({
      db,
      log,
      strangers,
      plcUrl: config.plcUrl,
      handleResolverUrl: config.handleResolverUrl,
      maxConcurrent: config.maxConcurrentUserCreations,
      refreshHours: config.identityRefreshHours,
      plcRateLimit: config.plcRateLimit,
    });
    // Whole-repo imports (src/backfill/): their own pool and writer, beside the firehose, holding
    // a repo's live commits only while it is imported. Without a firehose in this process they
    // verify with a worker of their own.
    const backfillVerifier = ingester ? ingester.verifier : config.verifyCommits ? await WorkerVerifier.start(config.plcUrl, log, { workerUrl: new URL('./firehose/verify-worker.ts', import.meta.url), allowPrivateHosts: config.allowPrivateHosts }) : null;
    if (!ingester && backfillVerifier) cleanups.push(() => backfillVerifier.close());
    const politeness = new HostPoliteness({ defaultRate: config.backfillHostRate, bigHostRate: config.backfillBigHostRate, rates: config.backfillHostRates });
    const backfill = new Backfill({
      db: backfillDb,
      importer: new RepoImporter({
        db: backfillDb,
        // a backfill resolves one DID per repo: at most PLC_RATE_LIMIT a second from the directory
        dids: new DidResolver({ plcUrl: config.plcUrl, strangers, ttlMs: 60_000, fetch: rateLimitedFetch(config.plcRateLimit) }),
        strangers,
        verifier: backfillVerifier,
        live: ingester?.live ?? null,
        hosts: politeness,
        writer: new ImportWriter(backfillDb),
        spillDir: join(config.dataDir, 'backfill-spill'),
      }),
      strangers,
      hosts: politeness,
      relayHost: new URL(config.relayUrl).host,
      log,
      concurrency: config.backfillConcurrency,
      perHost: config.backfillHostConcurrency,
    });
    await backfill.start();
    // before the ingester stops: an import releases what it held into a running pipeline
    cleanups.push(() => backfill.stop());
    if (config.backfill === 'all') await backfill.request({ all: true });

    const identityDone = identity.start();
    cleanups.push(() => identity.stop());
    identityDone.catch((error: unknown) => {
      log.error('identity worker failed', { error });
      hooks.onFatal?.(error);
    });

    const metrics = new MetricsService({ db, apiDb, ingest: ingester, identityWorker: identity, config, recentErrors, backfill });
    metrics.start();
    cleanups.push(async () => metrics.stop());

    const app = createApp({
      log,
      metrics,
      backfill,
      ...(config.adminToken ? { adminToken: config.adminToken } : {}),
      ...(config.rateLimit > 0 ? { rateLimit: { limit: config.rateLimit, windowSeconds: 300, trustProxy: config.trustProxy } } : {}),
      xrpc: {
        db: apiDb,
        log,
        appviewDid: config.appviewDid,
        appviewEndpoint: `https://${config.appviewHostname}`,
        plcUrl: config.plcUrl,
        strangers,
        imageUrlTemplate: config.imageUrlTemplate,
        videoUrlTemplate: config.videoUrlTemplate,
        ...(config.rateLimit > 0 ? { viewerRateLimit: { limit: config.rateLimit, windowSeconds: 300 } } : {}),
      },
      readiness: {
        database: () => withTimeout(db.run((sql) => sql`select 1`).then(() => ({ ok: true })), 'the database did not answer'),
        migrations: async () => {
          const pending = await pendingMigrations(db, migrations);
          return pending.length ? { ok: false, reason: `pending: ${pending.join(', ')}` } : { ok: true };
        },
        ingestion: async () => {
          const failure = ingester?.pipeline.writeFailure;
          if (!failure) return { ok: true };
          return { ok: false, reason: `writing batches has failed for ${Math.round((Date.now() - failure.since) / 1000)} s, retrying: ${failure.message}` };
        },
        firehose: async () => {
          if (!ingester) return { ok: true, reason: 'disabled (FIREHOSE_ENABLED=false)' };
          return ingester.subscription.connected ? { ok: true } : { ok: false, reason: `not connected to ${config.relayUrl}` };
        },
      },
    });
    try {
      app.listen({ port: config.port, hostname: config.host });
    } catch (error) {
      throw new Error(`cannot listen on PORT=${config.port} (${(error as Error).message}): choose a free port`, { cause: error });
    }
    cleanups.push(async () => {
      await app.stop(true);
    });
    const port = app.server?.port ?? config.port;
    log.info('Aqueduct is serving', { url: `http://127.0.0.1:${port}` });
    return { url: `http://127.0.0.1:${port}`, db, ingester, backfill, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** globalThis.fetch, at most `perSecond` requests a second (for the PLC directory). */
function rateLimitedFetch(perSecond: number): (input: string, init: RequestInit) => Promise<Response> {
  const limiter = new HostRateLimiter({ defaultRate: perSecond });
  return async (input, init) => {
    await limiter.take('plc', init.signal ?? undefined);
    return globalThis.fetch(input, init);
  };
}

function withTimeout<T extends { ok: boolean }>(check: Promise<T>, reason: string): Promise<T | { ok: false; reason: string }> {
  return Promise.race([check, Bun.sleep(READINESS_TIMEOUT_MS).then(() => ({ ok: false as const, reason }))]);
}

function once(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  return () => (running ??= task());
}
