/**
 * `bun run backfill` as an operator runs it: --help and a bad flag; with no Aqueduct running it
 * runs one itself, backfills every repo of the simulated network and exits 0, the index at the
 * ground truth; --status asks a running Aqueduct.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { Database } from '../../src/db/database.ts';
import { startSimulator } from '../../src/sim/server.ts';
import { createTestDatabase } from '../support/database.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { cleanEnv, startAqueductProcess } from '../support/process.ts';

const ROOT = join(import.meta.dir, '..', '..');
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

const run = async (args: string[], env: Record<string, string> = {}) => {
  const child = Bun.spawn(['bun', 'src/backfill/cli.ts', ...args], { cwd: ROOT, env: cleanEnv(env), stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, code };
};

describe('bun run backfill', () => {
  test('--help answers, a bad flag or nothing to do gets the usage and exit 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: bun run backfill');
    for (const args of [['--bogus'], [], ['--did', 'not-a-did'], ['--host', 'https://pds.example']]) {
      const bad = await run(args);
      expect([args, bad.code]).toEqual([args, 2]);
      expect(bad.stderr).toContain('usage: bun run backfill');
    }
  }, 30_000);

  test('with no Aqueduct running it runs one, backfills the network and exits 0 at the ground truth', async () => {
    const sim = await startSimulator({ seed: 43, accounts: 40, commits: 1500, pregenerate: true });
    cleanups.push(() => sim.stop());
    const database = await createTestDatabase('backfill_cli');
    cleanups.push(() => database.drop());
    const env = { DATABASE_URL: database.url, RELAY_URL: sim.url.replace(/^http/, 'ws'), PLC_URL: sim.url, PORT: '0', BACKFILL_HOST_RATE: '1000', PLC_RATE_LIMIT: '1000' };
    const result = await run(['--all'], env);
    expect(result.stderr).not.toMatch(/ (WARN|ERROR) /);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('running Aqueduct here');
    expect(result.stdout).toMatch(/repos \d+ done, 0 queued, 0 failed, 0 inactive/);
    const db = new Database({ url: database.url, poolSize: 2 });
    cleanups.push(() => db.close());
    const truth = sim.groundTruth();
    expect(await readIndexedState(db, truth)).toEqual(expectedState(truth));

    // --status asks a running Aqueduct
    const aqueduct = await startAqueductProcess({ DATABASE_URL: database.url, PORT: '0' });
    cleanups.push(() => aqueduct.stop());
    const status = await run(['--status', '--url', aqueduct.url]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^repos \d+ done, 0 queued, 0 failed, 0 inactive/);
  }, 120_000);
});
