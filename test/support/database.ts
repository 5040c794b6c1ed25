/**
 * Per-file databases on the test server started by `preload.ts`.
 */
import { connectPostgres } from '../../src/db/database.ts';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

export function testServerUrl(): string {
  const url = process.env.AQUEDUCT_TEST_SERVER_URL;
  if (!url) throw new Error('no test PostgreSQL: run tests with `bun test` (bunfig.toml preloads test/support/preload.ts)');
  return url;
}

export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const server = new URL(testServerUrl());
  const name = `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = connectPostgres(server.href, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = new URL(server.href);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    drop: async () => {
      const sql = connectPostgres(server.href, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}
