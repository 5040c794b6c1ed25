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
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('bun run bench completes a small flood and writes every figure', async () => {
  dir = await mkdtemp(join(tmpdir(), 'aqueduct-bench-test-'));
  const json = join(dir, 'result.json');
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && key !== 'DATABASE_URL') env[key] = value;
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
    'cpuCoresPostgres', 'cpuCoresSimulator', 'peakRssMb', 'dbBytesPerCommit', 'dropped', 'rejected', 'verify', 'poolSize', 'machine',
  ]) {
    expect(result).toHaveProperty(field);
  }
  expect(result).toMatchObject({ scenario: 'flood', commits: 2000, dropped: 0, rejected: 0, verify: true, poolSize: 32 });
  expect(result.commitsPerSec).toBeGreaterThan(0);
  expect(result.peakRssMb).toBeGreaterThan(0);
  expect(result.dbBytesPerCommit).toBeGreaterThan(0);
}, 180_000);
