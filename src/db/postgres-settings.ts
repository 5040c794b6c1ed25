/**
 * The settings the embedded PostgreSQL starts with, chosen for an index fed by a firehose on a
 * small box. (With DATABASE_URL, your server's own settings apply; docs/performance.md says
 * which of these are worth copying.)
 *
 * - synchronous_commit=off (DURABLE_COMMITS=true turns it on): a commit returns before its WAL
 *   reaches the disk. A machine crash can lose the last commits (up to three times
 *   wal_writer_delay, 600 ms), and that is safe here: each batch commits its rows and its cursor
 *   together, so what is lost is lost with its cursor, and the next start asks the relay for those
 *   events again. Nothing is lost and nothing is doubled while the relay still holds them (its
 *   replay window: about a day and more on bsky.network); corruption is impossible (fsync stays
 *   on, full_page_writes stays on). A process crash (kill -9) loses nothing at all.
 * - checkpoint_timeout=15min, max_wal_size=4GB: checkpoints far apart, so fewer full-page images
 *   are written after each one (the biggest WAL cost of a write-heavy load).
 * - wal_buffers=16MB: room for a large batch's WAL without forced writes.
 * - shared_buffers: a quarter of the memory the process may use (the container's limit, if it has
 *   one), at least 128 MB and at most 4 GB: 512 MB on a 2 GB box. Every record lands in three to
 *   six indexes at places all over them, so once the indexes outgrow the buffers each insert
 *   reads pages back and writes dirty ones out: with 10M records stored (bench big-table), a fixed
 *   256 MB ran the flood at 3,428 commits/s with PostgreSQL at 1.04 cores, 2 GB at 9,044 with
 *   0.41 (one run each, 2026-12-03; 10,540 on empty tables).
 * - random_page_cost=1.1: an index lookup costs about what a sequential read does when the data
 *   is cached or on SSD. At the default 4 the planner sometimes chose a hash join over a whole
 *   table for the batch writer's deletes of replaced keys (`delete ... using unnest(...)`), and
 *   kept that plan cached: 204 to 895 ms per 100k-commit flood for the same code. flood-noverify
 *   100k, three alternating pairs: 11,166 / 10,763 / 10,571 -> 11,416 / 10,990 / 12,569
 *   commits/s, PostgreSQL ~45 -> ~38 us per commit (the plans themselves were not inspected).
 */
import { totalmem } from 'node:os';

export function embeddedPostgresSettings(maxConnections: number, durableCommits = false, memoryBytes = usableMemoryBytes()): Record<string, string | number> {
  return {
    max_connections: maxConnections,
    synchronous_commit: durableCommits ? 'on' : 'off',
    checkpoint_timeout: '15min',
    max_wal_size: '4GB',
    wal_buffers: '16MB',
    shared_buffers: `${sharedBuffersMb(memoryBytes)}MB`,
    random_page_cost: 1.1,
  };
}

const MB = 1024 * 1024;

/** A quarter of `memoryBytes`, in MB, from 128 MB to 4 GB. */
export function sharedBuffersMb(memoryBytes: number): number {
  return Math.min(4096, Math.max(128, Math.floor(memoryBytes / 4 / MB)));
}

/** The machine's memory, or the container's limit when it is lower (cgroups). */
function usableMemoryBytes(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 ? Math.min(limit, totalmem()) : totalmem();
}
