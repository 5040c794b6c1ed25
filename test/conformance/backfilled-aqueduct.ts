/**
 * An Aqueduct that missed the PDS's history, made whole by its backfill: started in-process
 * (src/aqueduct.ts) on a fresh database, its firehose following live only, RELAY_URL at the PDS;
 * `settled` waits until the backfill queue (sql/00010) has nothing queued and no host listing,
 * and reads what it recorded, repo by repo.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAqueduct, type Aqueduct } from '../../src/aqueduct.ts';
import type { BackfillFigures } from '../../src/backfill/backfill.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';

export interface BackfillRow {
  readonly did: string;
  readonly state: string;
  readonly lastError: string | null;
  readonly records: number | null;
}

export interface HostRow {
  readonly host: string;
  readonly kind: string;
  readonly state: string;
  readonly repos: number;
  readonly lastError: string | null;
}

export interface BackfilledAqueduct {
  readonly aqueduct: Aqueduct;
  /** warnings and errors it logged */
  log(): string;
  /** Resolves once nothing is queued or listing (and no import runs), with the queue's rows. */
  settled(timeoutMs?: number): Promise<{ repos: BackfillRow[]; hosts: HostRow[]; figures: BackfillFigures }>;
  stop(): Promise<void>;
}

export async function startBackfilledAqueduct(env: Record<string, string>): Promise<BackfilledAqueduct> {
  const dataDir = mkdtempSync(join(tmpdir(), 'aqueduct-conformance-backfill-'));
  let text = '';
  const { config } = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ...env });
  const aqueduct = await startAqueduct(config, createLogger('warn', (line) => void (text += line)));
  const read = () =>
    aqueduct.db.run(async (sql) => ({
      repos: await sql<BackfillRow[]>`select did, state, last_error, records from backfill_repos order by did`,
      hosts: await sql<HostRow[]>`select host, kind, state, repos, last_error from backfill_hosts order by host`,
    }));
  return {
    aqueduct,
    log: () => text,
    async settled(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { repos, hosts } = await read();
        const figures = aqueduct.backfill.figures;
        const busy = repos.some((row) => row.state === 'queued') || hosts.some((row) => row.state === 'listing') || figures.active > 0 || figures.hostsListing > 0;
        if (!busy) return { repos, hosts, figures };
        if (Date.now() > deadline) {
          throw new Error(`the backfill did not settle in ${timeoutMs} ms: ${JSON.stringify({ repos, hosts })}\n${text}`);
        }
        await Bun.sleep(100);
      }
    },
    async stop() {
      await aqueduct.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
