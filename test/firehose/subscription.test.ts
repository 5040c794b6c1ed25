import { afterEach, describe, expect, test } from 'bun:test';
import type { ServerWebSocket } from 'bun';
import { encode } from '@atcute/cbor';
import { FirehoseSubscription, type FrameSink } from '../../src/firehose/subscription.ts';
import type { SequencedFrame } from '../../src/pipeline/event-processor.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { silentLogger } from '../../src/log.ts';
import { buildCommit, frameOf } from './fixtures.ts';
import { until } from '../support/until.ts';

/** A scripted relay: `script(cursor)` says what to send on each connection. */
function startRelay(script: (cursor: string | null, connection: number) => Uint8Array[], keepOpen = true) {
  const cursors: Array<string | null> = [];
  const server = Bun.serve({
    port: 0,
    fetch(request, server) {
      const url = new URL(request.url);
      if (url.pathname !== '/xrpc/com.atproto.sync.subscribeRepos') return new Response('no', { status: 404 });
      cursors.push(url.searchParams.get('cursor'));
      return server.upgrade(request, { data: { cursor: url.searchParams.get('cursor') } }) ? undefined : new Response('no', { status: 400 });
    },
    websocket: {
      open(ws: ServerWebSocket<{ cursor: string | null }>) {
        for (const frame of script(ws.data.cursor, cursors.length)) ws.sendBinary(frame);
        if (!keepOpen) ws.close();
      },
      message() {},
    },
  });
  return { url: `ws://127.0.0.1:${server.port}`, cursors, stop: () => server.stop(true) };
}

class RecordingSink implements FrameSink {
  readonly frames: SequencedFrame[] = [];
  lastAcceptedSeq: number | null = null;
  resets = 0;
  constructor(readonly queueLimit = 1000) {}
  get queueDepth(): number {
    return this.frames.length;
  }
  offer(frame: SequencedFrame) {
    if (this.lastAcceptedSeq !== null && frame.seq <= this.lastAcceptedSeq) return 'duplicate' as const;
    if (this.frames.length >= this.queueLimit) return 'full' as const;
    this.frames.push(frame);
    this.lastAcceptedSeq = frame.seq;
    return 'accepted' as const;
  }
  async waitForDepth(): Promise<void> {
    this.frames.length = 0; // the "pipeline" drained
  }
  resetSequence(): void {
    this.resets++;
    this.lastAcceptedSeq = null;
  }
}

const commitFrame = (seq: number) => buildCommit({ seq }).frame;
const account = (seq: number) => frameOf({ op: 1, t: '#account' }, { seq, did: 'did:plc:ewvi7nxzyoun6zhxrhs64oiz', time: '2024-05-01T12:00:00.000Z', active: true });

const running: Array<() => unknown> = [];
afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});


function subscribe(url: string, sink: FrameSink, extra: Partial<ConstructorParameters<typeof FirehoseSubscription>[0]> = {}) {
  const stats = new IngestStats();
  const subscription = new FirehoseSubscription({ relayUrl: url, start: { kind: 'live' }, sink, stats, log: silentLogger, backoffInitialMs: 10, backoffMaxMs: 50, ...extra });
  const controller = new AbortController();
  const done = subscription.run(controller.signal);
  running.push(async () => {
    controller.abort();
    await done;
  });
  return { subscription, stats };
}

describe('FirehoseSubscription', () => {
  test('starts live without a cursor, or at FIREHOSE_START, and resumes after the last accepted seq', async () => {
    const relay = startRelay((cursor) => (cursor === null ? [commitFrame(1), commitFrame(2)] : [commitFrame(Number(cursor) + 1)]), false);
    running.push(relay.stop);
    const sink = new RecordingSink();
    subscribe(relay.url, sink);
    await until(() => relay.cursors.length >= 3, { timeoutMs: 10_000, intervalMs: 10 });
    expect(relay.cursors.slice(0, 3)).toEqual([null, '2', '3']);

    const fromSeq = startRelay(() => []);
    running.push(fromSeq.stop);
    subscribe(fromSeq.url, new RecordingSink(), { start: { kind: 'seq', seq: 0 } });
    await until(() => fromSeq.cursors.length >= 1, { timeoutMs: 10_000, intervalMs: 10 });
    expect(fromSeq.cursors[0]).toBe('0');
  });

  test('malformed frames are counted by reason and skipped; the next frame still arrives', async () => {
    const relay = startRelay(() => [new Uint8Array([0xff, 0x00, 0x13]), frameOf({ op: 1, t: '#commit' }, { seq: 'x' }), encode({ op: 1 }), account(7)]);
    running.push(relay.stop);
    const sink = new RecordingSink();
    const { stats, subscription } = subscribe(relay.url, sink);
    await until(() => sink.frames.length === 1, { timeoutMs: 10_000, intervalMs: 10 });
    expect(sink.frames[0]?.seq).toBe(7);
    const rejected = Object.fromEntries(stats.rejectedByReason);
    expect(Object.values(rejected).reduce((a, b) => a + b, 0)).toBe(3);
    expect(Object.keys(rejected).every((reason) => reason.startsWith('frame-'))).toBe(true);
    expect(subscription.lastReceivedSeq).toBe(7);
    expect(subscription.connected).toBe(true);
  });

  test('FutureCursor: resumes live and accepts the relay numbers again', async () => {
    const relay = startRelay((cursor) => (cursor === '500' ? [frameOf({ op: -1 }, { error: 'FutureCursor', message: 'cursor in the future' })] : [account(3)]));
    running.push(relay.stop);
    const sink = new RecordingSink();
    sink.lastAcceptedSeq = 500;
    const { subscription } = subscribe(relay.url, sink);
    await until(() => sink.frames.length === 1, { timeoutMs: 10_000, intervalMs: 10 });
    expect(relay.cursors.slice(0, 2)).toEqual(['500', null]);
    expect(sink.resets).toBe(1);
    expect(subscription.errorFrames.get('FutureCursor')).toBe(1);
  });

  test('a silent socket is replaced', async () => {
    const relay = startRelay(() => []);
    running.push(relay.stop);
    const { subscription } = subscribe(relay.url, new RecordingSink(), { idleTimeoutMs: 100 });
    await until(() => relay.cursors.length >= 3, { timeoutMs: 10_000, intervalMs: 10 });
    expect(subscription.reconnects).toBeGreaterThanOrEqual(2);
  });

  test('a full queue closes the socket, what was received is still handled, and reading resumes after the last accepted seq', async () => {
    const relay = startRelay((cursor) => {
      const from = cursor === null ? 1 : Number(cursor) + 1;
      return Array.from({ length: 5 }, (_, index) => account(from + index));
    });
    running.push(relay.stop);
    const sink = new RecordingSink(2);
    subscribe(relay.url, sink);
    await until(() => relay.cursors.length >= 3, { timeoutMs: 10_000, intervalMs: 10 });
    expect(relay.cursors.slice(0, 3)).toEqual([null, '2', '4']);
  });

  test('a burst is handled in slices: other work gets the thread between them', async () => {
    const relay = startRelay(() => Array.from({ length: 200 }, (_, index) => account(index + 1)));
    running.push(relay.stop);
    // every frame costs the sink 1 ms; an event-loop ticker numbers the turns
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    tick();
    const framesPerTurn = new Map<number, number>();
    class SlowSink extends RecordingSink {
      override offer(frame: SequencedFrame) {
        framesPerTurn.set(turn, (framesPerTurn.get(turn) ?? 0) + 1);
        const until = performance.now() + 1;
        while (performance.now() < until) {
          // busy: a frame that takes a while to process
        }
        return super.offer(frame);
      }
    }
    const sink = new SlowSink();
    subscribe(relay.url, sink);
    await until(() => sink.frames.length === 200, { timeoutMs: 20_000, intervalMs: 10 });
    ticking = false;
    expect(sink.frames.map((frame) => frame.seq)).toEqual(Array.from({ length: 200 }, (_, index) => index + 1));
    // slices end once they have run 2 ms: at most 2 such frames each (3 allowed)
    expect(Math.max(...framesPerTurn.values())).toBeLessThanOrEqual(3);
  });
});
