/**
 * A migrated database for a test file: its own database on the test server, all migrations
 * applied, and a pool to use.
 */
import { join } from 'node:path';
import { Database } from '../../src/db/database.ts';
import { loadMigrations, migrate } from '../../src/db/migrator.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface MigratedDatabase {
  readonly db: Database;
  readonly url: string;
  close(): Promise<void>;
}

export async function migratedDatabase(prefix: string, poolSize = 4): Promise<MigratedDatabase> {
  const test: TestDatabase = await createTestDatabase(prefix);
  const db = new Database({ url: test.url, poolSize });
  await migrate(db, await loadMigrations(join(import.meta.dir, '../../sql')));
  return {
    db,
    url: test.url,
    close: async () => {
      await db.close();
      await test.drop();
    },
  };
}
