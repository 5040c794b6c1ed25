import { describe, expect, test } from 'bun:test';
import { RepoStateTable } from '../../src/pipeline/repo-state.ts';
import { Rng } from '../../src/sim/rng.ts';

const SORTABLE = '234567abcdefghijklmnopqrstuvwxyz';
const DID = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz';

const table = (capacity = 100, now: () => number = Date.now) => new RepoStateTable({ capacity, prefetchTtlMs: 1000, now });

/** A deterministic stream of numbers in [0, 1): the simulator's seeded generator. */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

describe('the revision guard', () => {
  test('a repo without a recorded revision is never stale', () => {
    expect(table().isStale(DID, '3kaaaaaaaaa22')).toBe(false);
  });

  test('stale means not above the last recorded revision; a lower one recorded (#sync) resets it', () => {
    const repos = table();
    repos.recordRev(DID, '3kbbbbbbbbb22');
    expect(repos.isStale(DID, '3kbbbbbbbbb22')).toBe(true);
    expect(repos.isStale(DID, '3kaaaaaaaaa22')).toBe(true);
    expect(repos.isStale(DID, '3kbbbbbbbbb23')).toBe(false);
    expect(repos.isStale('did:web:example.com', '3kaaaaaaaaa22')).toBe(false);
    repos.recordRev(DID, '3kaaaaaaaaa22');
    expect(repos.isStale(DID, '3kaaaaaaaaa23')).toBe(false);
  });

  test('agrees with string order for any 13 sortable base32 characters, extremes included', () => {
    const next = random(3);
    const revision = () => Array.from({ length: 13 }, () => SORTABLE[Math.floor(next() * 32)]).join('');
    const pairs: Array<[string, string]> = [
      ['2222222222222', '2222222222222'],
      ['zzzzzzzzzzzzz', 'zzzzzzzzzzzzy'],
      ['2222222222223', '2222222222222'],
      ['3zzzzzzzzzzzz', '4222222222222'],
      ['jzzzzzzzzzzzz', 'k222222222222'],
    ];
    for (let index = 0; index < 2_000; index++) {
      const first = revision();
      // a shared prefix of any length, so both halves of the number get compared
      const shared = Math.floor(next() * 14);
      pairs.push([first, first.slice(0, shared) + revision().slice(shared)]);
    }
    const repos = table();
    for (const [recorded, incoming] of pairs) {
      repos.recordRev(DID, recorded);
      expect(repos.isStale(DID, incoming)).toBe(incoming <= recorded);
    }
  });

  test('a revision that is not a TID is compared as a string and never recorded', () => {
    const repos = table();
    repos.recordRev(DID, '3kbbbbbbbbb22');
    expect(repos.isStale(DID, '3kaaaa')).toBe(true);
    expect(repos.isStale(DID, '3kbbbbbbbbb22x')).toBe(false);
    expect(repos.isStale(DID, '3KBBBBBBBBB22')).toBe(true);
    repos.recordRev(DID, 'not-a-tid');
    expect(repos.isStale(DID, '2222222222222')).toBe(false);
  });
});

describe('the prefetch record', () => {
  test('claimed once per TTL per repo', () => {
    let now = 0;
    const repos = table(100, () => now);
    expect(repos.claimPrefetch(DID)).toBe(true);
    expect(repos.claimPrefetch(DID)).toBe(false);
    expect(repos.claimPrefetch('did:web:example.com')).toBe(true);
    now = 999;
    expect(repos.claimPrefetch(DID)).toBe(false);
    now = 1000;
    expect(repos.claimPrefetch(DID)).toBe(true);
    expect(repos.claimPrefetch(DID)).toBe(false);
  });

  test('a repo keeps its revision when its prefetch is claimed, and the reverse', () => {
    const repos = table();
    repos.recordRev(DID, '3kbbbbbbbbb22');
    expect(repos.claimPrefetch(DID)).toBe(true);
    expect(repos.isStale(DID, '3kbbbbbbbbb22')).toBe(true);
    expect(repos.claimPrefetch(DID)).toBe(false);
  });
});

test('every repo keeps its revision while the table grows to its capacity', () => {
  const repos = table(3_000);
  const dids = Array.from({ length: 2_500 }, (_, index) => `did:web:host-${index}.example`);
  dids.forEach((did, index) => repos.recordRev(did, `3kbbbbbbbb${SORTABLE[index % 32]}${SORTABLE[(index >> 5) % 32]}2`));
  dids.forEach((did, index) => expect(repos.isStale(did, `3kbbbbbbbb${SORTABLE[index % 32]}${SORTABLE[(index >> 5) % 32]}2`)).toBe(true));
  expect(dids.some((did) => repos.isStale(did, '3kbbbbbbbbzzz'))).toBe(false);
});

test('bounded: beyond capacity a repo is forgotten, which only makes it new again', () => {
  const repos = table(2);
  const dids = ['did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', 'did:plc:cccccccccccccccccccccccc'];
  for (const did of dids) repos.recordRev(did, '3kbbbbbbbbb22');
  expect(repos.size).toBe(2);
  expect(dids.filter((did) => repos.isStale(did, '3kaaaaaaaaa22'))).toHaveLength(2);
});

describe('RepoStateTable.arrive: gaps in a repo\'s chain of commits', () => {
  const revs = ['3kaaaaaaaaa22', '3kaaaaaaaab22', '3kaaaaaaaac22', '3kaaaaaaaad22'];

  test('each commit following the one before: no gap; one skipped: a gap; a replay: nothing', () => {
    const table = new RepoStateTable({ capacity: 10, prefetchTtlMs: 1000 });
    expect(table.arrive('did:plc:a', null, revs[0]!)).toBe(false); // the repo's first commit
    expect(table.arrive('did:plc:a', revs[0]!, revs[1]!)).toBe(false);
    expect(table.arrive('did:plc:a', revs[2]!, revs[3]!)).toBe(true); // revs[2] never arrived
    expect(table.arrive('did:plc:a', revs[0]!, revs[1]!)).toBe(false); // a replay: no gap, nothing moves
    expect(table.arrive('did:plc:a', revs[3]!, '3kaaaaaaaae22')).toBe(false);
  });

  test('a repo seen for the first time (after a restart, an eviction) has no gap to show', () => {
    const table = new RepoStateTable({ capacity: 10, prefetchTtlMs: 1000 });
    expect(table.arrive('did:plc:b', revs[2]!, revs[3]!)).toBe(false);
    expect(table.arrive('did:plc:b', 'not-a-tid', '3kaaaaaaaae22')).toBe(true);
  });
});
