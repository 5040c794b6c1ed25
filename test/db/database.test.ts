import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, postgresTarget } from '../../src/db/database.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let server: TestDatabase;
let db: Database;
beforeAll(async () => {
  server = await createTestDatabase('database');
  db = new Database({ url: server.url, poolSize: 4 });
});
afterAll(async () => {
  await db.close();
  await server.drop();
});

describe('beginOnWriterConnection', () => {
  test('runs every transaction on one connection, where its statements stay prepared', async () => {
    // open every shared connection, so a transaction taken from the shared pool would move between them
    const shared = await Promise.all(
      Array.from({ length: 3 }, () => db.run((sql) => sql<{ pid: number }[]>`select pg_backend_pid() as pid, pg_sleep(0.05)`)),
    );
    expect(new Set(shared.map(([row]) => row?.pid)).size).toBe(3);

    const seen: Array<{ pid: number; prepared: number }> = [];
    for (let round = 0; round < 4; round++) {
      seen.push(
        await db.beginOnWriterConnection(async (sql) => {
          const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid, ${round}::int4 as writer_marker`;
          const [prepared] = await sql<{ n: number }[]>`
            select count(*)::int4 as n from pg_prepared_statements where statement like ${'%as writer\\_marker%'}`;
          return { pid: row?.pid ?? -1, prepared: prepared?.n ?? -1 };
        }),
      );
    }
    expect(new Set(seen.map((entry) => entry.pid)).size).toBe(1);
    expect(seen.map((entry) => entry.prepared)).toEqual([1, 1, 1, 1]);
  });

  test('holds a pool slot while it runs, and rolls back when its task fails', async () => {
    await db.run((sql) => sql`create table if not exists writer_probe (n int)`);
    const failing = db.beginOnWriterConnection(async (sql) => {
      expect(db.stats().active).toBe(1);
      await sql`insert into writer_probe values (1)`;
      throw new Error('task failed');
    });
    await expect(failing).rejects.toThrow('task failed');
    expect(db.stats().active).toBe(0);
    const [row] = await db.run((sql) => sql<{ n: number }[]>`select count(*)::int4 as n from writer_probe`);
    expect(row?.n).toBe(0);
  });
});

describe('a Unix-domain socket named the way libpq names it', () => {
  test('postgresTarget moves the socket folder into the host option and leaves other URLs alone', () => {
    expect(postgresTarget('postgres://u:p@localhost:5433/db?host=/run/postgresql')).toEqual({ url: 'postgres://u:p@localhost:5433/db', host: '/run/postgresql' });
    expect(postgresTarget('postgres://u:p@%2Frun%2Fpostgresql:5433/db')).toEqual({ url: 'postgres://u:p@%2Frun%2Fpostgresql:5433/db', host: '/run/postgresql' });
    expect(postgresTarget('postgres://u:p@db.example:5432/db?sslmode=require')).toEqual({ url: 'postgres://u:p@db.example:5432/db?sslmode=require', host: undefined });
  });

  test('a ?host=/folder URL connects through the socket in that folder', async () => {
    const socketDir = await mkdtemp(join(tmpdir(), 'aqueduct-socket-'));
    const dataDir = await mkdtemp(join(tmpdir(), 'aqueduct-test-socket-'));
    await chmod(socketDir, 0o777); // as root the server runs as the postgres user, who creates the socket here
    await chmod(dataDir, 0o755);
    const server = await startEmbeddedPostgres({ dataDir, log: createLogger('warn'), settings: { unix_socket_directories: socketDir } });
    const url = new URL(server.url);
    url.searchParams.set('host', socketDir);
    const overSocket = new Database({ url: url.href, poolSize: 1 });
    try {
      const [row] = await overSocket.run((sql) => sql<{ tcp: string | null }[]>`select inet_server_addr()::text as tcp`);
      expect(row?.tcp).toBeNull(); // null over a Unix socket, the address over TCP
    } finally {
      await overSocket.close();
      await server.stop();
      await rm(socketDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
