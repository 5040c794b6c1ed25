import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from '../../src/db/database.ts';
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
