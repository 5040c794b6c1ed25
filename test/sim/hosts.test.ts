import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readRepoSnapshot } from '../../src/firehose/repo-snapshot.ts';
import { parseDidKey, verifyCommitSignature } from '../../src/firehose/signature.ts';
import { HOST_FAULTS, TRICKLE_BYTES, type HostFault } from '../../src/sim/hosts.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';

// hosts 0 and 1 are clean (the big ones), 2.. each hostile in one way
const FAULTS: Record<number, HostFault> = Object.fromEntries(HOST_FAULTS.map((fault, i) => [i + 2, fault]));
const HOSTS = HOST_FAULTS.length + 2;

interface DidDoc {
  verificationMethod: { id: string; publicKeyMultibase: string }[];
  service: { id: string; serviceEndpoint: string }[];
}

const json = async <T>(url: string): Promise<T> => {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
};

/** getRepo, retrying a 429 after its Retry-After (the rate-limited host's answer). */
const getRepo = async (base: string, did: string): Promise<Response> => {
  for (;;) {
    const res = await fetch(`${base}/xrpc/com.atproto.sync.getRepo?did=${did}`, { redirect: 'manual' });
    if (res.status !== 429) return res;
    await res.arrayBuffer();
  }
};

describe('many PDS hosts behind one relay', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({
      seed: 'hosts',
      accounts: 150,
      hosts: HOSTS,
      hostFaults: FAULTS,
      commits: 400,
      pregenerate: true,
      preload: { records: 6000 },
      rateLimitEvery: 1_000_000,
    });
  });
  afterAll(async () => {
    await sim.stop();
  });

  test('every host has an address of its own; the spread is skewed', () => {
    expect(sim.hosts.length).toBe(HOSTS);
    expect(new Set(sim.hostAddresses).size).toBe(HOSTS);
    expect(sim.hostAddresses[0]).toBe('127.0.0.2');
    for (const host of sim.hosts) {
      expect(host.url).toBe(`http://${host.hostname}`);
      expect(host.accounts.length).toBeGreaterThan(0);
    }
    const sizes = sim.hosts.map((h) => h.accounts.length);
    expect(sizes[0]).toBe(Math.max(...sizes));
    expect(sizes[0]! + sizes[1]!).toBeGreaterThan(150 * 0.45);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(150);
  });

  test('listHosts pages through every host with its account count and seq', async () => {
    const pages: { cursor?: string; hosts: { hostname: string; seq: number; accountCount: number; status: string }[] }[] = [];
    let cursor: string | undefined;
    do {
      const page = await json<(typeof pages)[number]>(`${sim.url}/xrpc/com.atproto.sync.listHosts?limit=4${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      pages.push(page);
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(pages.map((p) => p.hosts.length)).toEqual([4, 4, 2]);
    const listed = pages.flatMap((p) => p.hosts);
    expect(listed.map((h) => h.hostname)).toEqual(sim.hosts.map((h) => h.hostname));
    for (const [h, entry] of listed.entries()) {
      expect(entry.status).toBe('active');
      const withRepos = [...sim.hosts[h]!.accounts].filter((i) => sim.network.directory.peek(i)?.hasRepo === true).length;
      expect(entry.accountCount).toBe(withRepos);
      expect(entry.seq).toBe(sim.network.hostSeq[h]!);
      expect(entry.seq).toBeLessThanOrEqual(sim.lastSeq);
    }
    expect(listed[0]!.seq).toBeGreaterThan(0);
    const all = await json<{ hosts: unknown[]; cursor?: string }>(`${sim.url}/xrpc/com.atproto.sync.listHosts`);
    expect(all.hosts.length).toBe(HOSTS);
    expect(all.cursor).toBeUndefined();
    expect((await fetch(`${sim.url}/xrpc/com.atproto.sync.listHosts?limit=0`)).status).toBe(400);
  });

  test("every DID document names the account's host, and that host serves a verifiable repo", async () => {
    for (const host of sim.hosts) {
      if (host.fault !== null && host.fault !== 'rate-limited') continue;
      for (const index of host.accounts) {
        const account = sim.network.directory.at(index);
        const doc = await json<DidDoc>(`${sim.url}/${account.did}`);
        expect(doc.service).toEqual([{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: host.url } as never]);
        expect(sim.hostOf(account.did)).toBe(host.index);
        if (!account.hasRepo) continue;
        const res = await getRepo(host.url, account.did);
        expect(res.status).toBe(200);
        const snapshot = readRepoSnapshot(account.did, new Uint8Array(await res.arrayBuffer()));
        expect(snapshot.leaves.length).toBe(account.repo.recordCount);
        expect(snapshot.commit.rev).toBe(account.repo.rev!);
        const key = parseDidKey(doc.verificationMethod[0]!.publicKeyMultibase);
        expect(verifyCommitSignature(snapshot.commit.unsignedBytes, snapshot.commit.sig, key)).toBe(true);
      }
    }
  });

  test('other hosts answer RepoNotFound; the relay lists every repo but serves none', async () => {
    const account = sim.network.directory.at(sim.hosts[1]!.accounts[0]!);
    for (const other of [sim.hosts[0]!, sim.hosts[3]!]) {
      const res = await fetch(`${other.url}/xrpc/com.atproto.sync.getRepo?did=${account.did}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: string }).error).toBe('RepoNotFound');
      const rec = await fetch(`${other.url}/xrpc/com.atproto.repo.getRecord?repo=${account.did}&collection=app.bsky.actor.profile&rkey=self`);
      expect(((await rec.json()) as { error: string }).error).toBe('RepoNotFound');
    }
    // a host is a PDS, not a PLC directory
    expect((await fetch(`${sim.hosts[0]!.url}/${account.did}`)).status).toBe(404);
    const relay = await fetch(`${sim.url}/xrpc/com.atproto.sync.getRepo?did=${account.did}`);
    expect(relay.status).toBe(501);
    expect(((await relay.json()) as { error: string }).error).toBe('MethodNotImplemented');
    let cursor: string | undefined;
    const dids: string[] = [];
    do {
      const page = await json<{ cursor?: string; repos: { did: string }[] }>(`${sim.url}/xrpc/com.atproto.sync.listRepos?limit=50${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      dids.push(...page.repos.map((r) => r.did));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(dids.length).toBe([...sim.network.directory.withRepos()].length);
  });

  test("each host's listRepos pages through exactly its own accounts, with head and rev", async () => {
    for (const host of sim.hosts) {
      const repos: { did: string; head: string; rev: string; active: boolean }[] = [];
      let cursor: string | undefined;
      do {
        const page = await json<{ cursor?: string; repos: typeof repos }>(`${host.url}/xrpc/com.atproto.sync.listRepos?limit=7${cursor === undefined ? '' : `&cursor=${cursor}`}`);
        expect(page.repos.length).toBeLessThanOrEqual(7);
        repos.push(...page.repos);
        cursor = page.cursor;
      } while (cursor !== undefined);
      const expected = [...host.accounts].map((i) => sim.network.directory.at(i)).filter((a) => a.hasRepo);
      expect(repos.map((r) => r.did)).toEqual(expected.map((a) => a.did));
      for (const [k, repo] of repos.entries()) {
        expect(repo.rev).toBe(expected[k]!.repo.rev!);
        expect(repo.active).toBe(true);
      }
    }
  });

  test('unimportableDids: the accounts of the hostile hosts but the rate-limited one', () => {
    const expected = sim.hosts
      .filter((h) => h.fault !== null && h.fault !== 'rate-limited')
      .flatMap((h) => [...h.accounts].map((i) => sim.network.directory.at(i).did))
      .sort();
    expect(sim.unimportableDids()).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  });
});

describe('hostile hosts', () => {
  let sim: Simulator;
  const onHost = (fault: HostFault): { url: string; did: string } => {
    const host = sim.hosts.find((h) => h.fault === fault)!;
    const index = [...host.accounts].find((i) => sim.network.directory.at(i).hasRepo)!;
    return { url: host.url, did: sim.network.directory.at(index).did };
  };
  const fetchRepo = (fault: HostFault): Promise<Response> => {
    const { url, did } = onHost(fault);
    return fetch(`${url}/xrpc/com.atproto.sync.getRepo?did=${did}`, { redirect: 'manual' });
  };

  beforeAll(async () => {
    sim = await startSimulator({ seed: 'hostile', accounts: 120, hosts: HOSTS, hostFaults: FAULTS, commits: 0, preload: { records: 2000, accounts: 120 } });
  });
  afterAll(async () => {
    await sim.stop();
  });

  test('garbage: random bytes, not a CAR', async () => {
    const res = await fetchRepo('garbage');
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBeGreaterThan(0);
    expect(() => readRepoSnapshot(onHost('garbage').did, bytes)).toThrow();
    // the same bytes every time
    expect(new Uint8Array(await (await fetchRepo('garbage')).arrayBuffer())).toEqual(bytes);
  });

  test('wrong-root: the header root is not the commit', async () => {
    const res = await fetchRepo('wrong-root');
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(() => readRepoSnapshot(onHost('wrong-root').did, bytes)).toThrow();
  });

  test('bad-signature: a whole repo whose commit the DID key did not sign', async () => {
    const { did } = onHost('bad-signature');
    const res = await fetchRepo('bad-signature');
    expect(res.status).toBe(200);
    const snapshot = readRepoSnapshot(did, new Uint8Array(await res.arrayBuffer()));
    expect(snapshot.leaves.length).toBe(sim.network.directory.byDid(did)!.repo.recordCount);
    const doc = await json<DidDoc>(`${sim.url}/${did}`);
    const key = parseDidKey(doc.verificationMethod[0]!.publicKeyMultibase);
    expect(verifyCommitSignature(snapshot.commit.unsignedBytes, snapshot.commit.sig, key)).toBe(false);
  });

  test('endless: the CAR keeps coming', async () => {
    const res = await fetchRepo('endless');
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let total = 0;
    while (total < 8 * 1024 * 1024) {
      const { done, value } = await reader.read();
      expect(done).toBe(false);
      total += value!.length;
    }
    await reader.cancel();
    expect(total).toBeGreaterThanOrEqual(8 * 1024 * 1024);
  });

  test('trickle: a few bytes at a time', async () => {
    const res = await fetchRepo('trickle');
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const second = await reader.read();
    expect(first.value!.length + second.value!.length).toBeLessThanOrEqual(2 * TRICKLE_BYTES);
    await reader.cancel();
  });

  test('redirect-private: a 302 to a private address', async () => {
    const { did } = onHost('redirect-private');
    const res = await fetchRepo('redirect-private');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`http://10.0.0.1/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(did)}`);
  });

  test('rate-limited: every 3rd getRepo is a 429 with Retry-After, the others correct', async () => {
    const { did } = onHost('rate-limited');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetchRepo('rate-limited');
      statuses.push(res.status);
      expect(res.headers.get('ratelimit-limit')).toBe('2');
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 1);
      if (res.status === 429) {
        expect(res.headers.get('retry-after')).toBe('1');
        expect(res.headers.get('ratelimit-remaining')).toBe('0');
        expect(((await res.json()) as { error: string }).error).toBe('RateLimitExceeded');
      } else {
        expect(readRepoSnapshot(did, new Uint8Array(await res.arrayBuffer())).commit.did).toBe(did);
      }
    }
    expect(statuses).toEqual([200, 200, 429, 200, 200, 429]);
  });

  test('unavailable: 503', async () => {
    const res = await fetchRepo('unavailable');
    expect(res.status).toBe(503);
    await res.arrayBuffer();
  });

  test('hostile hosts still list their repos correctly', async () => {
    for (const fault of HOST_FAULTS) {
      const host = sim.hosts.find((h) => h.fault === fault)!;
      const page = await json<{ repos: { did: string }[] }>(`${host.url}/xrpc/com.atproto.sync.listRepos`);
      expect(page.repos.map((r) => r.did)).toEqual([...host.accounts].map((i) => sim.network.directory.at(i).did));
    }
  });
});

describe('one host (the default)', () => {
  test('listHosts names this server, which serves every repo', async () => {
    const sim = await startSimulator({ seed: 'one', accounts: 20, commits: 50, pregenerate: true });
    try {
      const { hosts } = await json<{ hosts: { hostname: string; accountCount: number }[] }>(`${sim.url}/xrpc/com.atproto.sync.listHosts`);
      expect(hosts).toEqual([{ hostname: new URL(sim.url).host, seq: sim.lastSeq, accountCount: [...sim.network.directory.withRepos()].length, status: 'active' } as never]);
      expect(sim.hosts[0]!.url).toBe(sim.url);
      expect(sim.hostAddresses).toEqual(['127.0.0.1']);
    } finally {
      await sim.stop();
    }
  });
});
