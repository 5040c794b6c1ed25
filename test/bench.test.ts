/**
 * A smoke run of `bun run bench`: a small flood through the real processes, checking that it
 * completes and reports sane figures. No timing assertions: speed is measured by the benchmark
 * itself, on purpose, outside the test suite.
 */
import { afterAll, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dir, '..');

/** This environment without DATABASE_URL: the bench then uses its own embedded server. */
function envWithoutDatabaseUrl(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && key !== 'DATABASE_URL') env[key] = value;
  return env;
}
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('bun run bench completes a small flood and writes every figure', async () => {
  dir = await mkdtemp(join(tmpdir(), 'aqueduct-bench-test-'));
  const json = join(dir, 'result.json');
  const env = envWithoutDatabaseUrl();
  const run = Bun.spawn([process.execPath, 'run', 'bench', '--scenario', 'flood', '--commits', '2000', '--json', json], {
    cwd: ROOT,
    env,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [code, stdout, stderr] = await Promise.all([run.exited, new Response(run.stdout).text(), new Response(run.stderr).text()]);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toContain('commitsPerSec');

  const result = (await Bun.file(json).json()) as Record<string, unknown>;
  for (const field of [
    'scenario', 'commits', 'ops', 'seconds', 'commitsPerSec', 'opsPerSec', 'lagP50Ms', 'lagP99Ms', 'healthP99Ms', 'cpuCoresIngester',
    'cpuCoresPostgres', 'cpuCoresSimulator', 'peakRssMb', 'dbBytesPerCommit', 'dropped', 'rejected', 'plcExport', 'verify', 'poolSize', 'machine',
  ]) {
    expect(result).toHaveProperty(field);
  }
  expect(result).toMatchObject({ scenario: 'flood', commits: 2000, dropped: 0, rejected: 0, verify: true, poolSize: 32 });
  expect(result.commitsPerSec).toBeGreaterThan(0);
  expect(result.cpuCoresIngester).toBeGreaterThan(0);
  expect(result.cpuCoresPostgres).toBeGreaterThan(0);
  expect(result.peakRssMb).toBeGreaterThan(0);
  expect(result.dbBytesPerCommit).toBeGreaterThan(0);
  // the directory's export listed every account (200): their keys came from it, not one by one
  expect((result.plcExport as { operations: number }).operations).toBeGreaterThanOrEqual(200);
}, 180_000);

const inGitCheckout = Bun.spawnSync(['git', 'rev-parse', '--git-dir'], { cwd: ROOT, stdout: 'ignore', stderr: 'ignore' }).exitCode === 0;

test.skipIf(!inGitCheckout)('bun run bench:compare alternates the two versions and removes its worktree', async () => {
  const out = await mkdtemp(join(tmpdir(), 'aqueduct-compare-test-'));
  try {
    const env = envWithoutDatabaseUrl();
    const args = ['run', 'bench:compare', '--base', 'HEAD', '--base-env', 'MAX_CONCURRENT_OPS=8', '--scenario', 'flood', '--commits', '1000', '--rounds', '1', '--out', out];
    const run = Bun.spawn([process.execPath, ...args], { cwd: ROOT, env, stdout: 'pipe', stderr: 'pipe' });
    const [code, stdout, stderr] = await Promise.all([run.exited, new Response(run.stdout).text(), new Response(run.stderr).text()]);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('with MAX_CONCURRENT_OPS=8');
    expect(stdout).toMatch(/round 1 A: \d+ commits\/s/);
    expect(stdout).toMatch(/round 1 B: \d+ commits\/s/);
    expect(stdout).toMatch(/B against A: [+-]\d+\.\d% commits\/s, faster in [01] of 1 rounds/);
    for (const side of ['A', 'B']) {
      expect(await Bun.file(join(out, `flood-${side}-1.json`)).json()).toMatchObject({ scenario: 'flood', commits: 1000, dropped: 0 });
    }
    const worktrees = Bun.spawnSync(['git', 'worktree', 'list'], { cwd: ROOT, stdout: 'pipe' }).stdout.toString();
    expect(worktrees).not.toContain('aqueduct-compare-');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}, 240_000);

test('bun run bench:compare refuses a revision that does not exist, naming it', async () => {
  const run = Bun.spawn([process.execPath, 'run', 'bench:compare', '--base', 'no-such-revision'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  const [code, stderr] = await Promise.all([run.exited, new Response(run.stderr).text()]);
  expect(code).toBe(2);
  expect(stderr).toContain('--base no-such-revision');
});

test.each([['bench', 'usage: bun run bench --'], ['bench:compare', 'usage: bun run bench:compare --']])('bun run %s answers --help, and a bad flag gets its usage', async (script, usage) => {
  const help = Bun.spawnSync([process.execPath, 'run', script, '--help'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  expect([help.exitCode, help.stdout.toString().includes(usage)]).toEqual([0, true]);
  const bad = Bun.spawnSync([process.execPath, 'run', script, '--no-such-flag'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  expect([bad.exitCode === 0, bad.stderr.toString().includes(usage)]).toEqual([false, true]);
});
