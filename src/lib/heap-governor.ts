/**
 * The heap governor: a full garbage collection as soon as the heap has grown by `growthBytes`
 * since the last one, instead of whenever JavaScriptCore gets to it.
 *
 * Why: under a steady firehose most objects die young, but enough survive an eden collection
 * (frames waiting in the queue, a batch being written) and die a moment later that the old
 * generation fills with garbage, 20 -> 110 MB between two of JavaScriptCore's own full
 * collections in a 2,000 commits/s run, and the frames' buffers outside the heap go with it. The
 * process's peak RSS followed that garbage, not the backlog (docs/performance.md).
 *
 * How: every `intervalMs` it reads `heapSize()` (the heap's size, garbage since the latest
 * collection included; it sums the heap's blocks: ~1 ms on average, 5 ms at most, under a
 * verified flood's heap, timed in the ingester: 0.4% of its thread at four reads a second) and
 * keeps the lowest value seen since its last collection;
 * when the heap stands `growthBytes` above that low point it runs `gcAndSweep()`: a synchronous
 * full collection whose sweep frees the dead buffers' memory at once, and which keeps the
 * compiled code (`Bun.gc(true)` throws it away and holds the thread ~20 ms more; `Bun.gc(false)`
 * was measured to collect nothing at all, in a probe script). A full collection costs about what
 * is alive (~60 ms for 84 MB of small objects on the benchmark machine), so after one that took
 * d ms the next waits at least 19 d ms: the governor never takes more than a twentieth of the
 * thread, even in a flood whose live heap keeps growing (at a tenth, a verified flood collected
 * every ~1 s for 60-145 ms and ran ~6% slower in two pairs). Process-wide: `main.ts` starts one.
 */
import { gcAndSweep, heapSize } from 'bun:jsc';

export interface HeapGovernorOptions {
  /** Growth above the low point that triggers a full collection. */
  readonly growthBytes: number;
  readonly intervalMs: number;
}

/** After a collection of d ms, wait 19 d ms: at most a twentieth of the thread's time. */
const MAX_SHARE_BACKOFF = 19;

const DEFAULT_HEAP_GOVERNOR: HeapGovernorOptions = { growthBytes: 32 * 1024 * 1024, intervalMs: 250 };

export class HeapGovernor {
  readonly #options: HeapGovernorOptions;
  #lowPoint = Number.POSITIVE_INFINITY;
  #collections = 0;
  #notBefore = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(options: HeapGovernorOptions = DEFAULT_HEAP_GOVERNOR) {
    this.#options = options;
  }

  /** Full collections this governor asked for. */
  get collections(): number {
    return this.#collections;
  }

  /** Checks every `intervalMs` for the life of the process (the timer does not keep it alive). */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** One look at the heap; collects when it has grown enough. Returns whether it collected. */
  check(): boolean {
    const size = heapSize();
    if (size < this.#lowPoint) this.#lowPoint = size;
    if (size - this.#lowPoint < this.#options.growthBytes) return false;
    const started = performance.now();
    if (started < this.#notBefore) return false;
    this.#lowPoint = gcAndSweep();
    const finished = performance.now();
    this.#notBefore = finished + (finished - started) * MAX_SHARE_BACKOFF;
    this.#collections++;
    return true;
  }
}
