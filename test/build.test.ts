/**
 * The single binary the Dockerfile ships: built with the same `bun run build`, copied alone into an
 * empty folder (no checkout, no node_modules, no sql/, no POSTGRES_BIN_DIR), then run twice.
 */
import { afterAll, expect, test } from 'bun:test';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAqueductProcess } from './support/process.ts';
import { startSimulator } from '../src/sim/server.ts';

const ROOT = join(import.meta.dir, '..');
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the compiled binary starts with an embedded PostgreSQL, verifies and indexes commits, and stops cleanly', async () => {
  const build = Bun.spawnSync([process.execPath, 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  expect(build.exitCode).toBe(0);

  dir = await mkdtemp(join(tmpdir(), 'aqueduct-image-'));
  await chmod(dir, 0o755);
  await cp(join(ROOT, 'dist/aqueduct'), join(dir, 'app/aqueduct'));
  const sim = await startSimulator({ seed: 2, accounts: 20, commits: 200, pregenerate: true });
  try {
    const aqueduct = await startAqueductProcess(
      {
        DATA_DIR: join(dir, 'data'),
        FIREHOSE_ENABLED: 'true',
        FIREHOSE_START: '0',
        RELAY_URL: sim.url.replace(/^http/, 'ws'),
        PLC_URL: sim.url,
      },
      [join(dir, 'app/aqueduct')],
      60_000,
      { cwd: dir },
    );
    // its own PostgreSQL, unpacked from inside it, and its own migrations
    expect(aqueduct.log()).toContain('unpacking the embedded PostgreSQL');
    expect(aqueduct.log()).toContain('migrations applied');
    // the verification worker is a second entry point of the binary: commits verify only if it loaded
    let cursor: unknown = null;
    for (let attempt = 0; attempt < 300 && cursor !== sim.groundTruth().lastSeq; attempt++) {
      await Bun.sleep(100);
      cursor = ((await (await fetch(`${aqueduct.url}/api/metrics/firehose`)).json()) as { cursor: unknown }).cursor;
    }
    expect(cursor).toBe(sim.groundTruth().lastSeq);
    const processor = (await (await fetch(`${aqueduct.url}/api/metrics/event-processor`)).json()) as { rejected: { total: number } };
    expect(processor.rejected.total).toBe(0);
    expect(await (await fetch(`${aqueduct.url}/ready`)).json()).toMatchObject({ status: 'ready' });
    expect((await fetch(`${aqueduct.url}/static/htmx.js`)).status).toBe(200);
    expect(await aqueduct.stop('SIGTERM')).toBe(0);

    // the backfill command is in the binary too
    const help = Bun.spawnSync([join(dir, 'app/aqueduct'), 'backfill', '--help'], { cwd: dir, stdout: 'pipe', stderr: 'pipe' });
    expect([help.exitCode, help.stdout.toString().split('\n')[0]]).toEqual([0, expect.stringContaining('usage: bun run backfill')]);
    const bad = Bun.spawnSync([join(dir, 'app/aqueduct'), 'backfill', '--no-such-flag'], { cwd: dir, stdout: 'pipe', stderr: 'pipe' });
    expect(bad.exitCode).toBe(2);

    // a second start reuses what the first unpacked and created
    const again = await startAqueductProcess({ DATA_DIR: join(dir, 'data') }, [join(dir, 'app/aqueduct')], 60_000, { cwd: dir });
    expect(again.log()).not.toContain('unpacking the embedded PostgreSQL');
    expect(again.log()).toContain('database schema up to date');
    expect(await again.stop('SIGTERM')).toBe(0);
  } finally {
    await sim.stop();
  }
}, 120_000);
