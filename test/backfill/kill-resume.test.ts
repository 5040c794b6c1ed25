/**
 * kill -9 and resume: a backfill in a child process (kill-child.ts) is killed with SIGKILL part way
 * (as soon as repos are listed, then with a third and two thirds of them done), started
 * again each time, and let finish: the index equals the ground truth, counters included (nothing
 * written twice by a repo imported again), and every repo is 'done' at the revision its host
 * holds. The simulator runs here, so it outlives every kill; each host is asked at a bounded rate
 * so that a kill lands part way on any machine.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { cleanEnv } from '../support/process.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { allRepos, repoRows, reposOfHost } from './queue.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

describe('backfill killed with SIGKILL', () => {
  test('killed once repos are listed, at a third and at two thirds, resumed each time: ends exactly at the ground truth', async () => {
    const sim = await startSimulator({ seed: 81, accounts: 300, commits: 300, pregenerate: true, hosts: 3, preload: { records: 20_000 } });
    cleanups.push(() => sim.stop());
    const database = await migratedDatabase('bf_kill', 4);
    cleanups.push(() => database.close());
    const repos = allRepos(sim).length;

    const children = new Set<Subprocess>();
    cleanups.push(async () => {
      for (const child of children) child.kill('SIGKILL');
    });
    const spawn = () => {
      const child = Bun.spawn([process.execPath, join(import.meta.dir, 'kill-child.ts')], {
        cwd: join(import.meta.dir, '..', '..'),
        env: cleanEnv({
          BACKFILL_DATABASE_URL: database.url,
          BACKFILL_SIM_URL: sim.url,
          BACKFILL_ALLOW: [...sim.hostAddresses, ...LOOPBACK_HOSTS].join(','),
          // 3 hosts at 15 getRepo a second: about 6 s for the whole network, so every kill lands part way
          BACKFILL_HOST_RATE: '15',
        }),
        stdin: 'ignore',
        stdout: 'ignore',
        stderr: 'inherit',
      });
      children.add(child);
      return child;
    };
    const counts = async () => {
      const [row] = await database.db.run((sql) => sql<{ rows: number; done: number }[]>`
        select count(*)::int as rows, (count(*) filter (where state = 'done'))::int as done from backfill_repos`);
      return row!;
    };
    const kill = async (child: Subprocess) => {
      child.kill('SIGKILL');
      await child.exited;
      children.delete(child);
      expect(child.signalCode).toBe('SIGKILL');
    };

    const killedAt: Array<{ rows: number; done: number }> = [];
    // 1: as soon as the first host's repos are listed; 2, 3: a third and two thirds done
    for (const reached of [(c: { rows: number }) => c.rows > 0, (c: { done: number }) => c.done >= repos / 3, (c: { done: number }) => c.done >= (2 * repos) / 3]) {
      const child = spawn();
      await until(async () => reached(await counts()), { timeoutMs: 120_000, intervalMs: 10 });
      await kill(child);
      killedAt.push(await counts());
    }
    // each kill landed part way
    for (const at of killedAt) expect(at.done).toBeLessThan(repos);

    const last = spawn();
    await until(async () => (await counts()).done === repos, { timeoutMs: 120_000, intervalMs: 50 });
    await kill(last);

    const truth = sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    const rows = await repoRows(database.db);
    expect(rows.length).toBe(repos);
    for (const row of rows) {
      const account = sim.network.directory.byDid(row.did)!;
      expect([row.did, row.state, row.rev, row.records, row.attempts]).toEqual([row.did, 'done', account.repo.rev, account.repo.recordCount, 0]);
    }
    const hosts = await database.db.run((sql) => sql<{ host: string; state: string; repos: number }[]>`select host, state, repos from backfill_hosts where kind = 'pds' order by host`);
    expect([...hosts]).toEqual([...sim.hosts].sort((a, b) => (a.hostname < b.hostname ? -1 : 1)).map((h) => ({ host: h.hostname, state: 'listed', repos: reposOfHost(sim, h.index).length })));
    console.log(`kill-resume: ${repos} repos; killed at (rows, done) ${killedAt.map((at) => `(${at.rows}, ${at.done})`).join(' ')}`);
  }, 240_000);
});
