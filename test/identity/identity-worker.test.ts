import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';

import type { Database } from '../../src/db/database.ts';
import { enqueueStale } from '../../src/identity/identity-store.ts';
import { IdentityWorker, type IdentityWorkerOptions } from '../../src/identity/identity-worker.ts';
import { silentLogger } from '../../src/log.ts';
import { enqueueIdentity } from '../support/identity-queue.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { testStrangers } from '../support/strangers.ts';

// ---- a PLC directory and a PDS (which also answers resolveHandle), on two ports ----

const KEY = 'zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc';
const CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm';
const BLOB = 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy';

let counter = 0;
/** a fresh did:plc (24 base32 characters) */
const newDid = (): string => {
  const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
  let n = ++counter;
  let tail = '';
  for (; n > 0; n = Math.floor(n / 32)) tail = B32[n % 32] + tail;
  return `did:plc:${tail.padStart(24, 'a')}`;
};

type Failure = '500' | 'hang' | '404' | '410';
interface Account {
  handle: string;
  status?: 'ok' | 'tombstoned';
}
const accounts = new Map<string, Account>();
/** failures the PLC answers a DID with, one per request, before it answers properly */
const failures = new Map<string, Failure[]>();
/** requests to a DID wait for this gate when set */
const gates = new Map<string, Promise<void>>();
/** handle -> DID, as resolveHandle answers */
const handles = new Map<string, string>();
/** did -> profile record */
const profiles = new Map<string, Record<string, unknown>>();
/** did -> getRecord answers to fail with 503 before answering */
const pdsFailures = new Map<string, number>();
let plcDown = false;
const plcLog: Array<{ did: string; at: number }> = [];
const pdsLog: string[] = [];

let plc: ReturnType<typeof Bun.serve>;
let pds: ReturnType<typeof Bun.serve>;
const pdsUrl = () => `http://localhost:${pds.port}`;
const webDid = () => `did:web:localhost%3A${pds.port}`;

const docFor = (did: string, handle: string) => ({
  id: did,
  alsoKnownAs: [`at://${handle}`],
  verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: KEY }],
  service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pdsUrl() }],
});

const profileOf = (name: string) => ({
  $type: 'app.bsky.actor.profile',
  displayName: name,
  description: `I am ${name}`,
  avatar: { $type: 'blob', ref: { $link: BLOB }, mimeType: 'image/jpeg', size: 1000 },
  createdAt: '2024-05-01T10:00:00.000Z',
});

beforeAll(() => {
  plc = Bun.serve({
    port: 0,
    async fetch(req) {
      const did = decodeURIComponent(new URL(req.url).pathname.slice(1));
      plcLog.push({ did, at: performance.now() });
      const gate = gates.get(did);
      if (gate) await gate;
      if (plcDown) return new Response('down', { status: 503 });
      const failure = failures.get(did)?.shift();
      if (failure === '500') return new Response('oops', { status: 500 });
      if (failure === '404') return new Response('not found', { status: 404 });
      if (failure === '410') return new Response('gone', { status: 410 });
      if (failure === 'hang') {
        await Bun.sleep(1000);
        return new Response('late', { status: 500 });
      }
      const account = accounts.get(did);
      if (account === undefined) return new Response('not found', { status: 404 });
      if (account.status === 'tombstoned') return new Response('gone', { status: 410 });
      return Response.json(docFor(did, account.handle));
    },
  });
  pds = Bun.serve({
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      pdsLog.push(`${url.pathname}?${url.searchParams}`);
      if (url.pathname === '/.well-known/did.json') {
        const did = webDid();
        const account = accounts.get(did);
        return account ? Response.json(docFor(did, account.handle)) : new Response('no', { status: 404 });
      }
      if (url.pathname === '/xrpc/com.atproto.identity.resolveHandle') {
        const did = handles.get(url.searchParams.get('handle') ?? '');
        return did ? Response.json({ did }) : Response.json({ error: 'InvalidRequest', message: 'Unable to resolve handle' }, { status: 400 });
      }
      if (url.pathname === '/xrpc/com.atproto.repo.getRecord') {
        const did = url.searchParams.get('repo') ?? '';
        const failing = pdsFailures.get(did) ?? 0;
        if (failing > 0) {
          pdsFailures.set(did, failing - 1);
          return new Response('busy', { status: 503 });
        }
        const record = profiles.get(did);
        if (!record) return Response.json({ error: 'RecordNotFound', message: 'Could not locate record' }, { status: 400 });
        return Response.json({ uri: `at://${did}/app.bsky.actor.profile/self`, cid: CID, value: record });
      }
      return new Response('not found', { status: 404 });
    },
  });
});

let database: MigratedDatabase;
beforeAll(async () => {
  database = await migratedDatabase('identity');
});
afterAll(async () => {
  plc.stop(true);
  pds.stop(true);
  await database.close();
});
beforeEach(async () => {
  await database.db.run((sql) => sql`delete from identity_queue`);
});

// ---- helpers ----

/** An account on the stub network whose handle verifies. */
const account = (handle: string, options: { profile?: boolean; did?: string } = {}): string => {
  const did = options.did ?? newDid();
  accounts.set(did, { handle });
  handles.set(handle, did);
  if (options.profile !== false) profiles.set(did, profileOf(handle));
  return did;
};

interface ActorRow {
  id: number;
  handle: string | null;
  claimedHandle: string | null;
  handleVerifiedAt: Date | null;
  pdsEndpoint: string | null;
  signingKey: string | null;
  didStatus: string | null;
  identityCheckedAt: Date | null;
  identityError: string | null;
}
const actor = async (db: Database, did: string): Promise<ActorRow> => {
  const [row] = await db.run((sql) => sql<ActorRow[]>`
    select id, handle, claimed_handle, handle_verified_at, pds_endpoint, signing_key, did_status, identity_checked_at, identity_error
    from actors where did = ${did}`);
  if (!row) throw new Error(`no actor ${did}`);
  return row;
};
const queued = async (db: Database, did: string) => {
  const [row] = await db.run((sql) => sql<Array<{ attempts: number; reason: string }>>`
    select q.attempts, q.reason from identity_queue q join actors a on a.id = q.actor_id where a.did = ${did}`);
  return row ?? null;
};
const queueLength = async (db: Database): Promise<number> => {
  const [row] = await db.run((sql) => sql<Array<{ n: number }>>`select count(*)::int as n from identity_queue`);
  return row!.n;
};

const waitFor = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> => {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(10);
  }
};
const settled = (db: Database, did: string) => waitFor(`${did} settled`, async () => (await queued(db, did)) === null);

const FAST: Partial<IdentityWorkerOptions> = {
  pollMs: 10,
  statsIntervalMs: 20,
  sweepIntervalMs: 3_600_000,
  backoffBaseMs: 10,
  backoffMaxMs: 50,
  timeoutMs: 300,
  plcRateLimit: 1000,
  hostRateLimit: 1000,
  breaker: { failureThreshold: 1000 },
};

/** Runs a worker around `body`, always stopping it. */
const withWorker = async <T>(options: Partial<IdentityWorkerOptions>, body: (worker: IdentityWorker) => Promise<T>, db = database.db): Promise<T> => {
  const worker = new IdentityWorker({
    db,
    log: silentLogger,
    plcUrl: `http://127.0.0.1:${plc.port}`,
    handleResolverUrl: pdsUrl(),
    strangers: testStrangers(),
    maxConcurrent: 8,
    ...FAST,
    ...options,
  });
  const running = worker.start();
  try {
    return await body(worker);
  } finally {
    await worker.stop();
    await running;
  }
};

// ---- tests ----

describe('IdentityWorker', () => {
  test('a new actor gets its verified handle, PDS, key and profile', async () => {
    const did = account('alice.test');
    const id = await enqueueIdentity(database.db, did);
    const [before] = await database.db.run((sql) => sql<Array<{ count: number }>>`
      select coalesce((select count from record_counts where collection = 'app.bsky.actor.profile'), 0)::int as count`);
    await withWorker({}, async (worker) => {
      await settled(database.db, did);
      expect(worker.stats).toMatchObject({ limit: 8, completed: 1, handlesVerified: 1, profilesFetched: 1 });
    });
    const row = await actor(database.db, did);
    expect(row).toMatchObject({ handle: 'alice.test', claimedHandle: 'alice.test', pdsEndpoint: pdsUrl(), signingKey: `did:key:${KEY}`, didStatus: 'ok', identityError: null });
    expect(row.handleVerifiedAt).toBeInstanceOf(Date);
    expect(row.identityCheckedAt).toBeInstanceOf(Date);

    const [profile] = await database.db.run((sql) => sql<Array<{ cid: string; record: unknown; createdAt: Date }>>`
      select cid, record, created_at from profiles where author_id = ${id} and rkey = 'self'`);
    expect(profile?.cid).toBe(CID);
    expect(profile?.record).toEqual(profileOf('alice.test'));
    expect(profile?.createdAt.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    const [after] = await database.db.run((sql) => sql<Array<{ count: number }>>`
      select count::int from record_counts where collection = 'app.bsky.actor.profile'`);
    expect(after!.count).toBe(before!.count + 1);
  });

  test('a profile that came through the firehose is not fetched again; a missing one is fine', async () => {
    const had = account('had.test');
    const id = await enqueueIdentity(database.db, had);
    await database.db.run((sql) => sql`
      insert into profiles (author_id, rkey, cid, record) values (${id}, 'self', ${CID}, ${JSON.stringify({ displayName: 'firehose' })}::text::jsonb)`);
    const none = account('none.test', { profile: false });
    await enqueueIdentity(database.db, none);
    const before = pdsLog.filter((line) => line.includes('getRecord')).length;
    await withWorker({}, async (worker) => {
      await settled(database.db, had);
      await settled(database.db, none);
      expect(worker.stats.profilesAbsent).toBe(1);
    });
    // only `none` was asked for
    expect(pdsLog.filter((line) => line.includes('getRecord')).length).toBe(before + 1);
    expect((await actor(database.db, none)).handle).toBe('none.test');
  });

  test('a failing PDS: the identity is saved at once, only the profile is retried', async () => {
    const did = account('pdsflaky.test');
    pdsFailures.set(did, 2);
    const id = await enqueueIdentity(database.db, did);
    await withWorker({}, async (worker) => {
      await waitFor('identity saved', async () => (await actor(database.db, did)).handle === 'pdsflaky.test');
      await settled(database.db, did);
      expect(worker.stats.failures['profile-fetch']).toBe(2);
      expect(worker.stats.profilesFetched).toBe(1);
    });
    // the DID document was fetched once: the retries asked the PDS only
    expect(plcLog.filter((entry) => entry.did === did).length).toBe(1);
    const [row] = await database.db.run((sql) => sql<Array<{ n: number }>>`select count(*)::int as n from profiles where author_id = ${id}`);
    expect(row!.n).toBe(1);
  });

  test('did:web is resolved from the host\'s /.well-known/did.json', async () => {
    const did = account('web.test', { did: webDid() });
    await enqueueIdentity(database.db, did);
    await withWorker({}, () => settled(database.db, did));
    expect(await actor(database.db, did)).toMatchObject({ handle: 'web.test', didStatus: 'ok' });
  });

  test('a handle change arrives through an #identity enqueue and bypasses the caches', async () => {
    const did = account('before.test');
    await enqueueIdentity(database.db, did);
    await withWorker({}, async () => {
      await settled(database.db, did);
      expect((await actor(database.db, did)).handle).toBe('before.test');
      accounts.set(did, { handle: 'after.test' });
      handles.delete('before.test');
      handles.set('after.test', did);
      await enqueueIdentity(database.db, did, 'identity');
      await waitFor('new handle', async () => (await actor(database.db, did)).handle === 'after.test');
    });
    expect(await actor(database.db, did)).toMatchObject({ handle: 'after.test', claimedHandle: 'after.test' });
  });

  test('a handle that does not resolve back to the DID is stored as invalid (null)', async () => {
    const did = account('liar.test');
    handles.set('liar.test', newDid()); // the handle points at someone else
    const unclaimed = newDid();
    accounts.set(unclaimed, { handle: 'nowhere.test' }); // resolves nowhere
    await enqueueIdentity(database.db, did);
    await enqueueIdentity(database.db, unclaimed);
    await withWorker({}, async (worker) => {
      await settled(database.db, did);
      await settled(database.db, unclaimed);
      expect(worker.stats.handlesInvalid).toBe(2);
    });
    expect(await actor(database.db, did)).toMatchObject({ handle: null, claimedHandle: 'liar.test', didStatus: 'ok', handleVerifiedAt: null });
    expect(await actor(database.db, unclaimed)).toMatchObject({ handle: null, claimedHandle: 'nowhere.test', didStatus: 'ok' });
  });

  test('a contested handle belongs to the DID it resolves to', async () => {
    const first = account('shared.test');
    await enqueueIdentity(database.db, first);
    await withWorker({}, async (worker) => {
      await settled(database.db, first);
      expect((await actor(database.db, first)).handle).toBe('shared.test');

      // the handle moves to a second DID, whose document claims it too; the first still claims it
      const second = account('shared.test');
      await enqueueIdentity(database.db, second);
      await settled(database.db, second);
      expect((await actor(database.db, second)).handle).toBe('shared.test');
      expect(await actor(database.db, first)).toMatchObject({ handle: null, claimedHandle: 'shared.test' });
      expect(worker.stats.handlesTaken).toBe(1);

      // re-checking the first does not give it back
      await enqueueIdentity(database.db, first, 'identity');
      await settled(database.db, first);
      expect((await actor(database.db, first)).handle).toBeNull();
      expect((await actor(database.db, second)).handle).toBe('shared.test');
    });
    const [row] = await database.db.run((sql) => sql<Array<{ n: number }>>`select count(*)::int as n from actors where handle = 'shared.test'`);
    expect(row!.n).toBe(1);
  });

  test('a tombstoned DID is marked once, not retried, and not refreshed', async () => {
    const did = account('dead.test');
    const id = await enqueueIdentity(database.db, did);
    await withWorker({}, async () => {
      await settled(database.db, did);
      expect((await actor(database.db, did)).handle).toBe('dead.test');
      accounts.set(did, { handle: 'dead.test', status: 'tombstoned' });
      await enqueueIdentity(database.db, did, 'identity');
      await waitFor('tombstone', async () => (await actor(database.db, did)).didStatus === 'tombstoned');
      await settled(database.db, did);
    });
    expect(await actor(database.db, did)).toMatchObject({ didStatus: 'tombstoned', handle: null, identityError: 'did-tombstoned' });
    expect(plcLog.filter((entry) => entry.did === did).length).toBe(2);
    // the refresh sweep leaves it alone even when it is old
    await database.db.run((sql) => sql`update actors set identity_checked_at = now() - interval '100 days' where id = ${id}`);
    await database.db.run((sql) => enqueueStale(sql, 3_600_000, 100_000));
    expect(await queued(database.db, did)).toBeNull();
  });

  test('PLC 500s and a timeout are retried with backoff until the document comes', async () => {
    const did = account('flaky.test');
    failures.set(did, ['500', '500', 'hang', '500']);
    await enqueueIdentity(database.db, did);
    await withWorker({}, async (worker) => {
      await waitFor('resolved', async () => (await actor(database.db, did)).handle === 'flaky.test');
      await settled(database.db, did);
      expect(worker.stats.retried).toBe(4);
      expect(worker.stats.failures['did-http-status']).toBe(3);
      expect(worker.stats.failures['did-timeout']).toBe(1);
    });
    expect(plcLog.filter((entry) => entry.did === did).length).toBe(5);
    expect((await actor(database.db, did)).identityError).toBeNull();
  });

  test('a DID that keeps failing is parked after maxAttempts, keeping nothing invented', async () => {
    const did = newDid(); // unknown to PLC: 404 every time
    await enqueueIdentity(database.db, did);
    await withWorker({ maxAttempts: 3 }, async (worker) => {
      await settled(database.db, did);
      expect(worker.stats.parked).toBe(1);
    });
    expect(await actor(database.db, did)).toMatchObject({ didStatus: 'not-found', handle: null, identityError: 'did-not-found' });
    expect(plcLog.filter((entry) => entry.did === did).length).toBe(3);
  });

  test('PLC down: the circuit opens, the queue waits in PostgreSQL without burning attempts, then drains', async () => {
    const dids = Array.from({ length: 12 }, (_, i) => account(`outage${i}.test`));
    plcDown = true;
    const before = plcLog.length;
    try {
      for (const did of dids) await enqueueIdentity(database.db, did);
      await withWorker({ maxAttempts: 4, breaker: { failureThreshold: 3, cooldownMs: 100, maxCooldownMs: 200 } }, async (worker) => {
        await waitFor('circuit open', () => worker.stats.openCircuits === 1);
        await Bun.sleep(1000); // an outage many times longer than the backoff
        const during = plcLog.length - before;
        // without the breaker, 12 jobs retried every <= 50 ms would make hundreds of requests
        expect(during).toBeLessThan(12 + 15);
        expect(worker.stats.parked).toBe(0);
        expect(await queueLength(database.db)).toBe(12);
        plcDown = false;
        await waitFor('drained', async () => (await queueLength(database.db)) === 0);
        expect(worker.stats.parked).toBe(0);
      });
    } finally {
      plcDown = false;
    }
    for (const [i, did] of dids.entries()) expect((await actor(database.db, did)).handle).toBe(`outage${i}.test`);
  });

  test('the PLC rate limit holds: requests per second at the stub stay under the limit', async () => {
    const RATE = 10;
    const dids = Array.from({ length: 3 * RATE }, (_, i) => account(`rate${i}.test`, { profile: false }));
    for (const did of dids) await enqueueIdentity(database.db, did);
    const wanted = new Set(dids);
    const from = plcLog.length;
    await withWorker({ plcRateLimit: RATE, maxConcurrent: 50 }, async () => {
      await waitFor('all resolved', async () => (await queueLength(database.db)) === 0, 30_000);
    });
    const times = plcLog.slice(from).filter((entry) => wanted.has(entry.did)).map((entry) => entry.at);
    expect(times.length).toBe(dids.length);
    // a burst of RATE, then RATE per second: any one-second window holds at most 2 * RATE
    // (a small margin for timer granularity), and the whole run cannot be faster than the bucket
    for (const start of times) expect(times.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(2 * RATE + 1);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(((dids.length - RATE) / RATE) * 1000 * 0.9);
  });

  test('stale identities are refreshed by the sweep', async () => {
    const did = account('stale.test');
    const id = await enqueueIdentity(database.db, did);
    await withWorker({}, () => settled(database.db, did));
    const old = new Date(Date.now() - 48 * 3_600_000);
    await database.db.run((sql) => sql`update actors set identity_checked_at = ${old} where id = ${id}`);
    const requests = plcLog.filter((entry) => entry.did === did).length;
    await withWorker({ sweepIntervalMs: 20, refreshHours: 24 }, async (worker) => {
      await waitFor('refreshed', async () => ((await actor(database.db, did)).identityCheckedAt?.getTime() ?? 0) > old.getTime());
      expect(worker.stats.staleEnqueued).toBeGreaterThanOrEqual(1);
    });
    expect(plcLog.filter((entry) => entry.did === did).length).toBe(requests + 1);
  });

  test('an #identity enqueue while the job is in flight is not lost', async () => {
    const did = account('race1.test');
    let open!: () => void;
    gates.set(did, new Promise<void>((resolve) => (open = resolve)));
    await enqueueIdentity(database.db, did);
    await withWorker({}, async () => {
      await waitFor('request in flight', () => plcLog.some((entry) => entry.did === did));
      // the document changes, and the event arrives, while the old answer is on its way
      await enqueueIdentity(database.db, did, 'identity');
      accounts.set(did, { handle: 'race2.test' });
      handles.set('race2.test', did);
      gates.delete(did);
      open();
      await waitFor('second handle', async () => (await actor(database.db, did)).handle === 'race2.test');
      await settled(database.db, did);
    });
  });

  test('stats report active against the limit while jobs wait on the network', async () => {
    const dids = Array.from({ length: 5 }, (_, i) => account(`busy${i}.test`));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    for (const did of dids) gates.set(did, gate);
    for (const did of dids) await enqueueIdentity(database.db, did);
    await withWorker({ maxConcurrent: 3 }, async (worker) => {
      await waitFor('three in flight', () => worker.stats.active === 3);
      await Bun.sleep(50);
      expect(worker.stats).toMatchObject({ active: 3, limit: 3, utilization: 100 });
      await waitFor('pending counted', () => worker.stats.pending === 5);
      for (const did of dids) gates.delete(did);
      open();
      await waitFor('drained', async () => (await queueLength(database.db)) === 0);
    });
  });
});

describe('IdentityWorker with a pool of one connection', () => {
  let small: MigratedDatabase;
  beforeAll(async () => {
    small = await migratedDatabase('identity_pool1', 1);
  });
  afterAll(() => small.close());

  test('no connection is held while a job waits on the network', async () => {
    const did = account('patient.test');
    let open!: () => void;
    gates.set(did, new Promise<void>((resolve) => (open = resolve)));
    await enqueueIdentity(small.db, did);
    await withWorker(
      {},
      async (worker) => {
        await waitFor('request in flight', () => plcLog.some((entry) => entry.did === did));
        expect(worker.stats.active).toBe(1);
        // the only connection is free: another query runs while the PLC answer is pending
        const answer = await Promise.race([
          small.db.run((sql) => sql<Array<{ ok: number }>>`select 1 as ok`),
          Bun.sleep(5000).then(() => 'blocked' as const),
        ]);
        expect(answer).not.toBe('blocked');
        expect(worker.stats.active).toBe(1); // and the job is still waiting on PLC
        gates.delete(did);
        open();
        await settled(small.db, did);
      },
      small.db,
    );
    expect((await actor(small.db, did)).handle).toBe('patient.test');
  });
});
