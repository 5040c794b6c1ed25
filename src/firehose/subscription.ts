/**
 * The relay connection: `com.atproto.sync.subscribeRepos` over the standard WebSocket.
 *
 * Owns the socket, the resume cursor and reconnection. Each connection asks for events after
 * the last seq the pipeline accepted (at start: the stored cursor; with none, FIREHOSE_START).
 * Frames are decoded here; sequenced ones go to the pipeline, malformed ones are counted and
 * skipped. The socket's handler only queues a received frame (the inbox); frames are handled in
 * the order received, in time slices (SLICE_MS) each in its own event-loop turn, so a burst never
 * holds the thread for long, and those received before the relay closed are still handled. While
 * the pipeline is nearly idle (light traffic), a frame arriving in an empty inbox waits up to
 * LIGHT_HOLD_MS for the ones after it, so they are handled together (see there). When
 * the pipeline's queue plus the inbox reach the queue limit the socket is closed (the standard
 * WebSocket cannot pause) and reopened from the last accepted seq once the queue has drained to a
 * quarter, so memory stays bounded and nothing is skipped. A socket silent for `idleTimeoutMs` is
 * replaced. Reconnects back off exponentially with jitter, capped, reset by any frame received.
 *
 * Relay error frames: FutureCursor (our cursor is ahead of the relay: its sequence started over)
 * resumes live and accepts its numbers again; ConsumerTooSlow reconnects from our cursor;
 * OutdatedCursor (info: the relay no longer holds our cursor, events were missed) is logged and
 * counted, and ingestion continues from the oldest event the relay has.
 */
import type { FirehoseStart } from '../config.ts';
import type { Logger } from '../log.ts';
import { decodeFrame, FrameError } from './frame-decoder.ts';
import type { SequencedFrame } from '../pipeline/event-processor.ts';
import type { IngestStats } from '../pipeline/ingest-stats.ts';
import { sleepUnlessAborted } from '../lib/sleep-unless-aborted.ts';

/** What the subscription needs of the pipeline. */
export interface FrameSink {
  offer(frame: SequencedFrame): 'accepted' | 'duplicate' | 'full';
  readonly lastAcceptedSeq: number | null;
  readonly queueLimit: number;
  /** Frames accepted and not yet committed. */
  readonly queueDepth: number;
  waitForDepth(depth: number, signal: AbortSignal): Promise<void>;
  resetSequence(): void;
}

export interface SubscriptionOptions {
  readonly relayUrl: string;
  readonly start: FirehoseStart;
  readonly sink: FrameSink;
  readonly stats: IngestStats;
  readonly log: Logger;
  readonly idleTimeoutMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

type Outcome = 'closed' | 'full' | 'future-cursor' | 'idle' | 'aborted';

/**
 * Received frames are handled (decoded, offered, and processed as far as the pipeline does it at
 * once) in slices of at most this long, each in its own turn of the event loop. A relay sending
 * as fast as it can fills the socket with thousands of frames that the WebSocket delivers in one
 * go; handled right there, they held the thread for up to 300 ms (3,500 frames) while the batch
 * writer's database replies waited.
 */
const SLICE_MS = 2;
/**
 * Light traffic: a frame received into an empty inbox while the pipeline holds fewer than
 * LIGHT_QUEUE_DEPTH events is handled LIGHT_HOLD_MS later, with whatever arrived meanwhile. At
 * 450 commits/s frames arrive one or two at a time; handled one by one, each paid a turn of the
 * event loop, a cold run through decoding, verification and processing, and a wake of the batch
 * writer. The batch writer lets a small batch wait 100 ms anyway, so the hold costs little lag.
 */
const LIGHT_HOLD_MS = 20;
const LIGHT_QUEUE_DEPTH = 1_000;

export class FirehoseSubscription {
  readonly #options: SubscriptionOptions;
  #connected = false;
  #reconnects = 0;
  #lastReceivedSeq: number | null = null;
  #lastFrameAt: number | null = null;
  #resumeLive = false;
  #framesReceived = 0;
  readonly errorFrames = new Map<string, number>();

  constructor(options: SubscriptionOptions) {
    this.#options = options;
  }

  get connected(): boolean {
    return this.#connected;
  }
  get reconnects(): number {
    return this.#reconnects;
  }
  get lastReceivedSeq(): number | null {
    return this.#lastReceivedSeq;
  }
  /** Wall-clock time (ms) of the last frame received. */
  get lastFrameAt(): number | null {
    return this.#lastFrameAt;
  }
  get relayUrl(): string {
    return this.#options.relayUrl;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { sink, log } = this.#options;
    const initialMs = this.#options.backoffInitialMs ?? 500;
    const maxMs = this.#options.backoffMaxMs ?? 30_000;
    let failures = 0;
    while (!signal.aborted) {
      const cursor = this.#cursor();
      const framesBefore = this.#framesReceived;
      const outcome = await this.#connectOnce(cursor, signal);
      this.#connected = false;
      if (outcome === 'aborted' || signal.aborted) return;
      this.#reconnects++;
      if (this.#framesReceived > framesBefore) failures = 0;
      if (outcome === 'full') {
        log.debug('queue full: reading paused until it drains', { queueLimit: sink.queueLimit });
        await sink.waitForDepth(Math.floor(sink.queueLimit / 4), signal);
        continue;
      }
      if (outcome === 'future-cursor') {
        log.error('the relay answered FutureCursor: its sequence is behind our cursor (a new or reset relay); resuming live', { cursor });
        sink.resetSequence();
        this.#resumeLive = true;
      }
      const delay = Math.min(maxMs, initialMs * 2 ** failures) * (0.5 + Math.random() / 2);
      failures++;
      log.warn('relay connection closed: reconnecting', { outcome, inMs: Math.round(delay) });
      await sleepUnlessAborted(delay, signal);
    }
  }

  #cursor(): number | null {
    if (this.#resumeLive) return null;
    const accepted = this.#options.sink.lastAcceptedSeq;
    if (accepted !== null) return accepted;
    const start = this.#options.start;
    return start.kind === 'seq' ? start.seq : null;
  }

  #connectOnce(cursor: number | null, signal: AbortSignal): Promise<Outcome> {
    const { relayUrl, sink, log } = this.#options;
    const idleTimeoutMs = this.#options.idleTimeoutMs ?? 60_000;
    const url = new URL(`${relayUrl}/xrpc/com.atproto.sync.subscribeRepos`);
    if (cursor !== null) url.searchParams.set('cursor', String(cursor));

    return new Promise<Outcome>((resolve) => {
      let outcome: Outcome | null = null;
      let socket: WebSocket;
      try {
        socket = new WebSocket(url.href);
      } catch (error) {
        log.error('cannot open the relay connection', { url: url.href, error });
        resolve('closed');
        return;
      }
      socket.binaryType = 'arraybuffer';
      // Received frames wait in the inbox and are handled in slices (SLICE_MS). Frames received
      // and not handled yet count against the queue limit: when inbox and queue hold
      // `queueLimit`, the socket is closed ('full') and the inbox is still handled to its end.
      // Any other end (an error frame, a refused offer, abort) drops what the inbox still holds:
      // those frames come again from the cursor.
      let inbox: unknown[] = [];
      let inboxHead = 0;
      let discardInbox = false;
      let sliceScheduled = false;
      let socketClosed = false;
      let settled = false;
      const finish = (result: Outcome, discard = true): void => {
        outcome ??= result;
        if (discard) discardInbox = true;
        socket.close();
      };
      // silent for idleTimeoutMs: replaced (checked every quarter of it, at most every second)
      let lastActivity = Date.now();
      const idleCheck = setInterval(() => {
        if (Date.now() - lastActivity >= idleTimeoutMs) {
          finish('idle');
          // a silent relay will not answer the close handshake either (Bun's close() waits ~35 s for it)
          (socket as WebSocket & { terminate?: () => void }).terminate?.();
        }
      }, Math.min(1000, Math.max(1, Math.floor(idleTimeoutMs / 4))));
      const onAbort = (): void => finish('aborted');
      signal.addEventListener('abort', onAbort, { once: true });

      const settleWhenDone = (): void => {
        if (settled || !socketClosed || (inboxHead < inbox.length && !discardInbox)) return;
        settled = true;
        inbox = [];
        clearInterval(idleCheck);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome ?? 'closed');
      };
      const handleSlice = (): void => {
        const deadline = performance.now() + SLICE_MS;
        while (inboxHead < inbox.length && !discardInbox) {
          const data = inbox[inboxHead];
          inbox[inboxHead++] = undefined;
          this.#handleFrame(data, finish);
          if (performance.now() >= deadline) break;
        }
        if (inboxHead === inbox.length || discardInbox) {
          inbox = [];
          inboxHead = 0;
          settleWhenDone();
        } else scheduleSlice();
      };
      const runSlice = (): void => {
        sliceScheduled = false;
        if (!settled) handleSlice();
      };
      const scheduleSlice = (): void => {
        if (sliceScheduled) return;
        sliceScheduled = true;
        setImmediate(runSlice);
      };
      const scheduleHeldSlice = (): void => {
        if (sliceScheduled) return;
        sliceScheduled = true;
        setTimeout(runSlice, LIGHT_HOLD_MS);
      };

      socket.onopen = () => {
        this.#connected = true;
        log.info('connected to the relay', { url: url.href });
        if (this.#resumeLive) this.#resumeLive = false;
      };
      socket.onmessage = (message: MessageEvent) => {
        if (outcome !== null) return;
        this.#framesReceived++;
        this.#lastFrameAt = lastActivity = Date.now();
        inbox.push(message.data);
        if (inbox.length - inboxHead + sink.queueDepth >= sink.queueLimit) finish('full', false);
        if (inbox.length - inboxHead === 1 && sink.queueDepth < LIGHT_QUEUE_DEPTH) scheduleHeldSlice();
        else scheduleSlice();
      };
      socket.onerror = () => {
        // a close event follows; its outcome is what matters
      };
      socket.onclose = () => {
        // what was received before the close is still handled, in order (unless discarded)
        socketClosed = true;
        settleWhenDone();
      };
    });
  }

  /** Decodes one received message and hands a sequenced frame to the pipeline. */
  #handleFrame(data: unknown, finish: (outcome: Outcome, discardInbox?: boolean) => void): void {
    const { sink, stats, log } = this.#options;
    if (!(data instanceof ArrayBuffer)) {
      stats.reject('frame-not-binary');
      return;
    }
    let frame;
    try {
      frame = decodeFrame(new Uint8Array(data));
    } catch (error) {
      if (error instanceof FrameError) stats.reject(`frame-${error.reason}`);
      else {
        stats.reject('frame-undecodable');
        log.error('a frame could not be decoded', { error });
      }
      return;
    }
    switch (frame.kind) {
      case 'error':
        this.errorFrames.set(frame.error, (this.errorFrames.get(frame.error) ?? 0) + 1);
        log.warn('the relay sent an error', { error: frame.error, message: frame.message });
        finish(frame.error === 'FutureCursor' ? 'future-cursor' : 'closed');
        return;
      case 'info':
        this.errorFrames.set(frame.name, (this.errorFrames.get(frame.name) ?? 0) + 1);
        log.warn('the relay sent an info message', { name: frame.name, message: frame.message });
        return;
      case 'unknown':
        if (frame.seq === undefined) {
          stats.reject('unknown-event-type');
          return;
        }
        break;
    }
    this.#lastReceivedSeq = frame.seq ?? this.#lastReceivedSeq;
    if (sink.offer(frame as SequencedFrame) === 'full') finish('full');
  }
}
