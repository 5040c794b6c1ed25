/**
 * The backfill over a network of many PDS hosts with repos that existed before the simulation:
 * the relay's listHosts names every host, each host's listRepos names its repos, every repo is
 * fetched from its own host, and the index ends exactly at the ground truth (records and
 * counters); the queue says so row by row (every repo 'done' at the revision its host holds,
 * every host 'listed' with its repo count). One host asked for alone brings exactly its repos.
 * The hosts listen on 127.0.0.x: only ALLOW_PRIVATE_HOSTS naming them lets the backfill reach
 * them; loopback alone is refused at every host and nothing is imported.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { startTestBackfill } from './harness.ts';
import { allRepos, hostRows, indexedByDid, repoRows, repoStates, reposOfHost } from './queue.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

const HOSTS = 6;
let simulator: Simulator | null = null;
async function sim(): Promise<Simulator> {
  if (simulator === null) {
    // 30,000 preloaded records over 6 hosts, then live commits chaining from them (all made
    // before the backfill starts, so the truth is final)
    simulator = await startSimulator({ seed: 51, accounts: 300, commits: 400, pregenerate: true, hosts: HOSTS, preload: { records: 30_000 } });
    const started = simulator;
    cleanups.push(() => started.stop());
  }
  return simulator;
}

describe('backfill over many hosts', () => {
  test('every host listed from the relay, every repo imported from its own host: the index equals the ground truth', async () => {
    const s = await sim();
    expect(s.hosts.length).toBe(HOSTS);
    const database = await migratedDatabase('bf_hosts', 8);
    cleanups.push(() => database.close());
    const run = await startTestBackfill({ db: database.db, simUrl: s.url, allowPrivateHosts: [...s.hostAddresses, ...LOOPBACK_HOSTS] });
    cleanups.push(() => run.stop());

    await run.backfill.request({ all: true });
    const figures = await run.settled(120_000);
    const truth = s.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));

    const expected = allRepos(s);
    const rows = await repoRows(database.db);
    expect(rows.map((row) => row.did)).toEqual(expected);
    for (const row of rows) {
      const account = s.network.directory.byDid(row.did)!;
      expect({ did: row.did, state: row.state, rev: row.rev, records: row.records, host: row.host, error: row.lastError }).toEqual({
        did: row.did,
        state: 'done',
        rev: account.repo.rev,
        records: account.repo.recordCount,
        host: s.hosts[s.hostOf(row.did)!]!.hostname,
        error: null,
      });
    }
    // every record of every repo is indexed, under its own author
    const indexed = await indexedByDid(database.db);
    for (const row of rows) expect([row.did, indexed.get(row.did) ?? 0]).toEqual([row.did, row.records!]);

    const hosts = await hostRows(database.db);
    const relay = new URL(s.url).host;
    expect(hosts.find((row) => row.host === relay)).toMatchObject({ kind: 'relay', state: 'listed' });
    for (const host of s.hosts) {
      expect(hosts.find((row) => row.host === host.hostname)).toMatchObject({ kind: 'pds', state: 'listed', repos: reposOfHost(s, host.index).length, failures: 0 });
    }
    expect(hosts.length).toBe(HOSTS + 1);
    expect(figures.outcomes.get('imported')).toBe(expected.length);
    expect(figures.recordsImported).toBe(Object.values(truth.records).reduce((a, b) => a + b, 0));
    expect(figures.listed).toMatchObject({ hosts: HOSTS, repos: expected.length, invalid: 0 });
  }, 180_000);

  test('one host asked for alone: exactly its repos, nothing of any other host', async () => {
    const s = await sim();
    const database = await migratedDatabase('bf_one_host', 6);
    cleanups.push(() => database.close());
    const run = await startTestBackfill({ db: database.db, simUrl: s.url, allowPrivateHosts: [...s.hostAddresses, ...LOOPBACK_HOSTS] });
    cleanups.push(() => run.stop());

    const chosen = s.hosts[2]!;
    await run.backfill.request({ hosts: [chosen.hostname] });
    await run.settled(120_000);
    const expected = reposOfHost(s, chosen.index);
    expect(expected.length).toBeGreaterThan(0);
    const rows = await repoRows(database.db);
    expect(rows.map((row) => row.did)).toEqual(expected);
    for (const row of rows) expect([row.did, row.state, row.rev]).toEqual([row.did, 'done', s.network.directory.byDid(row.did)!.repo.rev]);
    const indexed = await indexedByDid(database.db);
    // only the chosen host's authors have records, each exactly its repo
    expect([...indexed.keys()].filter((did) => s.hostOf(did) !== chosen.index)).toEqual([]);
    for (const did of expected) expect([did, indexed.get(did) ?? 0]).toEqual([did, s.network.directory.byDid(did)!.repo.recordCount]);
    expect(await hostRows(database.db)).toEqual([{ host: chosen.hostname, kind: 'pds', state: 'listed', repos: expected.length, failures: 0, lastError: null }]);
    await run.stop();
  }, 120_000);

  test('ALLOW_PRIVATE_HOSTS without the hosts: each host is refused at listing, nothing is fetched from it', async () => {
    const s = await sim();
    const database = await migratedDatabase('bf_private', 4);
    cleanups.push(() => database.close());
    // the relay is on 127.0.0.1 (allowed); the hosts on 127.0.0.2.. are private addresses
    const run = await startTestBackfill({ db: database.db, simUrl: s.url, allowPrivateHosts: LOOPBACK_HOSTS });
    cleanups.push(() => run.stop());

    await run.backfill.request({ all: true });
    const pds = (rows: Awaited<ReturnType<typeof hostRows>>) => rows.filter((row) => row.kind === 'pds');
    await until(async () => {
      const rows = pds(await hostRows(database.db));
      return rows.length === HOSTS && rows.every((row) => row.failures >= 1);
    });
    for (const row of pds(await hostRows(database.db))) {
      expect(row.state).toBe('listing'); // backing off, not given up after one try
      expect(row.lastError ?? '').toMatch(/127\.0\.0\.\d+/);
    }
    expect(await repoStates(database.db)).toEqual({});
    expect((await indexedByDid(database.db)).size).toBe(0);
    await run.stop();
  }, 60_000);
});
