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
 * How: every `intervalMs` it reads the heap's size (`process.memoryUsage().heapUsed`, garbage
 * since the latest collection included: ~5 us; `bun:jsc`'s `heapSize()`, which sums the heap's
 * blocks, gives nearly the same figure in ~500 us at a 170 MB heap, 2% of the ingester's thread at
 * 450 commits/s with four reads a second) and keeps the lowest value seen since its last collection;
 * when the heap stands `growthBytes` above that low point it runs `gcAndSweep()`: a synchronous
 * full collection whose sweep frees the dead buffers' memory at once, and which keeps the
 * compiled code (`Bun.gc(true)` throws it away and holds the thread ~20 ms more; `Bun.gc(false)`
 * was measured to collect nothing at all, in a probe script). A full collection costs about what
 * is alive (~60 ms for 84 MB of small objects on the benchmark machine), so after one that took
 * d ms the next waits at least 19 d ms: the governor never takes more than a twentieth of the
 * thread, even in a flood whose live heap keeps growing (at a tenth, a verified flood collected
 * every ~1 s for 60-145 ms and ran ~6% slower in two pairs). Process-wide: `main.ts` starts one.
 */
import { gcAndSweep } from 'bun:jsc';

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
    const size = process.memoryUsage().heapUsed;
    if (size < this.#lowPoint) this.#lowPoint = size;
    if (size - this.#lowPoint < this.#options.growthBytes) return false;
    const started = performance.now();
    if (started < this.#notBefore) return false;
    gcAndSweep();
    this.#lowPoint = process.memoryUsage().heapUsed;
    const finished = performance.now();
    this.#notBefore = finished + (finished - started) * MAX_SHARE_BACKOFF;
    this.#collections++;
    return true;
  }
}
