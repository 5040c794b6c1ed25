/**
 * The settings the embedded PostgreSQL starts with, chosen for an index fed by a firehose on a
 * small box. (With DATABASE_URL, your server's own settings apply; docs/performance.md says
 * which of these are worth copying.)
 *
 * - synchronous_commit=off: a commit returns before its WAL reaches the disk. A crash can lose
 *   the last few hundred milliseconds of commits, and that is safe here: each batch commits its
 *   rows and its cursor together, so what is lost is lost with its cursor, and the next start
 *   asks the relay for those events again. Nothing is lost and nothing is doubled; corruption is
 *   impossible (fsync stays on, full_page_writes stays on).
 * - checkpoint_timeout=15min, max_wal_size=4GB: checkpoints far apart, so fewer full-page images
 *   are written after each one (the biggest WAL cost of a write-heavy load).
 * - wal_buffers=16MB: room for a large batch's WAL without forced writes.
 * - shared_buffers=256MB: the hot part of the indexes stays in memory; modest for a small box.
 * - random_page_cost=1.1: an index lookup costs about what a sequential read does when the data
 *   is cached or on SSD. At the default 4 the planner sometimes chose a hash join over a whole
 *   table for the batch writer's deletes of replaced keys (`delete ... using unnest(...)`), and
 *   kept that plan cached: 204 to 895 ms per 100k-commit flood for the same code. flood-noverify
 *   100k, three alternating pairs: 11,166 / 10,763 / 10,571 -> 11,416 / 10,990 / 12,569
 *   commits/s, PostgreSQL ~45 -> ~38 us per commit (the plans themselves were not inspected).
 */
export function embeddedPostgresSettings(maxConnections: number): Record<string, string | number> {
  return {
    max_connections: maxConnections,
    synchronous_commit: 'off',
    checkpoint_timeout: '15min',
    max_wal_size: '4GB',
    wal_buffers: '16MB',
    shared_buffers: '256MB',
    random_page_cost: 1.1,
  };
}
