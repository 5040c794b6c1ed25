/**
 * The fault suite's machinery, in reduced form: kill -9 at 3 points, garbage / replayed / skipped
 * sequence numbers from the relay, a PostgreSQL that loses acknowledged commits, the embedded
 * server's postmaster killed, and a SIGTERM mid-flood, each a real Aqueduct process against
 * the real simulator, compared with its ground truth. Only what does not depend on the machine's
 * speed is asserted (nothing lost or doubled, every fault counted, exit codes, resumed cursors);
 * the time bounds are the benchmark's (`bun run bench/faults.ts`).
 */
import { describe, expect, test } from 'bun:test';
import { testServerUrl } from '../support/database.ts';
import { pgServerAt } from './harness.ts';
import { SCENARIOS, type Context, type Figure } from './scenarios.ts';

const ctx: Context = {
  pg: pgServerAt(testServerUrl()),
  full: false,
  smoke: true,
  seed: 3,
  memoryBoundMb: 600,
  progress: () => {},
};

function expectClean(figure: Figure): void {
  // the whole figure on failure: its notes say what differed
  expect({ scenario: figure.scenario, failed: Object.entries(figure.checks).filter(([, ok]) => !ok), notes: figure.notes }).toEqual({
    scenario: figure.scenario,
    failed: [],
    notes: figure.notes,
  });
  expect(figure.faults).toBeGreaterThan(0);
  expect(figure.lost).toBe(0);
  expect(figure.doubled).toBe(0);
}

describe('fault suite (reduced)', () => {
  test('kill -9 at 3 points: ends exactly at the ground truth, every start resumes from the stored cursor', async () => {
    const figure = await SCENARIOS.kill9!.run(ctx);
    expectClean(figure);
    expect(figure.faults).toBe(3);
  }, 90_000);

  test('the relay sends garbage, replays old seqs and skips seq numbers: each counted, none a crash', async () => {
    for (const name of ['relay-garbage', 'relay-replay', 'relay-skip']) expectClean(await SCENARIOS[name]!.run(ctx));
  }, 90_000);

  test('PostgreSQL with synchronous_commit=off killed mid-ingest: the lost batches are noticed and fetched again', async () => {
    const figure = await SCENARIOS['pg-external-async']!.run(ctx);
    expectClean(figure);
  }, 180_000);

  test('the disk fills: ingestion pauses, /ready names the reason, it resumes once space is freed', async () => {
    const figure = await SCENARIOS['disk-full']!.run(ctx);
    if (figure.verdict === 'skipped') return; // needs root and a tmpfs mount
    expect(Object.entries(figure.checks).filter(([, ok]) => !ok)).toEqual([]);
    expect([figure.lost, figure.doubled]).toEqual([0, 0]);
  }, 240_000);

  test('the embedded PostgreSQL killed (the postmaster, kill -9): it is started again and ingestion resumes by itself', async () => {
    expectClean(await SCENARIOS['pg-embedded-kill']!.run(ctx));
  }, 240_000);

  test('SIGTERM mid-flood: exits 0, the next start resumes exactly', async () => {
    expectClean(await SCENARIOS.sigterm!.run(ctx));
  }, 90_000);
});

test('bench/faults.ts answers --help, and a bad flag gets its usage', () => {
  const root = `${import.meta.dir}/../..`;
  const help = Bun.spawnSync([process.execPath, 'run', 'bench/faults.ts', '--help'], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  expect(help.exitCode).toBe(0);
  expect(help.stdout.toString()).toStartWith('usage: bun run bench/faults.ts');
  const bad = Bun.spawnSync([process.execPath, 'run', 'bench/faults.ts', '--no-such-flag'], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr.toString()).toContain('usage: bun run bench/faults.ts');
  const unknown = Bun.spawnSync([process.execPath, 'run', 'bench/faults.ts', '--scenario', 'no-such-scenario'], { cwd: root, stdout: 'pipe', stderr: 'pipe' });
  expect(unknown.exitCode).toBe(2);
});
