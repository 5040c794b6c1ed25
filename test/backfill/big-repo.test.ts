/**
 * One big repo (60,000 records) through the backfill: with a small `memoryBytes` the CAR spills to
 * disk (readRepoStream says so for the same body and the same limit) and the import is still exact,
 * with nothing left in the spill folder. Then the same repo served with one MST node near the end
 * of the walk left out of the CAR (every block present hashes right and the commit is correctly
 * signed: only the tree is broken, deep down): the repo is refused as bad-repo and not one of its
 * records is in the index, in memory and spilled alike. (A writer that wrote while it walked would
 * have written most of the repo before reaching the hole.)
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { decode } from '@atcute/cbor';
import { fromUint8Array } from '@atcute/car';
import * as CID from '@atcute/cid';
import { readRepoStream } from '../../src/firehose/repo-stream.ts';
import { encodeCar, type Block } from '../../src/sim/block.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { expectedState, readIndexedState } from '../support/ground-truth-check.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { startTestBackfill } from './harness.ts';
import { indexedByDid, repoRows } from './queue.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
}, 60_000);

const RECORDS = 60_000;
const SMALL_MEMORY = 256 * 1024;

/**
 * The repo's CAR without the MST node (not the root) whose first key is the greatest: the walk
 * reaches it last. With how many of the repo's records come before that key.
 */
function carWithHoleNearTheEnd(car: Uint8Array): { car: Uint8Array<ArrayBuffer>; recordsBefore: number } {
  const reader = fromUint8Array(car);
  const blocks: Block[] = [...reader].map((entry) => ({ cid: entry.cid.bytes, bytes: entry.bytes }));
  const root = reader.roots[0]!.$link;
  const commit = decode(blocks.find((block) => cidText(block.cid) === root)!.bytes) as { data: { $link: string } };
  const nodes: { index: number; keys: string[] }[] = [];
  const allKeys: string[] = [];
  blocks.forEach((block, index) => {
    const value = decode(block.bytes) as { e?: unknown };
    if (!Array.isArray(value.e)) return;
    let previous = '';
    const keys: string[] = [];
    for (const entry of value.e as { p: number; k: { buf: Uint8Array } }[]) {
      previous = previous.slice(0, entry.p) + new TextDecoder().decode(entry.k.buf);
      keys.push(previous);
    }
    allKeys.push(...keys);
    if (keys.length > 0 && cidText(block.cid) !== commit.data.$link) nodes.push({ index, keys });
  });
  const last = nodes.reduce((a, b) => (b.keys[0]! > a.keys[0]! ? b : a));
  return {
    car: encodeCar(CID.fromString(root).bytes, blocks.filter((_, i) => i !== last.index)),
    recordsBefore: allKeys.filter((key) => key < last.keys[0]!).length,
  };
}

const cidText = (bytes: Uint8Array): string => CID.toString(CID.decode(bytes));

interface Setup {
  readonly sim: Simulator;
  readonly did: string;
  readonly pds: string;
  /** what the proxy PDS serves as the repo's CAR: the sim's, or one with a hole */
  serve: 'whole' | 'hole';
  readonly hole: ReturnType<typeof carWithHoleNearTheEnd>;
  readonly carBytes: number;
}

let setup: Setup | null = null;
async function start(): Promise<Setup> {
  if (setup !== null) return setup;
  let simUrl = '';
  let state: Setup | null = null;
  // a PDS in front of the simulator: passes everything on, except the big repo's CAR with a hole
  const proxy = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (request) => {
      const url = new URL(request.url);
      if (state?.serve === 'hole' && url.pathname === '/xrpc/com.atproto.sync.getRepo' && url.searchParams.get('did') === state.did) {
        return new Response(state.hole.car, { headers: { 'content-type': 'application/vnd.ipld.car' } });
      }
      const response = await fetch(`${simUrl}${url.pathname}${url.search}`);
      return new Response(response.body, { status: response.status, headers: response.headers });
    },
  });
  cleanups.push(() => proxy.stop(true));
  const pds = `http://127.0.0.1:${proxy.port}`;
  const sim = await startSimulator({ seed: 71, accounts: 3, commits: 0, pregenerate: true, pdsUrl: pds, preload: { records: RECORDS, accounts: 1 } });
  cleanups.push(() => sim.stop());
  simUrl = sim.url;
  const account = [...sim.network.directory.withRepos()][0]!;
  expect(account.repo.recordCount).toBe(RECORDS);
  const car = account.repo.exportCar()!;
  state = { sim, did: account.did, pds, serve: 'whole', hole: carWithHoleNearTheEnd(car), carBytes: car.length };
  setup = state;
  return state;
}

describe('a big repo', () => {
  test(`${RECORDS} records spilled to disk import exactly`, async () => {
    const s = await start();
    s.serve = 'whole';
    expect(s.carBytes).toBeGreaterThan(8 * SMALL_MEMORY);
    // the same body under the same limit spills (the importer reads it exactly so)
    const response = await fetch(`${s.pds}/xrpc/com.atproto.sync.getRepo?did=${s.did}`);
    const probe = await readRepoStream(s.did, response.body!, { spillDir: tmpdir(), memoryBytes: SMALL_MEMORY, maxBytes: 1 << 30 });
    expect(probe.spilled).toBe(true);
    await probe.close();

    const database = await migratedDatabase('bf_big', 6);
    cleanups.push(() => database.close());
    const run = await startTestBackfill({ db: database.db, simUrl: s.sim.url, allowPrivateHosts: LOOPBACK_HOSTS, memoryBytes: SMALL_MEMORY });
    cleanups.push(() => run.stop());
    await run.backfill.request({ dids: [s.did] });
    const figures = await run.settled(120_000);
    const truth = s.sim.groundTruth();
    expect(await readIndexedState(database.db, truth)).toEqual(expectedState(truth));
    const [row] = await repoRows(database.db);
    expect(row).toMatchObject({ did: s.did, state: 'done', rev: s.sim.network.directory.byDid(s.did)!.repo.rev, records: RECORDS, lastError: null });
    expect(figures.recordsImported).toBe(RECORDS);
    expect(figures.bytesFetched).toBe(s.carBytes);
    // the spill file is unlinked as soon as it is opened: nothing is left behind
    expect(readdirSync(run.spillDir)).toEqual([]);
  }, 180_000);

  for (const [name, memoryBytes] of [
    ['in memory', undefined],
    ['spilled', SMALL_MEMORY],
  ] as const) {
    test(`a tree broken deep down is refused whole (${name}): not one record written`, async () => {
      const s = await start();
      // the hole is where a streaming writer would have written most of the repo already
      expect(s.hole.recordsBefore).toBeGreaterThan(RECORDS * 0.9);
      const database = await migratedDatabase('bf_hole', 6);
      cleanups.push(() => database.close());
      const run = await startTestBackfill({ db: database.db, simUrl: s.sim.url, allowPrivateHosts: LOOPBACK_HOSTS, ...(memoryBytes === undefined ? {} : { memoryBytes }) });
      cleanups.push(() => run.stop());
      s.serve = 'hole';
      try {
        await run.backfill.request({ dids: [s.did] });
        await until(async () => (await repoRows(database.db))[0]?.attempts === 1, { timeoutMs: 120_000, intervalMs: 50 });
      } finally {
        s.serve = 'whole';
      }
      const [row] = await repoRows(database.db);
      expect(row).toMatchObject({ did: s.did, state: 'queued', rev: null, records: null, attempts: 1, lastError: expect.stringMatching(/^bad-repo: missing-block: /) });
      expect(row!.waitMs).toBeGreaterThan(0);
      expect(await indexedByDid(database.db)).toEqual(new Map());
      expect(run.backfill.figures.outcomes.get('bad-repo')).toBe(1);
      await run.stop();
    }, 180_000);
  }
});
