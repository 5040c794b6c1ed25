/**
 * The backfill against hostile PDS hosts (the simulator's `hostFaults`), beside honest ones: a
 * host answering garbage, a CAR rooted at the wrong block, a commit signed by a stranger's key,
 * a CAR without end, a redirect to a private address, 503s, or a body trickling in, costs only
 * its own repos: each stays queued with a backoff and the reason in `last_error`, nothing of it
 * reaches the index (not one row under those DIDs), every honest host's repos are imported
 * exactly, and the backfill goes on. A host that rate-limits (429 with Retry-After) is paused
 * and then continued: its repos all end imported.
 *
 * The state is read after the first attempt: the backoff is a minute, no test waits for it.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import type { HostFault } from '../../src/sim/hosts.ts';
import { startSimulator } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { startTestBackfill } from './harness.ts';
import { indexedByDid, repoRows, reposOfHost, type RepoRow } from './queue.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

/** What the first attempt at a repo of each failing kind leaves in `last_error`. */
const REASON: Partial<Record<HostFault, RegExp>> = {
  garbage: /^bad-repo: /,
  'wrong-root': /^bad-repo: /,
  'bad-signature': /^bad-signature: commit \S+: bad-signature$/,
  // the endless blocks (zero digests) fail their hash check as they stream past, before any size
  // cap is reached; a CAR that is only too big is the 'too-large' test below
  endless: /^bad-repo: bad-block: /,
  // the 302 is not followed (redirect: 'manual'): 10.0.0.1 is never asked
  'redirect-private': /^fetch-failed: getRepo answered 302$/,
  // a 503 counts as the host limiting its rate: no attempt is used (backfill.ts)
  unavailable: /^getRepo answered 503$/,
  trickle: /^fetch-failed: timed out, stalled or stopped$/,
};

/** Faults after which the host answers with an error status: the host itself is paused after a few, so some of its repos wait for the host, not yet tried. */
const PAUSES_HOST: ReadonlySet<HostFault> = new Set(['redirect-private', 'unavailable']);

const FAULTS: Record<number, HostFault> = {
  2: 'garbage',
  3: 'wrong-root',
  4: 'bad-signature',
  5: 'endless',
  6: 'redirect-private',
  7: 'unavailable',
  8: 'rate-limited',
};

describe('backfill against hostile hosts', () => {
  test('each hostile host costs only its own repos: queued with the reason, none of them indexed; honest and rate-limited hosts imported exactly', async () => {
    // no live commits: the truth leaves out exactly the preloaded repos of the hostile hosts
    const sim = await startSimulator({ seed: 61, accounts: 400, commits: 0, pregenerate: true, hosts: 9, hostFaults: FAULTS, preload: { records: 15_000 } });
    cleanups.push(() => sim.stop());
    const database = await migratedDatabase('bf_hostile', 8);
    cleanups.push(() => database.close());
    const run = await startTestBackfill({
      db: database.db,
      simUrl: sim.url,
      allowPrivateHosts: [...sim.hostAddresses, ...LOOPBACK_HOSTS],
      // the endless CAR is cut here; every honest repo of this network is far smaller
      maxRepoBytes: 8 * 1024 * 1024,
    });
    cleanups.push(() => run.stop());

    const byHost = sim.hosts.map((host) => reposOfHost(sim, host.index));
    for (const dids of byHost) expect(dids.length).toBeGreaterThan(1);
    const unimportable = sim.unimportableDids();
    // (it names every account of those hosts; those with a repo are the ones listed)
    expect(unimportable.filter((did) => sim.network.directory.byDid(did)!.hasRepo)).toEqual(byHost.filter((_, h) => FAULTS[h] !== undefined && FAULTS[h] !== 'rate-limited').flat().sort());

    await run.backfill.request({ all: true });
    const rowsOf = (rows: RepoRow[], h: number) => rows.filter((row) => sim.hostOf(row.did) === h);
    const firstAttemptsMade = async (): Promise<boolean> => {
      const rows = await repoRows(database.db);
      if (rows.length !== byHost.flat().length) return false;
      return sim.hosts.every((host) => {
        const mine = rowsOf(rows, host.index);
        if (host.fault === null || host.fault === 'rate-limited') return mine.every((row) => row.state === 'done');
        if (PAUSES_HOST.has(host.fault)) return mine.some((row) => row.lastError !== null) && run.backfill.figures.troubledHosts.some((t) => t.host === host.hostname && t.pausedForMs > 0);
        return mine.every((row) => row.attempts >= 1);
      });
    };
    await until(firstAttemptsMade, { timeoutMs: 150_000, intervalMs: 100 }).catch(async (error) => {
      console.log(JSON.stringify({ rows: (await repoRows(database.db)).filter((row) => row.state !== 'done').map((row) => ({ ...row, host: sim.hostOf(row.did) })), figures: { ...run.backfill.figures, outcomes: Object.fromEntries(run.backfill.figures.outcomes) } }, null, 1));
      throw error;
    });

    const rows = await repoRows(database.db);
    for (const host of sim.hosts) {
      const mine = rowsOf(rows, host.index);
      expect(mine.map((row) => row.did)).toEqual(byHost[host.index]!);
      if (host.fault === null || host.fault === 'rate-limited') {
        for (const row of mine) expect([row.did, row.state, row.rev]).toEqual([row.did, 'done', sim.network.directory.byDid(row.did)!.repo.rev]);
        continue;
      }
      // nothing done, nothing given up: queued, backing off, with the reason
      for (const row of mine) {
        expect([host.fault, row.state, row.rev, row.records]).toEqual([host.fault, 'queued', null, null]);
        if (row.lastError === null) {
          // not tried yet: due, but its host is paused
          expect([host.fault, PAUSES_HOST.has(host.fault), row.attempts]).toEqual([host.fault, true, 0]);
          continue;
        }
        expect(row.waitMs).toBeGreaterThan(0);
        expect([host.fault, row.lastError]).toEqual([host.fault, expect.stringMatching(REASON[host.fault]!)]);
        expect([host.fault, row.attempts]).toEqual([host.fault, host.fault === 'unavailable' ? 0 : 1]);
      }
    }

    // not one row of a hostile host's repos in the index; the rest exactly the truth
    const indexed = await indexedByDid(database.db);
    expect(unimportable.filter((did) => indexed.has(did))).toEqual([]);
    const truth = sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));

    const figures = run.backfill.figures;
    expect(figures.outcomes.get('rate-limited') ?? 0).toBeGreaterThan(0);
    expect(figures.outcomes.get('bad-repo') ?? 0).toBe(byHost[2]!.length + byHost[3]!.length + byHost[5]!.length);
    expect(figures.outcomes.get('bad-signature') ?? 0).toBe(byHost[4]!.length);
    expect(figures.outcomes.get('imported')).toBe(byHost[0]!.length + byHost[1]!.length + byHost[8]!.length);

    // still working: a repo asked for again is imported
    const again = byHost[0]![0]!;
    await run.backfill.request({ dids: [again] });
    await until(() => (run.backfill.figures.outcomes.get('imported') ?? 0) > figures.outcomes.get('imported')!);
  }, 200_000);

  test('a repo past maxRepoBytes is too-large: queued with the reason, nothing of it indexed; the smaller ones imported', async () => {
    const sim = await startSimulator({ seed: 63, accounts: 30, commits: 0, pregenerate: true, preload: { records: 3_000 } });
    cleanups.push(() => sim.stop());
    const database = await migratedDatabase('bf_too_large', 4);
    cleanups.push(() => database.close());
    const sizes = new Map(reposOfHost(sim, 0).map((did) => [did, sim.network.directory.byDid(did)!.repo.exportCar()!.length]));
    const cap = [...sizes.values()].sort((a, b) => a - b)[Math.floor(sizes.size / 2)]!;
    const run = await startTestBackfill({ db: database.db, simUrl: sim.url, allowPrivateHosts: LOOPBACK_HOSTS, maxRepoBytes: cap });
    cleanups.push(() => run.stop());
    await run.backfill.request({ all: true });
    await until(async () => {
      const rows = await repoRows(database.db);
      return rows.length === sizes.size && rows.every((row) => row.state === 'done' || row.attempts >= 1);
    }, { timeoutMs: 60_000, intervalMs: 50 });
    const indexed = await indexedByDid(database.db);
    const big = [...sizes].filter(([, bytes]) => bytes > cap).map(([did]) => did);
    expect(big.length).toBeGreaterThan(0);
    for (const row of await repoRows(database.db)) {
      if (sizes.get(row.did)! > cap) {
        expect([row.state, row.attempts, row.lastError ?? '', indexed.has(row.did)]).toEqual(['queued', 1, expect.stringMatching(/^too-large: /), false]);
      } else {
        expect([row.state, indexed.get(row.did) ?? 0]).toEqual(['done', sim.network.directory.byDid(row.did)!.repo.recordCount]);
      }
    }
    expect(run.backfill.figures.outcomes.get('too-large')).toBe(big.length);
  }, 90_000);

  for (const [name, caps] of [
    ['stallMs', { stallMs: 200 }],
    ['timeoutMs', { timeoutMs: 1_500 }],
  ] as const) {
    test(`a trickling host is given up at ${name}: queued with the reason, nothing indexed`, async () => {
      const sim = await startSimulator({ seed: 62, accounts: 40, commits: 0, pregenerate: true, hosts: 2, hostFaults: { 1: 'trickle' }, preload: { records: 600 } });
      cleanups.push(() => sim.stop());
      const database = await migratedDatabase('bf_trickle', 4);
      cleanups.push(() => database.close());
      const run = await startTestBackfill({ db: database.db, simUrl: sim.url, allowPrivateHosts: [...sim.hostAddresses, ...LOOPBACK_HOSTS], ...caps });
      cleanups.push(() => run.stop());
      const trickling = reposOfHost(sim, 1);
      expect(trickling.length).toBeGreaterThan(0);
      // only the trickling host is asked for: the caps never touch an honest repo
      await run.backfill.request({ hosts: [sim.hosts[1]!.hostname] });
      await until(async () => {
        const rows = await repoRows(database.db);
        return rows.length === trickling.length && rows.every((row) => row.attempts >= 1);
      }, { timeoutMs: 60_000, intervalMs: 50 });
      for (const row of await repoRows(database.db)) {
        expect([row.state, row.attempts, row.rev]).toEqual(['queued', 1, null]);
        expect(row.lastError ?? '').toMatch(REASON.trickle!);
        expect(row.waitMs).toBeGreaterThan(0);
      }
      expect((await indexedByDid(database.db)).size).toBe(0);
    }, 90_000);
  }
});
