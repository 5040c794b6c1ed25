import { expect, test } from 'bun:test';
import { DidSlots } from '../../src/lib/did-slots.ts';
import { Rng } from '../../src/sim/rng.ts';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A deterministic stream of numbers in [0, 1): the simulator's seeded generator. */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

const plcDid = (next: () => number): string => {
  let id = '';
  for (let i = 0; i < 24; i++) id += BASE32[Math.floor(next() * 32)];
  return `did:plc:${id}`;
};

test('did:plc and other DIDs share one set of slots; a DID is found by its exact string', () => {
  const slots = new DidSlots(10);
  const dids = [
    'did:plc:ewvi7nxzyoun6zhxrhs64oiz',
    'did:plc:ewvi7nxzyoun6zhxrhs64oia',
    'did:web:example.com',
    'did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ', // not base32 lower case: kept as a string
    'did:plc:ewvi7nxzyoun6zhxrhs64oi', // too short
    'did:plc:ewvi7nxzyoun6zhxrhs64oi8', // 8 is not base32
    'did:plc:ewvi7nxzyoun6zhxrhs64oié',
  ];
  const assigned = dids.map((did) => {
    expect(slots.find(did)).toBe(-1);
    return slots.add(did);
  });
  expect(new Set(assigned).size).toBe(dids.length);
  expect(slots.size).toBe(dids.length);
  dids.forEach((did, index) => expect(slots.find(did)).toBe(assigned[index]!));
  expect(slots.find('did:plc:ewvi7nxzyoun6zhxrhs64oib')).toBe(-1);
  expect(slots.find('did:web:example.org')).toBe(-1);
});

test('remove forgets the DID and its slot is handed out again', () => {
  const slots = new DidSlots(4);
  const a = slots.add('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa');
  const web = slots.add('did:web:example.com');
  slots.remove(a);
  slots.remove(a); // twice is harmless
  slots.remove(web);
  expect(slots.size).toBe(0);
  expect(slots.find('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')).toBe(-1);
  expect(slots.find('did:web:example.com')).toBe(-1);
  expect([slots.add('did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'), slots.add('did:web:example.org')].sort()).toEqual([a, web].sort());
});

test('when full, CLOCK evicts a DID not found since the hand last passed it', () => {
  const slots = new DidSlots(3);
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((char) => `did:plc:${char.repeat(24)}`) as [string, string, string, string];
  slots.add(a);
  const slotOfB = slots.add(b);
  slots.add(c);
  expect(slots.find(a)).toBeGreaterThanOrEqual(0);
  expect(slots.add(d)).toBe(slotOfB);
  expect(slots.size).toBe(3);
  expect(slots.find(b)).toBe(-1);
  expect([a, c, d].map((did) => slots.find(did) >= 0)).toEqual([true, true, true]);
});

test('against a model, growing and then evicting: never over capacity, every DID it still has keeps its own slot', () => {
  const next = random(7);
  const capacity = 1_500;
  const slots = new DidSlots(capacity);
  const pool = Array.from({ length: 4_000 }, (_, index) => (index % 10 === 0 ? `did:web:host-${index}.example` : plcDid(next)));
  const model = new Map<string, number>();
  const didOfSlot = new Map<number, string>();
  for (let step = 0; step < 50_000; step++) {
    const did = pool[Math.floor(next() * (next() < 0.8 ? 1_800 : pool.length))]!;
    const found = slots.find(did);
    if (found >= 0) {
      expect(model.get(did)).toBe(found);
      if (next() < 0.05) {
        slots.remove(found);
        model.delete(did);
        didOfSlot.delete(found);
      }
      continue;
    }
    expect(model.has(did)).toBe(false);
    const slot = slots.add(did);
    expect(slot).toBeLessThan(slots.allocated);
    const evicted = didOfSlot.get(slot);
    if (evicted !== undefined) model.delete(evicted);
    model.set(did, slot);
    didOfSlot.set(slot, did);
    expect(slots.size).toBe(model.size);
    expect(slots.size).toBeLessThanOrEqual(capacity);
  }
  for (const [did, slot] of model) expect(slots.find(did)).toBe(slot);
  expect(slots.allocated).toBe(capacity);
});

test('the arrays grow with use, not ahead of it', () => {
  const next = random(11);
  const slots = new DidSlots(100_000);
  const first = slots.allocated;
  const dids = Array.from({ length: first * 3 }, () => plcDid(next));
  const assigned = dids.map((did) => slots.add(did));
  expect(first).toBeLessThan(dids.length);
  expect(slots.allocated).toBeGreaterThanOrEqual(dids.length);
  expect(slots.allocated).toBeLessThan(dids.length * 2);
  dids.forEach((did, index) => expect(slots.find(did)).toBe(assigned[index]!));
});

test('capacity must be a positive integer', () => {
  expect(() => new DidSlots(0)).toThrow(RangeError);
  expect(() => new DidSlots(1.5)).toThrow(RangeError);
});
