/**
 * The ingester: relay subscription + pipeline, wired and owned as one unit.
 *
 * `startIngester` reads the stored cursor, starts the verification worker (none when
 * VERIFY_COMMITS=false), builds the processor, the pipeline and the subscription, and starts
 * their loops, and the resync worker (repo-resync.ts: repos the firehose showed to have missed
 * commits, imported whole with the backfill's importer, holding their live commits meanwhile). `stop()` stops the resync worker, aborts reading, lets the pipeline
 * write what it accepted, and resolves; `done` rejects if either loop fails unexpectedly, for the owner to
 * report (never fire and forget).
 */
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import { secp256k1Library } from '../firehose/secp256k1-verify.ts';
import { FirehoseSubscription } from '../firehose/subscription.ts';
import { WorkerVerifier, type CommitVerifier } from '../firehose/verifier.ts';
import { DidResolver } from '../identity/did-resolver.ts';
import type { PlcExportFigures } from '../identity/plc-export.ts';
import type { Logger } from '../log.ts';
import { outbound } from '../outbound/guarded-fetch.ts';
import { ActorIds } from './actor-ids.ts';
import { CursorRegressed } from './batch-writer.ts';
import { EventProcessor } from './event-processor.ts';
import { IngestStats } from './ingest-stats.ts';
import { Pipeline } from './pipeline.ts';
import { RepoResync } from './repo-resync.ts';
import { RepoImporter, type LiveRepos } from '../backfill/repo-import.ts';
import { HostPoliteness } from '../backfill/host-politeness.ts';
import { ImportWriter } from '../backfill/import-writer.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Ingester {
  readonly pipeline: Pipeline;
  readonly subscription: FirehoseSubscription;
  readonly stats: IngestStats;
  /** Following the PLC directory's export; null when it is not followed. */
  readonly plcExport: PlcExportFigures | null;
  /** Signing keys that could not be used, by reason; empty without verification. */
  readonly unusableSigningKeys: ReadonlyMap<string, number>;
  readonly resync: RepoResync;
  /** The commit verifier (null when VERIFY_COMMITS=false), shared with whole-repo imports. */
  readonly verifier: CommitVerifier | null;
  /** For whole-repo imports (the backfill): hold a repo's live commits, then release them. */
  readonly live: LiveRepos;
  /** Settles when both loops end; rejects if one fails. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export type IngesterConfig = Pick<Config, 'relayUrl' | 'firehoseStart' | 'plcUrl' | 'plcFollowExport' | 'verifyCommits' | 'maxConcurrentOps'> &
  Partial<Pick<Config, 'allowPrivateHosts'>>;

export interface IngesterOptions {
  readonly idleTimeoutMs?: number;
  readonly queueLimit?: number;
  readonly maxBatchEvents?: number;
  /** The verification worker's module (a compiled binary has its own layout). */
  readonly verifyWorkerUrl?: URL;
  /** How long the resync worker waits between looks at an empty queue (default 5 s). */
  readonly resyncIdleMs?: number;
  /** Where the resync worker spills a repo larger than memory (DATA_DIR's; default a private temporary folder). */
  readonly spillDir?: string;
}

export async function startIngester(config: IngesterConfig, db: Database, log: Logger, options: IngesterOptions = {}): Promise<Ingester> {
  if (config.verifyCommits && secp256k1Library === 'javascript') {
    log.warn('commit signatures are checked in JavaScript, ~1 ms each (the live network sends ~450 commits a second): install libsecp256k1 (Debian and Ubuntu: apt-get install libsecp256k1-1)');
  }
  const stats = new IngestStats();
  const verifier = config.verifyCommits
    ? await WorkerVerifier.start(config.plcUrl, log, {
        workerUrl: options.verifyWorkerUrl,
        followExport: config.plcFollowExport,
        allowPrivateHosts: config.allowPrivateHosts ?? [],
      })
    : null;

  /** A pipeline and its subscription from the stored cursor, with caches that know nothing yet. */
  const follow = async () => {
    const [stored] = await db.run((sql) => sql<{ seq: number }[]>`select seq from firehose_cursor where relay_url = ${config.relayUrl}`);
    const committedSeq = stored?.seq ?? null;
    log.info('starting ingestion', {
      relay: config.relayUrl,
      cursor: committedSeq ?? (config.firehoseStart.kind === 'seq' ? `${config.firehoseStart.seq} (FIREHOSE_START)` : 'live'),
      verify: config.verifyCommits,
      // 'system', 'package' or 'javascript': see secp256k1-verify.ts and the README
      secp256k1: config.verifyCommits ? secp256k1Library : undefined,
    });
    const processor = new EventProcessor({ verifier, stats });
    const pipeline = new Pipeline({
      db,
      actorIds: new ActorIds(),
      relayUrl: config.relayUrl,
      processor,
      stats,
      log,
      maxConcurrentOps: config.maxConcurrentOps,
      committedSeq,
      queueLimit: options.queueLimit,
      maxBatchEvents: options.maxBatchEvents,
    });
    const subscription = new FirehoseSubscription({
      relayUrl: config.relayUrl,
      start: config.firehoseStart,
      sink: pipeline,
      stats,
      log,
      idleTimeoutMs: options.idleTimeoutMs,
    });
    const reading = new AbortController();
    const writing = new AbortController();
    const subscriptionDone = subscription.run(reading.signal);
    const pipelineDone = pipeline.run(writing.signal);
    const halt = async (): Promise<void> => {
      reading.abort();
      await subscriptionDone;
      writing.abort();
      await pipelineDone;
    };
    return { processor, pipeline, subscription, done: Promise.all([subscriptionDone, pipelineDone]), halt };
  };
  let current = await follow();

  // a repo held by one pipeline and released after the ingester followed again (CursorRegressed)
  // was not held by the new one: its import is fetched again
  const holders = new Map<string, Pipeline>();
  const live: LiveRepos = {
    hold: async (did) => {
      if (holders.has(did)) return false;
      holders.set(did, current.pipeline);
      await current.pipeline.hold(did);
      return true;
    },
    release: async (did, rev) => {
      const holder = holders.get(did);
      holders.delete(did);
      const released = (await holder?.release(did, rev)) ?? false;
      if (rev !== '') current.processor.settleResync(did, rev);
      return released && holder === current.pipeline;
    },
  };

  // repos the firehose showed to have missed commits, imported whole like a backfill's, with an
  // importer of their own on the ingestion pool
  const strangers = outbound({ allowPrivateHosts: new Set(config.allowPrivateHosts ?? []) });
  const spillDir = options.spillDir ?? mkdtempSync(join(tmpdir(), 'aqueduct-resync-'));
  const resync = new RepoResync({
    db,
    importer: new RepoImporter({
      db,
      dids: new DidResolver({ plcUrl: config.plcUrl, strangers, ttlMs: 60_000 }),
      strangers,
      verifier,
      live,
      hosts: new HostPoliteness(),
      writer: new ImportWriter(db),
      spillDir,
    }),
    log,
    ...(options.resyncIdleMs === undefined ? {} : { idleMs: options.resyncIdleMs }),
  });
  resync.start();

  let stopping: Promise<void> | null = null;
  // The database lost committed batches (CursorRegressed, batch-writer.ts: a crash with
  // synchronous_commit=off): what was written since is not trusted, so the pipeline starts over
  // from the stored cursor with empty caches, and the relay sends the lost events again.
  const done = (async () => {
    for (;;) {
      try {
        await current.done;
        return;
      } catch (error) {
        if (!(error instanceof CursorRegressed) || stopping) throw error;
        stats.cursorRegressions++;
        log.error('the database lost committed batches: following again from the stored cursor', { error });
        await current.halt().catch(() => undefined);
        current = await follow();
      }
    }
  })();

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await resync.stop();
      await current.halt();
      if (options.spillDir === undefined) rmSync(spillDir, { recursive: true, force: true });
      await verifier?.close();
      log.info('ingestion stopped', { cursor: current.pipeline.committedSeq });
    })());

  return {
    get pipeline() {
      return current.pipeline;
    },
    get subscription() {
      return current.subscription;
    },
    stats,
    get plcExport() {
      return verifier?.exportFigures ?? null;
    },
    get unusableSigningKeys() {
      return verifier?.unusableKeys ?? new Map<string, number>();
    },
    resync,
    verifier,
    live,
    done,
    stop,
  };
}
