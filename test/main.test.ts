import { afterAll, describe, expect, test } from 'bun:test';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { processesMatching, spawnAqueduct, startAqueductProcess } from './support/process.ts';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aqueduct-main-'));
  await chmod(dir, 0o755);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'data');
}

describe('the aqueduct process', () => {
  test.each([
    ['DB_POOL_SIZE', 'abc'],
    ['PORT', '70000'],
    ['RELAY_URL', 'http://relay.example'],
  ])('%s=%s stops start-up with one line naming the variable', async (name, value) => {
    const child = spawnAqueduct({ [name]: value, DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    expect(await child.exited).toBe(1);
    const stderr = await new Response(child.stderr).text();
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`configuration error: ${name}=`);
  }, 30_000);

  test('--help prints the usage and exits 0; an argument it does not take gets the usage and exit 2', async () => {
    const help = spawnAqueduct({}, [process.execPath, join(import.meta.dir, '../src/main.ts'), '--help']);
    expect(await help.exited).toBe(0);
    expect(await new Response(help.stdout).text()).toContain('usage: aqueduct');
    const bad = spawnAqueduct({}, [process.execPath, join(import.meta.dir, '../src/main.ts'), '--port', '5000']);
    expect(await bad.exited).toBe(2);
    expect(await new Response(bad.stderr).text()).toContain('usage: aqueduct');
  });

  test('an unreachable DATABASE_URL or a busy PORT stops start-up with a message naming it and the fix', async () => {
    const unreachable = spawnAqueduct({ DATABASE_URL: 'postgres://aqueduct:secret@127.0.0.1:1/none' });
    expect(await unreachable.exited).toBe(1);
    const stderr = await new Response(unreachable.stderr).text();
    expect(stderr).toContain('cannot reach DATABASE_URL=postgres://aqueduct:***@127.0.0.1:1/none');
    expect(stderr).toContain('unset DATABASE_URL to use the embedded PostgreSQL');
    expect(stderr).not.toContain('secret');

    const database: TestDatabase = await createTestDatabase('port');
    cleanups.push(() => database.drop());
    const squatter = Bun.serve({ port: 0, fetch: () => new Response('busy') });
    try {
      const busy = spawnAqueduct({ DATABASE_URL: database.url, PORT: String(squatter.port) });
      expect(await busy.exited).toBe(1);
      expect(await new Response(busy.stderr).text()).toContain(`cannot listen on PORT=${squatter.port}`);
    } finally {
      squatter.stop(true);
    }
  }, 60_000);

  test('with DATABASE_URL it migrates, serves, and exits 0 on SIGTERM', async () => {
    const database: TestDatabase = await createTestDatabase('main');
    cleanups.push(() => database.drop());
    const aqueduct = await startAqueductProcess({ DATABASE_URL: database.url });
    const ready = await fetch(`${aqueduct.url}/ready`);
    expect(ready.status).toBe(200);
    // DB_POOL_SIZE (32) is shared: the read API has its own quarter, the backfill an eighth,
    // ingestion the rest
    const pools = (await (await fetch(`${aqueduct.url}/api/metrics/database`)).json()) as { size: number; api: { size: number } };
    expect([pools.size, pools.api.size]).toEqual([20, 8]);
    expect(await (await fetch(`${aqueduct.url}/health`)).json()).toEqual({ status: 'ok' });
    expect(await aqueduct.stop('SIGTERM')).toBe(0);
    expect(aqueduct.log()).toContain('migrations applied');
    expect(aqueduct.log()).toContain('stopped');
  }, 60_000);

  test('without DATABASE_URL it runs an embedded PostgreSQL, reuses its data, and leaves no process behind', async () => {
    const dataDir = await tempDataDir();
    const first = await startAqueductProcess({ DATA_DIR: dataDir });
    expect((await fetch(`${first.url}/ready`)).status).toBe(200);
    expect(first.log()).toContain('creating the embedded PostgreSQL cluster');
    expect(await processesMatching(dataDir)).not.toHaveLength(0);
    expect(await first.stop('SIGINT')).toBe(0);
    expect(await processesMatching(dataDir)).toEqual([]);

    const second = await startAqueductProcess({ DATA_DIR: dataDir });
    expect(second.log()).not.toContain('creating the embedded PostgreSQL cluster');
    expect(second.log()).toContain('database schema up to date');
    expect((await fetch(`${second.url}/ready`)).status).toBe(200);

    // Killed without a chance to clean up, it leaves its server running; the next start stops
    // that server and carries on with the same data.
    expect(await second.stop('SIGKILL')).not.toBe(0);
    expect(await processesMatching(dataDir)).not.toHaveLength(0);
    const third = await startAqueductProcess({ DATA_DIR: dataDir });
    expect(third.log()).toContain('from an earlier run is still using the data directory');
    expect((await fetch(`${third.url}/ready`)).status).toBe(200);
    expect(await third.stop('SIGTERM')).toBe(0);
    expect(await processesMatching(dataDir)).toEqual([]);
  }, 120_000);
});
