/**
 * The conformance suite: Aqueduct against the atproto reference software (`@atproto/dev-env`:
 * PLC directory, PDS, reference AppView; test/conformance/reference/). Run with
 * `bun run test:conformance` (the first run installs them into .cache/conformance, ~2 minutes).
 *
 * The workload (workload.ts) is driven through the PDS's own XRPC API in three phases: a history
 * replayed from cursor 0, then live traffic, then, after Aqueduct was killed with SIGKILL and
 * started again, the rest. Then:
 *   - Aqueduct holds exactly the records, accounts, handles and counters the PDS holds;
 *   - every key the PLC directory serves reads as the key its /data endpoint names;
 *   - a report: records, accounts and counters compared, and every mismatch.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from '../../src/db/database.ts';
import { parseDidDocument } from '../../src/identity/did-document.ts';
import { createTestDatabase } from '../support/database.ts';
import { startAqueductProcess, type RunningAqueduct } from '../support/process.ts';
import { aqueductState, fetchRepo, pdsState, type IndexState, type PdsAccount, type RepoRecords } from './index-state.ts';
import { startReferenceNetwork, type ReferenceNetwork } from './reference/reference-network.ts';
import { Workload } from './workload.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('cleanup failed', error));
}, 120_000);

let ref: ReferenceNetwork;
let workload: Workload;
let db: Database;
let aqueductEnv: Record<string, string>;

const report: string[] = [];

beforeAll(async () => {
  ref = await startReferenceNetwork({ timeoutMs: 180_000 });
  cleanups.push(() => ref.stop());
  const database = await createTestDatabase('conformance');
  cleanups.push(() => database.drop());
  db = new Database({ url: database.url, poolSize: 2 });
  cleanups.push(() => db.close());
  aqueductEnv = {
    DATABASE_URL: database.url,
    FIREHOSE_ENABLED: 'true',
    FIREHOSE_START: '0',
    RELAY_URL: ref.pds.replace(/^http/, 'ws'),
    PLC_URL: ref.plc,
    HANDLE_RESOLVER_URL: ref.pds,
    LOG_LEVEL: 'info',
    APPVIEW_DID: 'did:web:aqueduct.test',
  };
  workload = new Workload(ref);
}, 600_000);

async function startAqueduct(): Promise<RunningAqueduct> {
  const aqueduct = await startAqueductProcess(aqueductEnv);
  cleanups.push(async () => {
    if (aqueduct.process.exitCode === null) await aqueduct.stop('SIGTERM');
  });
  return aqueduct;
}

/** The PDS's accounts and the records of each repo that is not deleted (snapshots for the deactivated). */
async function pdsTruth(): Promise<{ state: IndexState; dids: string[] }> {
  const accounts: PdsAccount[] = [];
  const repos = new Map<string, RepoRecords>();
  for (const account of workload.accounts.values()) {
    const status = workload.deleted.has(account.did) ? 'deleted' : workload.deactivated.has(account.did) ? 'deactivated' : null;
    accounts.push({ did: account.did, handle: account.handle, status });
    if (status === 'deleted') continue;
    repos.set(account.did, status === 'deactivated' ? workload.snapshots.get(account.did)! : await fetchRepo(ref.pds, account.did));
  }
  return { state: pdsState(accounts, repos), dids: accounts.map((account) => account.did) };
}

/** Polls until Aqueduct's index equals `expected` (identity work and batches land in their time), then returns it. */
async function convergedState(expected: IndexState, dids: string[], timeoutMs = 60_000): Promise<IndexState> {
  const deadline = Date.now() + timeoutMs;
  let state = await aqueductState(db, dids);
  while (!Bun.deepEquals(state, expected) && Date.now() < deadline) {
    await Bun.sleep(250);
    state = await aqueductState(db, dids);
  }
  return state;
}

describe('Aqueduct following the reference PDS', () => {
  test('replayed from cursor 0, live, and across a kill -9: records, accounts, handles and counters equal the PDS', async () => {
    await workload.history();
    const first = await startAqueduct();
    let truth = await pdsTruth();
    expect(await convergedState(truth.state, truth.dids)).toEqual(truth.state);
    report.push(`after the replay from cursor 0: ${Object.keys(truth.state.records).length} records equal`);

    // live traffic, then SIGKILL right after it, whatever is in flight
    await workload.live();
    first.process.kill('SIGKILL');
    await first.process.exited;

    const second = await startAqueduct();
    await workload.after();
    truth = await pdsTruth();
    expect(await convergedState(truth.state, truth.dids)).toEqual(truth.state);
    // every commit was verified against its account's key: none rejected, none let through unchecked
    const processor = (await (await fetch(`${second.url}/api/metrics/event-processor`)).json()) as {
      rejectedByReason: Record<string, number>;
      unverifiedCommits: number;
      unusableSigningKeys: Record<string, number>;
      eventsByType: Record<string, number>;
    };
    expect([processor.rejectedByReason, processor.unverifiedCommits, processor.unusableSigningKeys]).toEqual([{}, 0, {}]);
    report.push(`events of the second run by type: ${JSON.stringify(processor.eventsByType)}; 0 rejected, 0 unverified`);
    report.push(
      `after live traffic, a kill -9 and a restart: ${Object.keys(truth.state.records).length} records, ` +
        `${Object.keys(truth.state.actors).length} accounts, ${Object.keys(truth.state.posts).length} posts' counters equal`,
    );
  }, 300_000);

  test("every key the PLC directory serves reads as the key its /data names", async () => {
    for (const account of workload.accounts.values()) {
      if (workload.deleted.has(account.did)) continue;
      const document = (await (await fetch(`${ref.plc}/${account.did}`)).json()) as unknown;
      const data = (await (await fetch(`${ref.plc}/${account.did}/data`)).json()) as { verificationMethods: { atproto: string } };
      const parsed = parseDidDocument(document);
      expect([account.name, parsed.signingKey, parsed.signingKeyProblem]).toEqual([account.name, data.verificationMethods.atproto, null]);
    }
    report.push(`${workload.accounts.size - workload.deleted.size} DID documents' keys read as their did:key`);
  });
});

afterAll(() => {
  console.log(`\nconformance report\n${report.map((line) => `  ${line}`).join('\n')}\n`);
});
