/**
 * Test-run setup: one PostgreSQL server for every test file.
 *
 * TEST_DATABASE_URL (or DATABASE_URL) names an existing server to use; otherwise an embedded
 * server is started in a temporary folder and stopped after the last test. Each test file then
 * creates its own database on it (see `database.ts`), so files never see each other's rows.
 */
import { afterAll, setDefaultTimeout } from 'bun:test';
import { mkdtemp, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { silentLogger } from '../../src/log.ts';

// Tests here start servers and processes: 5 s (the default) is too tight on a loaded 2-core box.
setDefaultTimeout(60_000);

const external = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
if (external) {
  process.env.AQUEDUCT_TEST_SERVER_URL = external;
} else {
  const dir = await mkdtemp(join(tmpdir(), 'aqueduct-test-'));
  await chmod(dir, 0o755); // as root the server runs as 'postgres', which must reach the folder
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
    log: silentLogger,
  });
  process.env.AQUEDUCT_TEST_SERVER_URL = server.url;
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
}
