/**
 * The migrator: forward-only SQL files `sql/NNNNN_name.sql`, applied in order.
 *
 * Promises:
 * - files are numbered 1, 2, 3... with no gap or duplicate, else nothing runs;
 * - each migration runs in its own transaction together with its row in `aqueduct_migrations`,
 *   so a failed migration leaves no trace and the next start retries it;
 * - a file already applied whose content changed (sha-256 checksum) stops start-up, as does a
 *   database that holds a migration this build does not know (it was migrated by a newer build);
 * - every transaction first takes one advisory lock, so processes starting together apply each
 *   migration once: the second waits, then sees it applied. Running twice is a no-op.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database, TransactionSql } from './database.ts';

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/** Any constant; it only has to be the same for every Aqueduct process. */
const ADVISORY_LOCK_KEY = 7_310_422_001;
const FILE_PATTERN = /^(\d{5})_([a-z0-9_]+)\.sql$/;

export async function loadMigrations(dir: string): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.sql')).sort();
  return parseMigrations(await Promise.all(names.map(async (name) => ({ name, sql: await Bun.file(join(dir, name)).text() }))), dir);
}

/** The migrations compiled into a single binary (`bun run build` embeds sql/), or null from source. */
export async function embeddedMigrations(): Promise<Migration[] | null> {
  const files = Bun.embeddedFiles.filter((file) => (file as Blob & { name: string }).name.endsWith('.sql')) as Array<Blob & { name: string }>;
  if (files.length === 0) return null;
  files.sort((a, b) => (a.name < b.name ? -1 : 1));
  return parseMigrations(await Promise.all(files.map(async (file) => ({ name: file.name, sql: await file.text() }))), 'the binary');
}

function parseMigrations(files: ReadonlyArray<{ name: string; sql: string }>, where: string): Migration[] {
  const migrations: Migration[] = [];
  for (const { name: file, sql } of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new MigrationError(`${file} in ${where}: migration files must be named NNNNN_name.sql`);
    migrations.push({ id: Number(match[1]), name: match[2] ?? file, sql, checksum: sha256Hex(sql) });
  }
  migrations.forEach((migration, index) => {
    if (migration.id !== index + 1) {
      throw new MigrationError(`migrations must be numbered 1, 2, 3... without gaps: expected ${index + 1}, found ${migration.id} (${migration.name})`);
    }
  });
  return migrations;
}

export async function migrate(db: Database, migrations: readonly Migration[]): Promise<string[]> {
  const applied: string[] = [];
  for (const migration of migrations) {
    const didApply = await db.begin(async (tx) => {
      await lockAndPrepare(tx);
      const done = await checkApplied(tx, migrations);
      if (done.has(migration.id)) return false;
      try {
        await tx.unsafe(migration.sql);
      } catch (error) {
        throw new MigrationError(`migration ${formatName(migration)} failed: ${(error as Error).message}`, { cause: error });
      }
      await tx`insert into aqueduct_migrations (id, name, checksum) values (${migration.id}, ${migration.name}, ${migration.checksum})`;
      return true;
    });
    if (didApply) applied.push(formatName(migration));
  }
  return applied;
}

/** The migrations not yet applied (for readiness checks); throws like `migrate` on a mismatch. */
export async function pendingMigrations(db: Database, migrations: readonly Migration[]): Promise<string[]> {
  return db.run(async (sql) => {
    const [table] = await sql`select to_regclass('aqueduct_migrations') is not null as present`;
    if (!table?.present) return migrations.map(formatName);
    const done = await verifyRows(await sql`select id, name, checksum from aqueduct_migrations`, migrations);
    return migrations.filter((migration) => !done.has(migration.id)).map(formatName);
  });
}

async function lockAndPrepare(tx: TransactionSql): Promise<void> {
  await tx`set local statement_timeout = 0`;
  await tx`select pg_advisory_xact_lock(${ADVISORY_LOCK_KEY})`;
  await tx`
    create table if not exists aqueduct_migrations (
      id integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`;
}

async function checkApplied(tx: TransactionSql, migrations: readonly Migration[]): Promise<Set<number>> {
  return verifyRows(await tx`select id, name, checksum from aqueduct_migrations`, migrations);
}

function verifyRows(rows: readonly Record<string, unknown>[], migrations: readonly Migration[]): Set<number> {
  const byId = new Map(migrations.map((migration) => [migration.id, migration]));
  const done = new Set<number>();
  for (const row of rows) {
    const id = Number(row.id);
    const known = byId.get(id);
    if (!known) {
      throw new MigrationError(`the database has migration ${id} (${String(row.name)}) that this build does not know: it was migrated by a newer Aqueduct`);
    }
    if (known.checksum !== row.checksum) {
      throw new MigrationError(`migration ${formatName(known)} was edited after it was applied (checksum differs); add a new migration instead`);
    }
    done.add(id);
  }
  return done;
}

function formatName(migration: Migration): string {
  return `${String(migration.id).padStart(5, '0')}_${migration.name}`;
}

function sha256Hex(text: string): string {
  return new Bun.CryptoHasher('sha256').update(text).digest('hex');
}
