/**
 * Prometheus text exposition format 0.0.4, hand-written: a small writer and Aqueduct's figures
 * rendered with it.
 *
 * The writer emits `# HELP` and `# TYPE` once per family, then its samples; it escapes label
 * values (backslash, double quote, newline) and help text, and refuses what Prometheus would
 * refuse (bad metric or label names, a family written twice, a counter not named `*_total`) by
 * throwing, since that is our bug. Names follow the conventions: base units (`_seconds`,
 * `_bytes`), ratios 0-1 (`_ratio`), counters `_total`. Label values that come from the network
 * (collection names, relay error names) are escaped here and bounded upstream.
 */
import type { BackfillMetrics, DatabaseMetrics, EventProcessorMetrics, FirehoseMetrics } from './metrics/metrics-service.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class PrometheusWriter {
  readonly #lines: string[] = [];
  readonly #families = new Set<string>();

  /** One family: its help, its type and its samples (a number is one sample without labels). */
  family(name: string, type: MetricType, help: string, samples: number | Iterable<Sample>): this {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end with _total`);
    if (this.#families.has(name)) throw new Error(`metric family ${name} written twice`);
    this.#families.add(name);
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    const list: Iterable<Sample> = typeof samples === 'number' ? [{ value: samples }] : samples;
    for (const sample of list) this.#lines.push(`${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    return this;
  }

  text(): string {
    return this.#lines.length ? `${this.#lines.join('\n')}\n` : '';
  }
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(name)}`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

export interface PrometheusFigures {
  readonly eventProcessor: EventProcessorMetrics;
  readonly database: DatabaseMetrics;
  readonly firehose: FirehoseMetrics;
  /** The backfill's figures; absent, or `enabled: false`, leaves its families out. */
  readonly backfill?: BackfillMetrics;
  /** process.memoryUsage(), or null to leave process metrics out. */
  readonly memory: { readonly rss: number; readonly heapUsed: number } | null;
}

const by = (label: string, values: Readonly<Record<string, number>>): Sample[] =>
  Object.entries(values).map(([key, value]) => ({ labels: { [label]: key }, value }));

/** Aqueduct's figures as one scrape. Absent values (null) are left out rather than faked. */
export function renderPrometheus(figures: PrometheusFigures): string {
  const { eventProcessor: ep, database: db, firehose: fh } = figures;
  const w = new PrometheusWriter();
  const optional = (value: number | null): Sample[] => (value === null ? [] : [{ value }]);

  w.family('aqueduct_events_total', 'counter', 'Firehose events processed, by event type.', by('type', ep.eventsByType));
  w.family('aqueduct_events_committed_total', 'counter', 'Events written to the database (the cursor covers them).', ep.eventsCommitted);
  w.family('aqueduct_ops_total', 'counter', 'Record operations indexed, by collection.', by('collection', ep.opsByCollection));
  w.family('aqueduct_rejected_total', 'counter', 'Events and ops skipped, by reason.', by('reason', ep.rejectedByReason));
  w.family('aqueduct_invalid_records_total', 'counter', 'Records that failed validation, by collection.', by('collection', ep.invalidRecordsByCollection));
  w.family('aqueduct_unverified_commits_total', 'counter', 'Commits indexed without a signature check (signing key unavailable).', ep.unverifiedCommits);
  if (ep.reposAwaitingResync) {
    w.family('aqueduct_repos_awaiting_resync', 'gauge', 'Repos whose index may have missed commits, waiting for a whole-repo fetch, by reason.', by('reason', ep.reposAwaitingResync));
  }
  w.family('aqueduct_seq_gaps_total', 'counter', "Times the relay's next sequence number skipped numbers.", ep.seqGaps);
  w.family('aqueduct_cursor_regressions_total', 'counter', 'Times the database had lost committed batches and ingestion followed again from the stored cursor.', ep.cursorRegressions);
  w.family('aqueduct_repo_resyncs_total', 'counter', 'Whole-repo fetches by the resync worker, by outcome.', by('outcome', ep.resyncOutcomes));
  w.family('aqueduct_resync_records_changed_total', 'counter', 'Records written or deleted by whole-repo resyncs.', ep.resyncRecordsChanged);
  w.family('aqueduct_unproven_commits_total', 'counter', 'Commits without a Sync 1.1 proof (no prevData or op prev): ops checked against the new tree only.', ep.unprovenCommits);
  w.family('aqueduct_unusable_signing_keys_total', 'counter', 'DID documents and export lines whose #atproto key could not be used, by form and problem.', by('reason', ep.unusableSigningKeys));
  const plc = ep.plcExport;
  if (plc) {
    w.family('aqueduct_plc_export_operations_total', 'counter', 'PLC operations read from the directory export.', plc.operations);
    w.family('aqueduct_plc_export_bad_lines_total', 'counter', 'Export lines that were not well-formed PLC operations (skipped).', plc.badLines);
    w.family('aqueduct_plc_export_failures_total', 'counter', 'Export requests that failed (retried with a backoff).', plc.failures);
    w.family('aqueduct_plc_export_waits_total', 'counter', "New repos' first commits that waited on the export, by outcome.", [
      { labels: { outcome: 'answered' }, value: plc.waitsAnswered },
      { labels: { outcome: 'fetched' }, value: plc.waitsMissed },
    ]);
  }
  w.family('aqueduct_batches_total', 'counter', 'Batches committed.', ep.batchesCommitted);
  w.family('aqueduct_batch_write_errors_total', 'counter', 'Batch writes that failed and were retried or split.', ep.batchWriteErrors);
  w.family('aqueduct_batches_rewritten_total', 'counter', 'Batches that met records already stored (replays) and were written again absorbing them.', ep.batchesRewritten);
  w.family('aqueduct_new_actors_total', 'counter', 'Actors first seen and inserted.', ep.newActors);
  w.family('aqueduct_events_per_second', 'gauge', 'Committed events per second, averaged over a window.', [
    { labels: { window: '1s' }, value: ep.eventsPerSecond.last1s },
    { labels: { window: '1m' }, value: ep.eventsPerSecond.last1m },
    { labels: { window: '5m' }, value: ep.eventsPerSecond.last5m },
  ]);
  w.family('aqueduct_batch_size_events', 'gauge', 'Events per batch over the last 1024 batches, by quantile.', [
    { labels: { quantile: '0.5' }, value: ep.batchSize.p50 },
    { labels: { quantile: '0.99' }, value: ep.batchSize.p99 },
  ]);
  w.family('aqueduct_batch_flush_seconds', 'gauge', 'Batch write time over the last 1024 batches, by quantile.', [
    { labels: { quantile: '0.5' }, value: ep.flushMs.p50 / 1000 },
    { labels: { quantile: '0.99' }, value: ep.flushMs.p99 / 1000 },
  ]);
  w.family('aqueduct_pipeline_queue_depth', 'gauge', 'Events accepted and not yet committed.', ep.queueDepth);
  w.family('aqueduct_pipeline_queue_limit', 'gauge', 'Bound of the pipeline queue.', ep.queueLimit);
  w.family('aqueduct_pipeline_ops_in_flight', 'gauge', 'Events being processed now.', ep.eventsInFlight);
  w.family('aqueduct_pipeline_max_concurrent_ops', 'gauge', 'MAX_CONCURRENT_OPS.', ep.maxConcurrentOps);
  w.family('aqueduct_user_creations_active', 'gauge', 'User creations (identity fetches) running now.', ep.activeUserCreations);
  w.family('aqueduct_user_creations_max', 'gauge', 'MAX_CONCURRENT_USER_CREATIONS.', ep.maxConcurrentUserCreations);
  w.family('aqueduct_user_creation_utilization_ratio', 'gauge', 'Active user creations over their maximum (0-1).', ep.userCreationUtilization / 100);
  w.family('aqueduct_user_creations_pending', 'gauge', 'Actors waiting in the identity queue.', optional(ep.pendingUserCreationOpsCount));

  w.family('aqueduct_firehose_connected', 'gauge', '1 while connected to the relay.', fh.connected ? 1 : 0);
  w.family('aqueduct_firehose_reconnects_total', 'counter', 'Relay reconnections.', fh.reconnects);
  w.family('aqueduct_firehose_cursor', 'gauge', 'Last committed firehose seq.', optional(fh.cursor));
  w.family('aqueduct_firehose_last_received_seq', 'gauge', 'Last seq received from the relay.', optional(fh.lastReceivedSeq));
  w.family('aqueduct_firehose_lag_seconds', 'gauge', 'Now minus the relay time of the last committed event.', optional(fh.lagSeconds));
  w.family('aqueduct_firehose_error_frames_total', 'counter', 'Error frames sent by the relay, by name.', by('name', fh.errorFrames));

  w.family('aqueduct_db_pool_size', 'gauge', 'DB_POOL_SIZE.', db.size);
  w.family('aqueduct_db_pool_connections', 'gauge', 'Pool connections by state.', [
    { labels: { state: 'active' }, value: db.active },
    { labels: { state: 'idle' }, value: db.idle },
  ]);
  w.family('aqueduct_db_pool_waiting', 'gauge', 'Callers waiting for a pool connection.', db.waiting);
  w.family('aqueduct_db_pool_utilization_ratio', 'gauge', 'Active connections over the pool size (0-1).', db.utilization / 100);
  w.family('aqueduct_db_connection_errors_total', 'counter', 'Queries failed for connection reasons.', db.connectionErrors);
  w.family('aqueduct_db_statement_timeouts_total', 'counter', 'Queries cancelled by statement_timeout.', db.timeouts);
  w.family('aqueduct_database_size_bytes', 'gauge', 'pg_database_size of the database.', optional(db.databaseSizeBytes));
  w.family('aqueduct_records', 'gauge', 'Rows per collection, and actors (collection="actors").', by('collection', db.records));

  const bf = figures.backfill;
  if (bf?.enabled) {
    w.family('aqueduct_backfill_repos', 'gauge', 'Repos in the backfill queue, by state.', by('state', bf.repos));
    w.family('aqueduct_backfill_imports_total', 'counter', 'Whole-repo imports finished, by outcome.', by('outcome', bf.outcomes));
    w.family('aqueduct_backfill_records_total', 'counter', 'Records held by the repos imported.', bf.recordsImported);
    w.family('aqueduct_backfill_records_changed_total', 'counter', 'Records written or deleted by imports to match their repos.', bf.recordsChanged);
    w.family('aqueduct_backfill_invalid_records_total', 'counter', 'Records of imported repos not indexed: invalid for their lexicon, or undecodable.', bf.invalidRecords);
    w.family('aqueduct_backfill_bytes_total', 'counter', 'CAR bytes fetched by imports.', bf.bytesFetched);
    w.family('aqueduct_backfill_unverified_repos_total', 'counter', 'Repos imported without a signature check (signing key unavailable).', bf.unverified);
    w.family('aqueduct_backfill_listed_hosts_total', 'counter', "Hosts named by the relay's listHosts.", bf.listed.hosts);
    w.family('aqueduct_backfill_listed_repos_total', 'counter', "Repos named by hosts' listRepos.", bf.listed.repos);
    w.family('aqueduct_backfill_listed_invalid_total', 'counter', 'Listing entries skipped as invalid (bad host name or DID).', bf.listed.invalid);
    w.family('aqueduct_backfill_active_imports', 'gauge', 'Repos being imported now.', bf.activeImports);
    w.family('aqueduct_backfill_hosts_listing', 'gauge', 'Hosts being listed now.', bf.hostsListing);
    w.family('aqueduct_backfill_records_per_second', 'gauge', 'Records imported per second over the last 10 s.', bf.recordsPerSecond);
    w.family('aqueduct_backfill_repos_per_second', 'gauge', 'Repos imported per second over the last 10 s.', bf.reposPerSecond);
    w.family('aqueduct_backfill_eta_seconds', 'gauge', 'Queued repos at the recent rate; absent while nothing is imported.', optional(bf.etaSeconds));
    w.family('aqueduct_backfill_hosts_paused', 'gauge', 'Hosts paused now for failing or for their rate limits (counted among the 10 worst).', bf.troubledHosts.filter((host) => host.pausedForMs > 0).length);
  }

  if (figures.memory) {
    w.family('aqueduct_process_resident_memory_bytes', 'gauge', 'Resident set size.', figures.memory.rss);
    w.family('aqueduct_process_heap_used_bytes', 'gauge', 'JavaScript heap in use.', figures.memory.heapUsed);
  }
  return w.text();
}
