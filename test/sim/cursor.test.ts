import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { decodeFrame, readFrames, tryDecode } from './helpers.ts';

const seqOf = (bytes: Uint8Array): number | null => {
  const f = tryDecode(bytes);
  return f !== null && typeof f.body.seq === 'number' ? f.body.seq : null;
};

describe('cursors', () => {
  let sim: Simulator;
  let all: Uint8Array[];

  beforeAll(async () => {
    sim = await startSimulator({ seed: 11, accounts: 40, commits: 200, pregenerate: true, faults: { duplicate: 0.05, malformed: 0.05 } });
    all = await readFrames(`${sim.wsUrl}?cursor=0`, sim.framesReleased);
  });
  afterAll(async () => {
    await sim.stop();
  });

  for (const cursor of [1, 17, 100, 199]) {
    test(`cursor=${cursor} gets exactly what follows seq ${cursor}`, async () => {
      const firstAfter = all.findIndex((f) => (seqOf(f) ?? 0) > cursor);
      const expected = all.slice(firstAfter);
      const got = await readFrames(`${sim.wsUrl}?cursor=${cursor}`, expected.length);
      expect(got.length).toBe(expected.length);
      expect(seqOf(got[0]!)).toBe(cursor + 1);
      expect(got).toEqual(expected);
    });
  }

  test('the last seq as cursor is valid and waits for more', async () => {
    const ws = new WebSocket(`${sim.wsUrl}?cursor=${sim.lastSeq}`);
    const opened = await new Promise<boolean>((resolve) => {
      ws.onopen = () => resolve(true);
      ws.onclose = () => resolve(false);
    });
    expect(opened).toBe(true);
    ws.close();
  });

  test('a future cursor gets #error FutureCursor and a close', async () => {
    const frames = await readFrames(`${sim.wsUrl}?cursor=${sim.lastSeq + 5}`, 10);
    expect(frames.length).toBe(1);
    const { header, body } = decodeFrame(frames[0]!);
    expect(header).toEqual({ op: -1 });
    expect(body.error).toBe('FutureCursor');
  });

  test.each(['-1', 'abc', '1.5', '1e400'])('a malformed cursor (%s) is refused with 400', async (cursor) => {
    const res = await fetch(`${sim.url}/xrpc/com.atproto.sync.subscribeRepos?cursor=${cursor}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('InvalidRequest');
  });

  test('the same seed gives the same bytes; another seed does not', async () => {
    const again = await startSimulator({ seed: 11, accounts: 40, commits: 200, pregenerate: true, faults: { duplicate: 0.05, malformed: 0.05 } });
    const other = await startSimulator({ seed: 12, accounts: 40, commits: 200, pregenerate: true, faults: { duplicate: 0.05, malformed: 0.05 } });
    try {
      expect(await readFrames(`${again.wsUrl}?cursor=0`, again.framesReleased)).toEqual(all);
      expect(again.groundTruth()).toEqual(sim.groundTruth());
      const otherFrames = await readFrames(`${other.wsUrl}?cursor=0`, 5);
      expect(otherFrames).not.toEqual(all.slice(0, 5));
    } finally {
      await again.stop();
      await other.stop();
    }
  });
});

describe('without a ground truth', () => {
  test('the same bytes, and groundTruth() throws', async () => {
    const options = { seed: 11, accounts: 40, commits: 200, pregenerate: true, faults: { duplicate: 0.05, malformed: 0.05 } };
    const kept = await startSimulator(options);
    const lean = await startSimulator({ ...options, groundTruth: false });
    try {
      expect(await readFrames(`${lean.wsUrl}?cursor=0`, lean.framesReleased)).toEqual(await readFrames(`${kept.wsUrl}?cursor=0`, kept.framesReleased));
      expect(() => lean.groundTruth()).toThrow();
    } finally {
      await kept.stop();
      await lean.stop();
    }
  });
});

describe('live and on-demand generation', () => {
  test('without a cursor a subscriber sees only new events; events are generated as it reads', async () => {
    const sim = await startSimulator({ seed: 5, accounts: 30, commits: 5000 });
    try {
      expect(sim.commitsGenerated).toBe(0);
      const live = await readFrames(sim.wsUrl, 50);
      expect(live.length).toBe(50);
      expect(seqOf(live[0]!)).toBe(1);
      // a second live subscriber starts after what was already released
      const before = sim.lastSeq;
      const second = await readFrames(sim.wsUrl, 10);
      expect(seqOf(second[0]!)).toBeGreaterThan(before);
      // and a replay from 0 still sees everything from the start
      const replay = await readFrames(`${sim.wsUrl}?cursor=0`, 60);
      expect(seqOf(replay[0]!)).toBe(1);
      expect(replay.slice(0, 50)).toEqual(live);
    } finally {
      await sim.stop();
    }
  });

  test('after `commits` the simulator idles with the socket open', async () => {
    const sim = await startSimulator({ seed: 5, accounts: 10, commits: 20 });
    try {
      const reading = readFrames(`${sim.wsUrl}?cursor=0`, 21);
      await sim.generated();
      expect(sim.commitsGenerated).toBe(20);
      // the reader has all 20 and is still waiting for a 21st: the socket stayed open
      await Bun.sleep(0);
      expect(sim.lastSeq).toBe(20);
      await sim.stop();
      expect((await reading).length).toBe(20);
    } finally {
      await sim.stop();
    }
  });

  test('a paced stream (rate) releases everything in order', async () => {
    const sim = await startSimulator({ seed: 9, accounts: 10, commits: 40, rate: 2000 });
    try {
      const frames = await readFrames(`${sim.wsUrl}?cursor=0`, 40);
      expect(frames.map(seqOf)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    } finally {
      await sim.stop();
    }
  });

  test('a paced stream tells when its pacing started: commit n is not out before start + n / rate', async () => {
    const before = Date.now();
    const sim = await startSimulator({ seed: 9, accounts: 10, commits: 6, rate: 20 });
    const after = Date.now();
    try {
      expect(sim.pacingStartedAt).toBeGreaterThanOrEqual(before);
      expect(sim.pacingStartedAt).toBeLessThanOrEqual(after);
      await readFrames(`${sim.wsUrl}?cursor=0`, 6);
      expect(Date.now()).toBeGreaterThanOrEqual(sim.pacingStartedAt + (6 / 20) * 1000);
    } finally {
      await sim.stop();
    }
  });

  test('a paced stream generated up front starts its pacing once everything is generated', async () => {
    const before = Date.now();
    const sim = await startSimulator({ seed: 9, accounts: 200, commits: 3000, rate: 20, pregenerate: true });
    const after = Date.now();
    try {
      expect(sim.commitsGenerated).toBe(3000);
      // generating 3,000 commits takes far longer than starting the server after it
      expect(sim.pacingStartedAt - before).toBeGreaterThan(after - sim.pacingStartedAt);
      const [first] = await readFrames(`${sim.wsUrl}?cursor=0`, 1);
      expect(seqOf(first!)).toBe(1);
      expect(Date.now()).toBeGreaterThanOrEqual(sim.pacingStartedAt + (1 / 20) * 1000);
    } finally {
      await sim.stop();
    }
    await expect(startSimulator({ commits: 10, rate: 20, pregenerate: true, retain: 5 })).rejects.toThrow(/retain/);
  });

  test('backpressure: a small send buffer still delivers every frame in order', async () => {
    const sim = await startSimulator({ seed: 4, accounts: 50, commits: 500, pregenerate: true, backpressureBytes: 2048 });
    try {
      const frames = await readFrames(`${sim.wsUrl}?cursor=0`, sim.framesReleased);
      expect(frames.map(seqOf)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    } finally {
      await sim.stop();
    }
  });
});
