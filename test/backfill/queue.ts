/**
 * What the backfill tests read back besides the index's ground truth: the durable queue's rows and
 * the indexed records per author, straight from the tables.
 */
import type { Database } from '../../src/db/database.ts';
import { TABLES } from '../../src/pipeline/collections.ts';
import type { Simulator } from '../../src/sim/server.ts';

export interface RepoRow {
  readonly did: string;
  readonly host: string | null;
  readonly state: string;
  readonly rev: string | null;
  readonly records: number | null;
  readonly attempts: number;
  readonly lastError: string | null;
  /** not_before - now(), in ms (positive: backing off) */
  readonly waitMs: number;
}

export interface HostRow {
  readonly host: string;
  readonly kind: string;
  readonly state: string;
  readonly repos: number;
  readonly failures: number;
  readonly lastError: string | null;
}

export async function repoStates(db: Database): Promise<Record<string, number>> {
  const rows = await db.run((sql) => sql<{ state: string; n: number }[]>`select state, count(*)::int as n from backfill_repos group by state`);
  return Object.fromEntries(rows.map((row) => [row.state, row.n]));
}

export function repoRows(db: Database): Promise<RepoRow[]> {
  return db.run(
    (sql) => sql<RepoRow[]>`
      select did, host, state, rev, records, attempts, last_error,
        (extract(epoch from (not_before - now())) * 1000)::float8 as wait_ms
      from backfill_repos order by did`,
  );
}

export function hostRows(db: Database): Promise<HostRow[]> {
  return db.run((sql) => sql<HostRow[]>`select host, kind, state, repos, failures, last_error from backfill_hosts order by host`);
}

/** Indexed records per author DID, over every record table. */
export async function indexedByDid(db: Database): Promise<Map<string, number>> {
  const rows = await db.run((sql) => {
    const parts = TABLES.map((table) => sql`select author_id from ${sql(table)}`);
    const union = parts.reduce((all, part) => sql`${all} union all ${part}`);
    return sql<{ did: string; n: number }[]>`select a.did, count(*)::int as n from (${union}) r join actors a on a.id = r.author_id group by a.did`;
  });
  return new Map(rows.map((row) => [row.did, row.n]));
}

/** The DIDs host `h` holds a repo for, as its listRepos names them. */
export function reposOfHost(sim: Simulator, h: number): string[] {
  const dids: string[] = [];
  for (const i of sim.hosts[h]!.accounts) {
    const account = sim.network.directory.peek(i);
    if (account !== undefined && account.hasRepo) dids.push(account.did);
  }
  return dids.sort();
}

/** Every DID with a repo on some host. */
export function allRepos(sim: Simulator): string[] {
  return sim.hosts.flatMap((_, h) => reposOfHost(sim, h)).sort();
}
