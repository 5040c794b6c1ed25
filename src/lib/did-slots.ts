/**
 * did-slots: a bounded set of DIDs, each holding a slot number in [0, capacity) that its owner uses
 * to index its own typed arrays. Per-repo state then costs a few bytes per repo instead of a
 * JavaScript string, a Map entry and an object (~250 bytes each time a cache keeps a DID).
 *
 * A `did:plc:` DID (24 base32 characters, 120 bits) is kept as four 30-bit numbers in one
 * Int32Array and found through a chained hash table of Int32Arrays; any other DID (did:web, or
 * anything unusual) is kept as its string in a Map beside it, in the same slots. Promises: never
 * more than `capacity` DIDs; `find` and `add` are O(1); when full, `add` evicts with CLOCK (second
 * chance): a DID found since the hand last passed it is spared once, so what is in use stays and
 * what was seen once goes first. A slot's number is stable until the DID is removed or evicted;
 * `add` hands out a slot whose previous contents the owner must overwrite. The arrays grow with use
 * (doubling, up to `capacity`), and so must the owner's: every slot is below `allocated`. Memory
 * reserved ahead of use would still count for the garbage collector, whose next full collection
 * waits until the heap has grown by a multiple of what it holds.
 */
const PLC_PREFIX = 'did:plc:';
const PLC_LENGTH = 32;
const WORDS = 4;
const CHARS_PER_WORD = 6;
const FREE = 0;
const PLC = 1;
const OTHER = 2;
const FIRST_ALLOCATION = 1024;

/** base32 (RFC 4648 lower case, as did:plc uses) character code -> 0..31, or -1. */
const BASE32_VALUE = new Int8Array(128).fill(-1);
for (const [index, char] of [...'abcdefghijklmnopqrstuvwxyz234567'].entries()) BASE32_VALUE[char.charCodeAt(0)] = index;

export class DidSlots {
  readonly capacity: number;
  #allocated: number;
  #words: Int32Array;
  #kind: Uint8Array;
  #referenced: Uint8Array;
  #buckets: Int32Array;
  #next: Int32Array;
  #bucketMask: number;
  readonly #others = new Map<string, number>();
  readonly #otherOfSlot = new Map<number, string>();
  #freed: Int32Array;
  #freedCount = 0;
  #neverUsed = 0;
  #hand = 0;
  #size = 0;
  // the last did:plc parsed by #parse
  #w0 = 0;
  #w1 = 0;
  #w2 = 0;
  #w3 = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
    this.#allocated = Math.min(capacity, FIRST_ALLOCATION);
    this.#words = new Int32Array(this.#allocated * WORDS);
    this.#kind = new Uint8Array(this.#allocated);
    this.#referenced = new Uint8Array(this.#allocated);
    this.#next = new Int32Array(this.#allocated);
    this.#freed = new Int32Array(this.#allocated);
    this.#buckets = new Int32Array(0);
    this.#bucketMask = 0;
    this.#rehash();
  }

  get size(): number {
    return this.#size;
  }

  /** How many slots the arrays hold now: every slot handed out is below it. */
  get allocated(): number {
    return this.#allocated;
  }

  /** The DID's slot (marked in use, for CLOCK), or -1. */
  find(did: string): number {
    const slot = this.#parse(did) ? this.#findPlc() : (this.#others.get(did) ?? -1);
    if (slot >= 0) this.#referenced[slot] = 1;
    return slot;
  }

  /** Adds a DID that `find` did not find; answers its slot, evicting another DID when full. */
  add(did: string): number {
    const slot = this.#takeSlot();
    if (this.#parse(did)) {
      const at = slot * WORDS;
      this.#words[at] = this.#w0;
      this.#words[at + 1] = this.#w1;
      this.#words[at + 2] = this.#w2;
      this.#words[at + 3] = this.#w3;
      const bucket = this.#bucket();
      this.#next[slot] = this.#buckets[bucket]!;
      this.#buckets[bucket] = slot;
      this.#kind[slot] = PLC;
    } else {
      this.#others.set(did, slot);
      this.#otherOfSlot.set(slot, did);
      this.#kind[slot] = OTHER;
    }
    this.#referenced[slot] = 0;
    this.#size++;
    return slot;
  }

  /** Forgets the DID in `slot` (a slot `find` or `add` answered); the slot is reused later. */
  remove(slot: number): void {
    if (this.#kind[slot] === FREE) return;
    this.#unlink(slot);
    this.#freed[this.#freedCount++] = slot;
  }

  #takeSlot(): number {
    if (this.#freedCount > 0) return this.#freed[--this.#freedCount]!;
    if (this.#neverUsed < this.capacity) {
      if (this.#neverUsed === this.#allocated) this.#grow();
      return this.#neverUsed++;
    }
    for (;;) {
      const slot = this.#hand;
      this.#hand = slot + 1 === this.capacity ? 0 : slot + 1;
      if (this.#referenced[slot] === 1) {
        this.#referenced[slot] = 0;
        continue;
      }
      this.#unlink(slot);
      return slot;
    }
  }

  #grow(): void {
    const allocated = Math.min(this.capacity, this.#allocated * 2);
    this.#words = withLength(this.#words, allocated * WORDS);
    this.#kind = withLength(this.#kind, allocated);
    this.#referenced = withLength(this.#referenced, allocated);
    this.#next = withLength(this.#next, allocated);
    this.#freed = withLength(this.#freed, allocated);
    this.#allocated = allocated;
    this.#rehash();
  }

  /** Buckets for `allocated` slots (a power of two at least as many), every did:plc in its chain. */
  #rehash(): void {
    let buckets = 1;
    while (buckets < this.#allocated) buckets *= 2;
    this.#buckets = new Int32Array(buckets).fill(-1);
    this.#bucketMask = buckets - 1;
    for (let slot = 0; slot < this.#neverUsed; slot++) {
      if (this.#kind[slot] !== PLC) continue;
      this.#load(slot);
      const bucket = this.#bucket();
      this.#next[slot] = this.#buckets[bucket]!;
      this.#buckets[bucket] = slot;
    }
  }

  #load(slot: number): void {
    const at = slot * WORDS;
    this.#w0 = this.#words[at]!;
    this.#w1 = this.#words[at + 1]!;
    this.#w2 = this.#words[at + 2]!;
    this.#w3 = this.#words[at + 3]!;
  }

  #unlink(slot: number): void {
    if (this.#kind[slot] === PLC) {
      this.#load(slot);
      const bucket = this.#bucket();
      let current = this.#buckets[bucket]!;
      if (current === slot) {
        this.#buckets[bucket] = this.#next[slot]!;
      } else {
        while (this.#next[current] !== slot) current = this.#next[current]!;
        this.#next[current] = this.#next[slot]!;
      }
    } else {
      const did = this.#otherOfSlot.get(slot);
      if (did !== undefined) this.#others.delete(did);
      this.#otherOfSlot.delete(slot);
    }
    this.#kind[slot] = FREE;
    this.#size--;
  }

  #findPlc(): number {
    const words = this.#words;
    for (let slot = this.#buckets[this.#bucket()]!; slot >= 0; slot = this.#next[slot]!) {
      const at = slot * WORDS;
      if (words[at] === this.#w0 && words[at + 1] === this.#w1 && words[at + 2] === this.#w2 && words[at + 3] === this.#w3) return slot;
    }
    return -1;
  }

  #bucket(): number {
    // the words come from a hash already (did:plc is a truncated SHA-256), a cheap mix suffices
    let hash = Math.imul(this.#w0 ^ (this.#w1 >>> 15), 0x9e3779b1);
    hash = Math.imul(hash ^ this.#w2 ^ (this.#w3 << 7), 0x85ebca6b);
    return (hash ^ (hash >>> 16)) & this.#bucketMask;
  }

  /** Whether `did` is a canonical did:plc; if so its 120 bits are in #w0..#w3. */
  #parse(did: string): boolean {
    if (did.length !== PLC_LENGTH || !did.startsWith(PLC_PREFIX)) return false;
    let index = PLC_PREFIX.length;
    for (let word = 0; word < WORDS; word++) {
      let value = 0;
      for (let char = 0; char < CHARS_PER_WORD; char++) {
        const code = did.charCodeAt(index++);
        const digit = code < 128 ? BASE32_VALUE[code]! : -1;
        if (digit < 0) return false;
        value = (value << 5) | digit;
      }
      if (word === 0) this.#w0 = value;
      else if (word === 1) this.#w1 = value;
      else if (word === 2) this.#w2 = value;
      else this.#w3 = value;
    }
    return true;
  }
}

/** `array`'s elements in a longer array of the same kind. */
export function withLength<T extends Uint8Array | Uint16Array | Int32Array | Float64Array>(array: T, length: number): T {
  const longer = new (array.constructor as new (length: number) => T)(length);
  longer.set(array);
  return longer;
}
