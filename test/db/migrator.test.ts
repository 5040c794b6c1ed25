import { afterAll, afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../../src/db/database.ts';
import { loadMigrations, migrate, MigrationError, pendingMigrations } from '../../src/db/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const opened: Array<{ db: Database; test: TestDatabase }> = [];
afterAll(async () => {
  for (const { db, test } of opened) {
    await db.close();
    await test.drop();
  }
});

async function freshDatabase(poolSize = 4): Promise<Database> {
  const test = await createTestDatabase('migrator');
  const db = new Database({ url: test.url, poolSize });
  opened.push({ db, test });
  return db;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aqueduct-migrations-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function files(entries: Record<string, string>): Promise<void> {
  for (const [name, sql] of Object.entries(entries)) await writeFile(join(dir, name), sql);
}

describe('migrator', () => {
  test('the real migrations apply to a fresh database, and a second run is a no-op', async () => {
    const db = await freshDatabase();
    const migrations = await loadMigrations(join(import.meta.dir, '../../sql'));
    expect(migrations.length).toBeGreaterThan(0);
    const first = await migrate(db, migrations);
    expect(first).toHaveLength(migrations.length);
    expect(await migrate(db, migrations)).toEqual([]);
    expect(await pendingMigrations(db, migrations)).toEqual([]);
  });

  test('applies in order, one transaction each, and records each file', async () => {
    await files({
      '00001_a.sql': 'create table a (id int);',
      '00002_b.sql': 'insert into a values (1); insert into a values (2);',
    });
    const db = await freshDatabase();
    expect(await migrate(db, await loadMigrations(dir))).toEqual(['00001_a', '00002_b']);
    const rows = await db.run((sql) => sql`select id, name from aqueduct_migrations order by id`);
    expect(rows.map((row) => [row.id, row.name])).toEqual([[1, 'a'], [2, 'b']]);
    const [count] = await db.run((sql) => sql`select count(*)::int as n from a`);
    expect(count?.n).toBe(2);
  });

  test('a failing migration leaves no trace and stops; fixing it lets the next run apply it', async () => {
    await files({ '00001_a.sql': 'create table a (id int);', '00002_b.sql': 'create table b (id int); select no_such_function();' });
    const db = await freshDatabase();
    await expect(migrate(db, await loadMigrations(dir))).rejects.toThrow(/00002_b failed/);
    const [exists] = await db.run((sql) => sql`select to_regclass('b') is not null as present`);
    expect(exists?.present).toBe(false);
    expect(await pendingMigrations(db, await loadMigrations(dir))).toEqual(['00002_b']);
    await files({ '00002_b.sql': 'create table b (id int);' });
    expect(await migrate(db, await loadMigrations(dir))).toEqual(['00002_b']);
  });

  test('a gap in the numbering is refused before anything runs', async () => {
    await files({ '00001_a.sql': 'select 1;', '00003_c.sql': 'select 1;' });
    await expect(loadMigrations(dir)).rejects.toThrow(/without gaps: expected 2, found 3/);
  });

  test('a badly named file is refused', async () => {
    await files({ '1_a.sql': 'select 1;' });
    await expect(loadMigrations(dir)).rejects.toBeInstanceOf(MigrationError);
  });

  test('an applied file that was edited is refused', async () => {
    await files({ '00001_a.sql': 'create table a (id int);' });
    const db = await freshDatabase();
    await migrate(db, await loadMigrations(dir));
    await files({ '00001_a.sql': 'create table a (id bigint);' });
    await expect(migrate(db, await loadMigrations(dir))).rejects.toThrow(/00001_a was edited after it was applied/);
    await expect(pendingMigrations(db, await loadMigrations(dir))).rejects.toThrow(/edited/);
  });

  test('a database migrated by a newer build is refused', async () => {
    await files({ '00001_a.sql': 'select 1;', '00002_b.sql': 'select 1;' });
    const db = await freshDatabase();
    await migrate(db, await loadMigrations(dir));
    await rm(join(dir, '00002_b.sql'));
    await expect(migrate(db, await loadMigrations(dir))).rejects.toThrow(/does not know/);
  });

  test('processes starting together apply each migration exactly once', async () => {
    // Each migration fails if it runs twice, and sleeps so the starts really overlap.
    await files({
      '00001_a.sql': 'select pg_sleep(0.2); create table a (id int);',
      '00002_b.sql': 'select pg_sleep(0.2); create table b (id int);',
    });
    const test = await createTestDatabase('migrator');
    const processes = Array.from({ length: 4 }, () => new Database({ url: test.url, poolSize: 2 }));
    try {
      const migrations = await loadMigrations(dir);
      const results = await Promise.all(processes.map((db) => migrate(db, migrations)));
      expect(results.flat().sort()).toEqual(['00001_a', '00002_b']);
    } finally {
      for (const db of processes) await db.close();
      await test.drop();
    }
  });
});
