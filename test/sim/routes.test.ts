import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import * as CBOR from '@atcute/cbor';
import * as CID from '@atcute/cid';
import { MemoryBlockStore, NodeStore, NodeWrangler } from '@atcute/mst';
import { fromUint8Array as readRepo, verifyRecord } from '@atcute/repo';
import { Secp256k1PublicKey, parsePublicMultikey } from '@atcute/crypto';
import { readEntry } from '../../src/identity/plc-export.ts';
import { REGISTRATION_LEAD_MS, startDirectory, startSimulator, type Simulator } from '../../src/sim/server.ts';
import { linkOf, readCar } from './helpers.ts';

describe('PLC directory and PDS endpoints', () => {
  let sim: Simulator;
  let did: string;
  let handle: string;

  beforeAll(async () => {
    sim = await startSimulator({ seed: 21, accounts: 30, commits: 400, pregenerate: true });
    const account = [...sim.network.directory.withRepos()].sort((a, b) => b.repo.recordCount - a.repo.recordCount)[0]!;
    did = account.did;
    handle = account.handle;
  });
  afterAll(async () => {
    await sim.stop();
  });

  test('DID document', async () => {
    const res = await fetch(`${sim.url}/${did}`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown> & { verificationMethod: Record<string, unknown>[] };
    expect(doc.id).toBe(did);
    expect(did).toMatch(/^did:plc:[a-z2-7]{24}$/);
    expect(doc.alsoKnownAs).toEqual([`at://${handle}`]);
    expect(handle).toMatch(/^[a-z]+-[0-9a-z]+\.sim\.test$/);
    expect(doc.verificationMethod).toEqual([
      { id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: expect.stringMatching(/^z/) },
    ]);
    expect(parsePublicMultikey(String(doc.verificationMethod[0]!.publicKeyMultibase)).type).toBe('secp256k1');
    expect(doc.service).toEqual([{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: sim.url }]);
  });

  test('unknown DIDs are 404, tombstoned ones 410', async () => {
    expect((await fetch(`${sim.url}/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa`)).status).toBe(404);
    const victim = sim.network.directory.at(29);
    victim.status = 'deleted';
    expect((await fetch(`${sim.url}/${victim.did}`)).status).toBe(410);
    victim.status = 'active';
  });

  test('getRepo is a verifiable repo whose MST root matches the commit', async () => {
    const res = await fetch(`${sim.url}/xrpc/com.atproto.sync.getRepo?did=${did}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.ipld.car');
    const car = new Uint8Array(await res.arrayBuffer());
    const { roots, blocks } = await readCar(car);
    const commit = CBOR.decode(blocks.get(roots[0]!)!) as Record<string, unknown>;
    expect(commit.did).toBe(did);
    const entries = [...readRepo(car)];
    expect(entries.length).toBe(sim.network.directory.byDid(did)!.repo.recordCount);
    // rebuild the MST from the records alone with @atcute/mst: same root as the signed commit
    const wrangler = new NodeWrangler(new NodeStore(new MemoryBlockStore()));
    let root: string | null = null;
    for (const e of entries) root = await wrangler.putRecord(root, `${e.collection}/${e.rkey}`, e.cid);
    expect(root).toBe(linkOf(commit.data)!);
    const doc = (await (await fetch(`${sim.url}/${did}`)).json()) as { verificationMethod: { publicKeyMultibase: string }[] };
    const publicKey = await Secp256k1PublicKey.importRaw(parsePublicMultikey(doc.verificationMethod[0]!.publicKeyMultibase).publicKeyBytes);
    const first = entries[0]!;
    const verified = await verifyRecord({ did: did as `did:plc:${string}`, collection: first.collection, rkey: first.rkey, publicKey, carBytes: car });
    expect(verified.cid).toBe(first.cid.$link);
  });

  test('getRecord returns {uri, cid, value}', async () => {
    const car = new Uint8Array(await (await fetch(`${sim.url}/xrpc/com.atproto.sync.getRepo?did=${did}`)).arrayBuffer());
    const entry = [...readRepo(car)][0]!;
    for (const repo of [did, handle]) {
      const res = await fetch(`${sim.url}/xrpc/com.atproto.repo.getRecord?repo=${repo}&collection=${entry.collection}&rkey=${entry.rkey}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { uri: string; cid: string; value: { $type: string } };
      expect(body.uri).toBe(`at://${did}/${entry.collection}/${entry.rkey}`);
      expect(body.cid).toBe(entry.cid.$link);
      expect(body.value.$type).toBe(entry.collection);
      // the JSON value is the same record (CID links as {$link}, bytes as {$bytes})
      expect(CID.toString(await CID.create(0x71, CBOR.encode(entry.record)))).toBe(body.cid);
    }
  });

  test('listRepos pages through every repo', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await fetch(`${sim.url}/xrpc/com.atproto.sync.listRepos?limit=7${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { cursor?: string; repos: { did: string; head: string; rev: string; active: boolean }[] };
      for (const r of body.repos) {
        expect(r.active).toBe(true);
        expect(r.head).toMatch(/^bafyrei/);
        seen.push(r.did);
      }
      cursor = body.cursor;
      if (cursor === undefined) break;
    }
    expect(seen.length).toBe([...sim.network.directory.withRepos()].length);
    expect(new Set(seen).size).toBe(seen.length);
  });

  test('resolveHandle', async () => {
    const res = await fetch(`${sim.url}/xrpc/com.atproto.identity.resolveHandle?handle=${handle}`);
    expect(await res.json()).toEqual({ did });
  });

  test.each([
    ['/xrpc/com.atproto.sync.getRepo', 400, 'InvalidRequest'],
    ['/xrpc/com.atproto.sync.getRepo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 404, 'RepoNotFound'],
    ['/xrpc/com.atproto.sync.getRepo?did=not-a-did', 404, 'RepoNotFound'],
    ['/xrpc/com.atproto.sync.listRepos?limit=0', 400, 'InvalidRequest'],
    ['/xrpc/com.atproto.sync.listRepos?limit=abc', 400, 'InvalidRequest'],
    ['/xrpc/com.atproto.sync.listRepos?cursor=-4', 400, 'InvalidRequest'],
    ['/xrpc/com.atproto.repo.getRecord?repo=x', 400, 'InvalidRequest'],
    ['/xrpc/com.atproto.repo.getRecord?repo=nobody.sim.test&collection=app.bsky.feed.post&rkey=x', 404, 'RepoNotFound'],
    ['/xrpc/com.atproto.identity.resolveHandle?handle=nobody.example.com', 404, 'HandleNotFound'],
    ['/xrpc/com.atproto.identity.resolveHandle', 400, 'InvalidRequest'],
    ['/xrpc/app.bsky.feed.getTimeline', 501, 'MethodNotImplemented'],
  ])('%s -> %d %s', async (path, status, error) => {
    const res = await fetch(`${sim.url}${path}`);
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).toBe(error);
    expect(typeof body.message).toBe('string');
  });

  test('getRecord for a missing rkey is RecordNotFound', async () => {
    const res = await fetch(`${sim.url}/xrpc/com.atproto.repo.getRecord?repo=${did}&collection=app.bsky.feed.post&rkey=3aaaaaaaaaaaa`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe('RecordNotFound');
  });
});

describe('the PLC directory alone (startDirectory)', () => {
  test('answers the same DID documents and handles as a simulator with the same seed, naming pdsUrl as the PDS', async () => {
    const sim = await startSimulator({ seed: 21, accounts: 30, commits: 400, pregenerate: true });
    const directory = await startDirectory({ seed: 21, accounts: 30, pdsUrl: sim.url });
    try {
      for (const account of [sim.network.directory.at(0), sim.network.directory.at(17), sim.network.directory.at(29)]) {
        const fromSim = await (await fetch(`${sim.url}/${account.did}`)).json();
        const fromDirectory = await (await fetch(`${directory.url}/${account.did}`)).json();
        expect(fromDirectory).toEqual(fromSim);
        const resolved = await fetch(`${directory.url}/xrpc/com.atproto.identity.resolveHandle?handle=${account.handle}`);
        expect(await resolved.json()).toEqual({ did: account.did });
      }
      expect((await fetch(`${directory.url}/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa`)).status).toBe(404);
      const [someone] = [...sim.network.directory.withRepos()];
      const repo = await fetch(`${directory.url}/xrpc/com.atproto.sync.getRepo?did=${someone!.did}`);
      expect(repo.status).toBe(404);
      expect((await fetch(`${directory.url}/xrpc/com.atproto.sync.subscribeRepos`)).status).toBe(501);
    } finally {
      await directory.stop();
      await sim.stop();
    }
  });

  test('rejects a pdsUrl that is not an http URL', async () => {
    await expect(startDirectory({ pdsUrl: 'ftp://x' })).rejects.toThrow(RangeError);
  });
});

const exportPage = async (base: string, after?: string, count?: number) => {
  const query = new URLSearchParams();
  if (after !== undefined) query.set('after', after);
  if (count !== undefined) query.set('count', String(count));
  const response = await fetch(`${base}/export?${query}`);
  expect(response.status).toBe(200);
  const text = await response.text();
  return text === '' ? [] : text.split('\n').map((line) => readEntry(JSON.parse(line))!);
};

describe('the PLC export', () => {
  test('every account, registered before the simulation in index order, paged after a creation time', async () => {
    const directory = await startDirectory({ seed: 21, accounts: 30 });
    try {
      const first = await exportPage(directory.url, undefined, 20);
      expect(first.map((entry) => entry.did)).toEqual(Array.from({ length: 20 }, (_, i) => directory.directory.at(i).did));
      expect(first[3]!.signingKey).toBe(`did:key:${directory.directory.at(3).multikey}`);
      const rest = await exportPage(directory.url, new Date(first[19]!.createdAtMs).toISOString());
      expect(rest.map((entry) => entry.did)).toEqual(Array.from({ length: 10 }, (_, i) => directory.directory.at(20 + i).did));
      expect(first[0]!.createdAtMs).toBeLessThan(Date.now());
    } finally {
      await directory.stop();
    }
  });

  test("paced, an account is listed from just before its first commit is due, through a directory that passes it on", async () => {
    const sim = await startSimulator({ seed: 9, accounts: 200, commits: 400, rate: 20, newAccountShare: 0.5, pregenerate: true });
    const directory = await startDirectory({ seed: 9, accounts: 200, exportFrom: sim.url });
    try {
      const listed = await exportPage(directory.url);
      const newAccounts = sim.network.newAccounts;
      // 20 commits a second, about half of them first commits: only those due within the lead
      expect(newAccounts.length).toBeGreaterThan(150);
      expect(listed.length).toBeLessThan(10);
      expect(listed.map((entry) => entry.did)).toEqual(newAccounts.slice(0, listed.length).map((index) => sim.network.directory.at(index).did));
      for (const entry of listed) expect(entry.createdAtMs).toBeLessThanOrEqual(Date.now());
      await Bun.sleep(500);
      const later = await exportPage(directory.url, new Date(listed.at(-1)?.createdAtMs ?? 0).toISOString());
      expect(later.length).toBeGreaterThan(0);
      expect(later[0]!.did).toBe(sim.network.directory.at(newAccounts[listed.length]!).did);
      // half a second later, at most ~6 more are due (20 commits a second, half of them first ones)
      expect(listed.length + later.length).toBeLessThan(20);
      for (const entry of later) expect(entry.createdAtMs).toBeLessThanOrEqual(Date.now());
      expect(later.every((entry) => entry.createdAtMs >= sim.pacingStartedAt - REGISTRATION_LEAD_MS)).toBe(true);
    } finally {
      await directory.stop();
      await sim.stop();
    }
  });
});

describe('PLC fault knobs', () => {
  test('errorRate 1 makes every DID document request a 500', async () => {
    const sim = await startSimulator({ seed: 1, accounts: 5, commits: 0, plc: { errorRate: 1 } });
    try {
      const did = sim.network.directory.at(0).did;
      expect((await fetch(`${sim.url}/${did}`)).status).toBe(500);
      expect((await fetch(`${sim.url}/xrpc/com.atproto.identity.resolveHandle?handle=${sim.network.directory.at(0).handle}`)).status).toBe(200);
    } finally {
      await sim.stop();
    }
  });
});

describe('options', () => {
  test.each([
    [{ newAccountShare: 1.5 }],
    [{ faults: { malformed: -0.1 } }],
    [{ faults: { badSignature: 0.6, invalidRecord: 0.6 } }],
    [{ accounts: 0 }],
    [{ commits: 1.5 }],
    [{ rate: -1 }],
  ])('rejects %j', async (options) => {
    await expect(startSimulator(options)).rejects.toThrow(RangeError);
  });
});
