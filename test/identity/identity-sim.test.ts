// The identity worker against the simulator's PLC directory and PDS (one port serves both, and
// com.atproto.identity.resolveHandle stands in for DNS, as HANDLE_RESOLVER_URL would).
import { afterAll, beforeAll, expect, test } from 'bun:test';

import { IdentityWorker } from '../../src/identity/identity-worker.ts';
import { silentLogger } from '../../src/log.ts';
import { cidString } from '../../src/sim/block.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { enqueueIdentity } from '../support/identity-queue.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { testStrangers } from '../support/strangers.ts';

let sim: Simulator;
let database: MigratedDatabase;
beforeAll(async () => {
  sim = await startSimulator({ seed: 'identity', accounts: 40, commits: 400, pregenerate: true });
  database = await migratedDatabase('identity_sim');
});
afterAll(async () => {
  await sim.stop();
  await database.close();
});

const queueEmpty = async (): Promise<boolean> => {
  const [row] = await database.db.run((sql) => sql<Array<{ n: number }>>`select count(*)::int as n from identity_queue`);
  return row!.n === 0;
};

const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
  const deadline = performance.now() + 15_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(10);
  }
};

test('simulated accounts get their handle and profile; a rename arrives through #identity', async () => {
  const accounts = [...sim.network.directory.withRepos()];
  const withProfile = accounts.filter((a) => a.repo.getRecord('app.bsky.actor.profile', 'self') !== undefined);
  expect(withProfile.length).toBeGreaterThan(2);
  const chosen = withProfile.slice(0, 3);
  const ids = new Map<string, number>();
  for (const account of chosen) ids.set(account.did, await enqueueIdentity(database.db, account.did, 'new'));

  const worker = new IdentityWorker({
    db: database.db,
    log: silentLogger,
    plcUrl: sim.url,
    handleResolverUrl: sim.url,
    strangers: testStrangers(),
    maxConcurrent: 4,
    pollMs: 10,
    statsIntervalMs: 20,
  });
  const running = worker.start();
  try {
    await waitFor('queue drained', queueEmpty);
    for (const account of chosen) {
      const [row] = await database.db.run((sql) => sql<Array<{ handle: string | null; signingKey: string; pdsEndpoint: string }>>`
        select handle, signing_key, pds_endpoint from actors where did = ${account.did}`);
      expect(row).toEqual({ handle: account.handle, signingKey: `did:key:${account.multikey}`, pdsEndpoint: sim.url.replace(/\/+$/, '') });
      const block = account.repo.getRecord('app.bsky.actor.profile', 'self')!;
      const [profile] = await database.db.run((sql) => sql<Array<{ cid: string; displayName: unknown }>>`
        select cid, record->'displayName' as display_name from profiles where author_id = ${ids.get(account.did)!} and rkey = 'self'`);
      expect(profile?.cid).toBe(cidString(block.cid));
    }
    expect(worker.stats).toMatchObject({ handlesVerified: 3, profilesFetched: 3 });

    const renamed = chosen[0]!;
    const newHandle = sim.network.directory.rename(renamed);
    await enqueueIdentity(database.db, renamed.did, 'identity');
    await waitFor('new handle', async () => {
      const [row] = await database.db.run((sql) => sql<Array<{ handle: string | null }>>`select handle from actors where did = ${renamed.did}`);
      return row?.handle === newHandle;
    });
  } finally {
    await worker.stop();
    await running;
  }
});
