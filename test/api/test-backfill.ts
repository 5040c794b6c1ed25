/**
 * A real Backfill for the operator-surface tests: the queue on the test file's own database, a
 * real RepoImporter resolving DIDs at `plcUrl` (a local server, or an unused address for a backfill
 * that is never started) and a real HostPoliteness the tests can make a host fail on.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backfill } from '../../src/backfill/backfill.ts';
import { HostPoliteness } from '../../src/backfill/host-politeness.ts';
import { ImportWriter } from '../../src/backfill/import-writer.ts';
import { RepoImporter } from '../../src/backfill/repo-import.ts';
import type { Database } from '../../src/db/database.ts';
import { DidResolver } from '../../src/identity/did-resolver.ts';
import { silentLogger } from '../../src/log.ts';
import { testStrangers } from '../support/strangers.ts';

export interface TestBackfill {
  readonly backfill: Backfill;
  readonly politeness: HostPoliteness;
  /** Stops the backfill (when started) and removes its spill folder. */
  close(): Promise<void>;
}

/** A did:plc made of `tag` (letters a-z and digits 2-7), padded to its 24 characters. */
export const plcDid = (tag: string): string => `did:plc:${tag.padEnd(24, 'a')}`;

export function testBackfill(db: Database, plcUrl = 'http://127.0.0.1:1'): TestBackfill {
  const strangers = testStrangers();
  const politeness = new HostPoliteness();
  const spillDir = join(tmpdir(), `aqueduct-backfill-spill-${crypto.randomUUID()}`);
  const backfill = new Backfill({
    db,
    importer: new RepoImporter({
      db,
      dids: new DidResolver({ plcUrl, strangers, ttlMs: 60_000 }),
      strangers,
      verifier: null,
      live: null,
      hosts: politeness,
      writer: new ImportWriter(db),
      spillDir,
    }),
    strangers,
    hosts: politeness,
    relayHost: 'relay.invalid',
    log: silentLogger,
    concurrency: 4,
    idleMs: 50,
  });
  return {
    backfill,
    politeness,
    close: async () => {
      await backfill.stop();
      await rm(spillDir, { recursive: true, force: true });
    },
  };
}
