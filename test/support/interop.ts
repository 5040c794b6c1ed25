/**
 * The atproto interop test vectors (bluesky-social/atproto-interop-tests), as laid beside the
 * checkout in `../shared/fixtures/atproto-interop-tests` (or INTEROP_FIXTURES_DIR). They are not
 * vendored here: a run without them fails the tests that read them, naming the folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const INTEROP_DIR = process.env.INTEROP_FIXTURES_DIR ?? join(import.meta.dir, '../../../shared/fixtures/atproto-interop-tests');

export function interopFile(relative: string): string {
  const path = join(INTEROP_DIR, relative);
  if (!existsSync(path)) throw new Error(`missing interop fixture ${path}: lay the atproto interop tests there or set INTEROP_FIXTURES_DIR`);
  return readFileSync(path, 'utf8');
}

export function interopJson<T>(relative: string): T {
  return JSON.parse(interopFile(relative)) as T;
}
