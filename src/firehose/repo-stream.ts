// repo-stream: a whole repo as com.atproto.sync.getRepo exports it, read from the response body as
// it streams, in memory bounded by options rather than by the repo's size.
//
// Owns the CAR framing of a stream (header and blocks across chunk boundaries), the spill file and
// its index, and a lazy walk of the MST. Promises:
//   - Acceptance as repo-snapshot.ts `readRepoSnapshot`: the same commit (commit-reader.ts
//     `readRepoCommit`, over the whole CAR or over the header and the root block), the same leaves
//     in the same order, the same CommitReadError / MstError (with `reason`) for what it refuses,
//     with three differences, all refusals of a CAR that readRepoSnapshot would also refuse or
//     never see: a body that ends inside the header or a block is RepoStreamError('truncated')
//     (not 'bad-car'); a body past `maxBytes` is 'too-large'; and every block is hashed as it
//     streams past, so a block whose bytes do not match its CID is 'bad-block' even when the tree
//     never names it (readRepoSnapshot only checks the blocks it reads). The body is read to its
//     end before the commit is read: blocks come in storage order, records often before the nodes
//     that name them. Tree errors (MstError) come out of `records()`, as the walk reaches them.
//   - Memory: up to `memoryBytes` of CAR the bytes are kept in one buffer (at most `memoryBytes`
//     long) and read through car-index.ts. Past it the bytes so far and all that follow go to a
//     spill file in `spillDir` (a random name, opened exclusively with mode 0600 and unlinked at
//     once: the open descriptor keeps it, so nothing is left behind even by a crash; close() and
//     every failure close it). What stays in memory then: the CAR header, a 1 MiB write buffer,
//     the index (16 bytes a block: its offset, 64 bits of its digest, up to twice that while the
//     arrays grow) and a hash table of 8 to 16 bytes a block: 24-32 bytes a block, about 100 MB
//     for a 1 GB repo of 3M blocks of ~330 bytes, but up to 32/37 of `maxBytes` for a crafted CAR
//     of empty 37-byte blocks, so `maxBytes` bounds it too); the walk's path of nodes (one
//     block per level); and one chunk of records' blocks at a time (plus gaps of at most 4 KiB
//     between them, read with them).
//   - The walk visits keys strictly ascending across the whole tree, each node checked by mst-node.ts
//     `loadNode` (hash, height, canonical layout), so a subtree linked twice or out of order is
//     refused and the work is bounded by the CAR's size. A block read back from the spill file is
//     compared with the full CID it was asked for; its hash was checked as it streamed past.
//   - Cancels the body when it fails (too large, malformed, aborted); the caller owns timeouts
//     through `signal`, which is also checked between chunks of `records()`.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodeCbor } from '@atcute/cbor';
import * as CID from '@atcute/cid';

import { CarIndex, CarIndexError, CID_LENGTH } from './car-index.ts';
import { CommitReadError, readRecordBlock, readRepoCommit, type SignedCommit } from './commit-reader.ts';
import { CidRef, EMPTY_TREE_CID, loadNode, MstError, type BlockLookup, type MstNode } from './mst-node.ts';
import { sha256Equals } from './sha256.ts';
import { ReasonError } from '../lib/reason-error.ts';

export class RepoStreamError extends ReasonError<'too-large' | 'truncated' | 'bad-block' | 'aborted'> {
  override readonly name = 'RepoStreamError';
}

export interface RepoStreamOptions {
  /** folder for a spill file when the repo outgrows memory; created (mode 0700) if missing; the file is removed by close() and on any failure */
  readonly spillDir: string;
  /** CAR bytes kept in memory before blocks go to the spill file (default 32 MiB) */
  readonly memoryBytes?: number;
  /** largest CAR accepted; past it RepoStreamError('too-large') and the stream is cancelled */
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
}

export interface RepoRecord {
  /** `collection/rkey` */
  readonly path: string;
  /** base32 CID string, as repo-snapshot's RepoLeaf.cid */
  readonly cid: string;
  /**
   * The record decoded, exactly as commit-reader.ts `readRecordBlock` decodes it (a CommitReadError
   * when its block is absent or malformed). Until close().
   */
  value(): Record<string, unknown>;
}

export interface StreamedRepo {
  /** the CAR's first root, as `readRepoCommit` gives it */
  readonly commit: SignedCommit;
  readonly carBytes: number;
  readonly blockCount: number;
  /** whether the CAR outgrew `memoryBytes` and is read back from the spill file */
  readonly spilled: boolean;
  /** every record of the repo in MST key order, in arrays of at most `size`; the walk is lazy (the whole list of leaves is never held) */
  records(size: number): AsyncGenerator<RepoRecord[]>;
  close(): Promise<void>;
}

const DEFAULT_MEMORY_BYTES = 32 * 1024 * 1024;
const FIRST_BUFFER = 64 * 1024;
const WRITE_BUFFER = 1024 * 1024;
// record blocks closer than this in the spill file are read with one read, the blocks between too
const MERGE_GAP = 4096;
const MAX_VARINT_BYTES = 8;
const CODEC_DCBOR = 0x71;
const CODEC_RAW = 0x55;
// a raw and a dag-cbor CID of the same bytes share a digest: their keys must differ
const RAW_KEY_SALT = 0x9e3779b9;
// the CAR header of a chunk of record blocks read back: {roots: [], version: 1}
const CHUNK_HEADER = (() => {
  const header = encodeCbor({ version: 1, roots: [] });
  return Uint8Array.of(header.length, ...header);
})();

const utf8 = new TextDecoder('utf-8', { fatal: true });

const badCar = (message: string): never => {
  throw new CommitReadError('bad-car', 'unreadable CAR slice', { cause: new CarIndexError('bad-car', message) });
};

const cidString = (cid: Uint8Array): string => {
  try {
    return CID.toString(CID.decode(cid));
  } catch {
    return 'an unreadable CID';
  }
};

const isCidPrefix = (cid: Uint8Array): boolean =>
  cid[0] === 0x01 && (cid[1] === CODEC_DCBOR || cid[1] === CODEC_RAW) && cid[2] === 0x12 && cid[3] === 0x20;

const keyA = (cid: Uint8Array, at: number): number =>
  ((cid[at + 4]! << 24) | (cid[at + 5]! << 16) | (cid[at + 6]! << 8) | cid[at + 7]!) >>> 0;
const keyB = (cid: Uint8Array, at: number): number =>
  (((cid[at + 8]! << 24) | (cid[at + 9]! << 16) | (cid[at + 10]! << 8) | cid[at + 11]!) ^ (cid[at + 1] === CODEC_RAW ? RAW_KEY_SALT : 0)) >>> 0;

const HEADER_VARINT = 0;
const HEADER = 1;
const BLOCK_VARINT = 2;
const BLOCK_CID = 3;
const BLOCK_BYTES = 4;

/**
 * The CAR framing of a stream, as car-index.ts reads it from whole bytes: header and blocks across
 * chunk boundaries, each block hashed against its CID as it passes, and where each block starts.
 */
class CarFramer {
  /** the header frame (varint and DAG-CBOR), read through CarIndex: its roots */
  header: CarIndex | null = null;
  headerFrame: Uint8Array | null = null;
  blockCount = 0;
  /** per block: offset of its frame (its length varint) in the CAR */
  starts = new Float64Array(1024);
  /** per block: two 32-bit words of its CID's digest */
  keys = new Uint32Array(2048);
  #state = HEADER_VARINT;
  /** CAR offset of the next chunk */
  #position = 0;
  #value = 0;
  #scale = 1;
  #varintBytes = 0;
  #need = 0;
  #frameStart = 0;
  #headerParts: Uint8Array[] = [];
  readonly #cid = new Uint8Array(CID_LENGTH);
  #cidFill = 0;
  #hasher: Hash | null = null;

  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n || (this.#state === BLOCK_BYTES && this.#need === 0)) {
      switch (this.#state) {
        case HEADER_VARINT:
        case BLOCK_VARINT: {
          if (this.#varintBytes === 0) this.#frameStart = this.#position + i;
          const byte = chunk[i++]!;
          // the header's varint may span chunks: its bytes are kept one by one (at most 8)
          if (this.#state === HEADER_VARINT) this.#headerParts.push(Uint8Array.of(byte));
          this.#value += (byte & 0x7f) * this.#scale;
          this.#varintBytes++;
          if (byte >= 0x80) {
            this.#scale *= 128;
            if (this.#varintBytes === MAX_VARINT_BYTES) badCar('unreadable varint');
            break;
          }
          const value = this.#value;
          this.#value = 0;
          this.#scale = 1;
          this.#varintBytes = 0;
          if (this.#state === HEADER_VARINT) {
            if (value === 0) badCar('empty CAR header');
            this.#need = value;
            this.#state = HEADER;
          } else {
            if (value < CID_LENGTH) badCar('CAR block shorter than a CID');
            this.#need = value - CID_LENGTH;
            this.#cidFill = 0;
            this.#state = BLOCK_CID;
          }
          break;
        }
        case HEADER: {
          const take = Math.min(this.#need, n - i);
          this.#headerParts.push(chunk.slice(i, i + take));
          i += take;
          this.#need -= take;
          if (this.#need === 0) this.#readHeader();
          break;
        }
        case BLOCK_CID: {
          const take = Math.min(CID_LENGTH - this.#cidFill, n - i);
          for (let j = 0; j < take; j++) this.#cid[this.#cidFill + j] = chunk[i + j]!;
          i += take;
          this.#cidFill += take;
          if (this.#cidFill === CID_LENGTH) {
            if (!isCidPrefix(this.#cid)) badCar('CAR block without a CIDv1 sha-256');
            this.#state = BLOCK_BYTES;
          }
          break;
        }
        default: {
          const take = Math.min(this.#need, n - i);
          if (this.#hasher === null && take === this.#need) {
            // the whole block is in this chunk: one call, no hasher
            if (!sha256Equals(chunk.subarray(i, i + take), this.#cid, 4)) this.#badBlock();
          } else {
            const hasher = (this.#hasher ??= createHash('sha256'));
            hasher.update(chunk.subarray(i, i + take));
            if (take === this.#need) {
              this.#hasher = null;
              const digest = hasher.digest();
              for (let j = 0; j < 32; j++) if (digest[j] !== this.#cid[4 + j]) this.#badBlock();
            }
          }
          i += take;
          this.#need -= take;
          if (this.#need === 0) this.#endBlock();
        }
      }
    }
    this.#position += n;
  }

  /** Throws 'truncated' unless the body ended between blocks. */
  end(): void {
    if (this.#state === BLOCK_VARINT && this.#varintBytes === 0) return;
    const where = this.#state === HEADER_VARINT || this.#state === HEADER ? 'the CAR header' : 'a block';
    throw new RepoStreamError('truncated', `the body ends inside ${where} (after ${this.#position} bytes)`);
  }

  #readHeader(): void {
    const parts = this.#headerParts;
    this.#headerParts = [];
    const frame = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      frame.set(part, at);
      at += part.length;
    }
    try {
      // a CAR of the header alone: read exactly as the whole CAR's header would be
      this.header = new CarIndex(frame);
    } catch (err) {
      if (!(err instanceof CarIndexError)) throw err;
      throw new CommitReadError('bad-car', 'unreadable CAR slice', { cause: err });
    }
    this.headerFrame = frame;
    this.#state = BLOCK_VARINT;
  }

  #endBlock(): void {
    const block = this.blockCount++;
    if (block === this.starts.length) {
      const starts = new Float64Array(block * 2);
      starts.set(this.starts);
      this.starts = starts;
      const keys = new Uint32Array(block * 4);
      keys.set(this.keys);
      this.keys = keys;
    }
    this.starts[block] = this.#frameStart;
    this.keys[block * 2] = keyA(this.#cid, 0);
    this.keys[block * 2 + 1] = keyB(this.#cid, 0);
    this.#state = BLOCK_VARINT;
  }

  #badBlock(): never {
    throw new RepoStreamError('bad-block', `block ${cidString(this.#cid)} does not hash to its CID`);
  }
}

/** Where the CAR's bytes go: one buffer up to `memoryBytes`, then the spill file. */
class CarStore {
  readonly #spillDir: string;
  readonly #memoryBytes: number;
  #buffer: Uint8Array | null = null;
  #held = 0;
  #fd = -1;
  #writeBuffer: Uint8Array | null = null;
  #writeFill = 0;
  /** bytes written to the file (without the write buffer) */
  #written = 0;

  constructor(spillDir: string, memoryBytes: number) {
    this.#spillDir = spillDir;
    this.#memoryBytes = memoryBytes;
  }

  get spilled(): boolean {
    return this.#fd !== -1;
  }

  /** The bytes while they are all in memory. */
  get bytes(): Uint8Array {
    return (this.#buffer ?? new Uint8Array(0)).subarray(0, this.#held);
  }

  /** The spill file's descriptor (after `finish`). */
  get fd(): number {
    return this.#fd;
  }

  append(chunk: Uint8Array): void {
    if (this.#fd === -1) {
      const needed = this.#held + chunk.length;
      if (needed <= this.#memoryBytes) {
        let buffer = this.#buffer;
        if (buffer === null || buffer.length < needed) {
          const grown = new Uint8Array(Math.min(this.#memoryBytes, Math.max(needed, buffer === null ? FIRST_BUFFER : buffer.length * 2)));
          if (buffer !== null) grown.set(buffer.subarray(0, this.#held));
          this.#buffer = buffer = grown;
        }
        buffer.set(chunk, this.#held);
        this.#held = needed;
        return;
      }
      this.#spill();
    }
    const writeBuffer = this.#writeBuffer!;
    if (this.#writeFill + chunk.length > writeBuffer.length) this.#flush();
    if (chunk.length >= writeBuffer.length / 2) {
      // a large chunk goes as it is, after what is buffered
      this.#flush();
      this.#write(chunk);
    } else {
      writeBuffer.set(chunk, this.#writeFill);
      this.#writeFill += chunk.length;
    }
  }

  finish(): void {
    if (this.#fd !== -1) {
      this.#flush();
      this.#writeBuffer = null;
    }
  }

  close(): void {
    this.#buffer = null;
    this.#writeBuffer = null;
    if (this.#fd !== -1) {
      const fd = this.#fd;
      this.#fd = -1;
      closeSync(fd);
    }
  }

  #spill(): void {
    mkdirSync(this.#spillDir, { recursive: true, mode: 0o700 });
    const path = join(this.#spillDir, `repo-${randomUUID()}.car`);
    const fd = openSync(path, 'wx+', 0o600);
    try {
      unlinkSync(path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.#fd = fd;
    this.#writeBuffer = new Uint8Array(WRITE_BUFFER);
    if (this.#held > 0) this.#write(this.#buffer!.subarray(0, this.#held));
    this.#buffer = null;
    this.#held = 0;
  }

  #flush(): void {
    if (this.#writeFill === 0) return;
    this.#write(this.#writeBuffer!.subarray(0, this.#writeFill));
    this.#writeFill = 0;
  }

  #write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      done += writeSync(this.#fd, bytes, done, bytes.length - done, this.#written + done);
    }
    this.#written += bytes.length;
  }
}

/** Reads `length` bytes at `position` of the file into `into` at `at`. */
const readFully = (fd: number, into: Uint8Array, at: number, length: number, position: number): void => {
  let done = 0;
  while (done < length) {
    const read = readSync(fd, into, at + done, length - done, position + done);
    // the file is ours and was written in full: a short file is our own corruption
    if (read === 0) throw new Error('repo-stream: the spill file is shorter than what was written to it');
    done += read;
  }
};

/** Length of the varint at the start of a block frame. */
const varintLength = (frame: Uint8Array): number => {
  let at = 0;
  while (frame[at]! >= 0x80) at++;
  return at + 1;
};

/** The blocks of the spill file: a hash table of 64 bits of each digest, blocks read back by position. */
class SpillBlocks implements BlockLookup {
  readonly #fd: number;
  readonly #starts: Float64Array;
  readonly #keys: Uint32Array;
  readonly #count: number;
  readonly #carBytes: number;
  readonly #table: Int32Array;
  readonly #mask: number;
  /** the block `find` read last, and where its bytes start */
  #lastBlock = -1;
  #lastFrame: Uint8Array | null = null;
  #lastBytesAt = 0;

  constructor(fd: number, framer: CarFramer, carBytes: number) {
    this.#fd = fd;
    this.#starts = framer.starts;
    this.#keys = framer.keys;
    this.#count = framer.blockCount;
    this.#carBytes = carBytes;
    let size = 16;
    while (size < this.#count * 2) size *= 2;
    this.#table = new Int32Array(size).fill(-1);
    this.#mask = size - 1;
    const keys = this.#keys;
    for (let block = 0; block < this.#count; block++) {
      const a = keys[block * 2]!;
      const b = keys[block * 2 + 1]!;
      let slot = a & this.#mask;
      let duplicate = false;
      for (let other = this.#table[slot]!; other !== -1; other = this.#table[slot]!) {
        // 64 equal bits are the same CID (the full CID is compared when read back): keep the first
        if (keys[other * 2] === a && keys[other * 2 + 1] === b) {
          duplicate = true;
          break;
        }
        slot = (slot + 1) & this.#mask;
      }
      if (!duplicate) this.#table[slot] = block;
    }
  }

  /** The block whose key is the digest of the CID at `at` in `cid`, or -1; its CID is not compared. */
  candidate(cid: Uint8Array, at: number): number {
    const a = keyA(cid, at);
    const b = keyB(cid, at);
    const keys = this.#keys;
    for (let slot = a & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const block = this.#table[slot]!;
      if (block === -1 || (keys[block * 2] === a && keys[block * 2 + 1] === b)) return block;
    }
  }

  find(cid: Uint8Array): number {
    if (cid.length !== CID_LENGTH) return -1;
    const block = this.candidate(cid, 0);
    if (block === -1) return -1;
    const frame = this.frameOf(block);
    const at = varintLength(frame);
    for (let i = CID_LENGTH - 1; i >= 0; i--) if (frame[at + i] !== cid[i]) return -1;
    this.#lastBlock = block;
    this.#lastFrame = frame;
    this.#lastBytesAt = at + CID_LENGTH;
    return block;
  }

  bytesOf(block: number): Uint8Array {
    if (block !== this.#lastBlock) {
      const frame = this.frameOf(block);
      return frame.subarray(varintLength(frame) + CID_LENGTH);
    }
    return this.#lastFrame!.subarray(this.#lastBytesAt);
  }

  start(block: number): number {
    return this.#starts[block]!;
  }

  end(block: number): number {
    return block + 1 < this.#count ? this.#starts[block + 1]! : this.#carBytes;
  }

  /** A block's frame (varint, CID, bytes), read from the file into an array of its own. */
  frameOf(block: number): Uint8Array {
    const start = this.start(block);
    const frame = new Uint8Array(this.end(block) - start);
    readFully(this.#fd, frame, 0, frame.length, start);
    return frame;
  }

  /** A CAR of the header `header` and the given frames, in file order, for car-index.ts. */
  carOf(header: Uint8Array, blocks: readonly number[]): Uint8Array {
    const sorted = Int32Array.from(blocks).sort();
    const ranges: number[] = [];
    let length = header.length;
    for (let i = 0; i < sorted.length; i++) {
      const block = sorted[i]!;
      if (i > 0 && block === sorted[i - 1]) continue;
      const start = this.start(block);
      const end = this.end(block);
      const last = ranges.length - 2;
      if (last >= 0 && start - ranges[last + 1]! <= MERGE_GAP) {
        length += end - ranges[last + 1]!;
        ranges[last + 1] = end;
      } else {
        length += end - start;
        ranges.push(start, end);
      }
    }
    const car = new Uint8Array(length);
    car.set(header, 0);
    let at = header.length;
    for (let i = 0; i < ranges.length; i += 2) {
      const size = ranges[i + 1]! - ranges[i]!;
      readFully(this.#fd, car, at, size, ranges[i]!);
      at += size;
    }
    return car;
  }
}

/** The lazy in-order walk of an MST: a stack of nodes and, per node, the next gap or entry. */
class TreeWalk {
  readonly #blocks: BlockLookup;
  readonly #nodes: MstNode[] = [];
  /** per node on the stack: 2 * entry index, plus 1 once the gap before that entry was walked */
  readonly #steps: number[] = [];
  #last: Uint8Array | null = null;

  constructor(blocks: BlockLookup, root: Uint8Array) {
    this.#blocks = blocks;
    if (!EMPTY_TREE_CID.equals(root)) this.#push(loadNode(blocks, new CidRef(root, 0), null));
  }

  /** Calls `leaf` for up to `size` more keys; returns how many (0 once the walk is over). */
  next(size: number, leaf: (path: string, cid: Uint8Array) => void): number {
    const nodes = this.#nodes;
    const steps = this.#steps;
    let count = 0;
    while (count < size && nodes.length > 0) {
      const top = nodes.length - 1;
      const node = nodes[top]!;
      const step = steps[top]!;
      const i = step >> 1;
      if ((step & 1) === 0) {
        steps[top] = step | 1;
        const subtree = node.gap(i);
        if (subtree !== null) {
          this.#push(subtree instanceof CidRef ? loadNode(this.#blocks, subtree, node.height - 1) : subtree);
          continue;
        }
      }
      const entries = node.entries;
      if (i === entries.length) {
        nodes.pop();
        steps.pop();
        continue;
      }
      const entry = entries[i]!;
      const key = entry.keyBuf.subarray(entry.keyAt, entry.keyAt + entry.keyLength);
      const last = this.#last;
      if (last !== null && compareBytes(last, key) >= 0) throw new MstError('bad-node', 'MST keys are not strictly ascending across nodes');
      this.#last = key;
      leaf(utf8.decode(key), node.value(i).bytes());
      steps[top] = (i + 1) << 1;
      count++;
    }
    return count;
  }

  #push(node: MstNode): void {
    this.#nodes.push(node);
    this.#steps.push(0);
  }
}

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const end = Math.min(a.length, b.length);
  for (let i = 0; i < end; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** Where a record's block is read from. */
interface RecordSource {
  value(cid: string): Record<string, unknown>;
}

class StreamRecord implements RepoRecord {
  readonly path: string;
  readonly cid: string;
  readonly #source: RecordSource;

  constructor(path: string, cid: string, source: RecordSource) {
    this.path = path;
    this.cid = cid;
    this.#source = source;
  }

  value(): Record<string, unknown> {
    return this.#source.value(this.cid);
  }
}

class MemoryRecords implements RecordSource {
  readonly #repo: Repo;
  readonly #blocks: CarIndex;

  constructor(repo: Repo, blocks: CarIndex) {
    this.#repo = repo;
    this.#blocks = blocks;
  }

  value(cid: string): Record<string, unknown> {
    this.#repo.assertOpen();
    return readRecordBlock(this.#blocks, cid);
  }
}

/** One chunk's record blocks, read from the spill file (in file order) on the first value asked for. */
class SpilledChunk implements RecordSource {
  readonly #repo: Repo;
  readonly #blocks: SpillBlocks;
  #wanted: number[] | null = [];
  #index: CarIndex | null = null;

  constructor(repo: Repo, blocks: SpillBlocks) {
    this.#repo = repo;
    this.#blocks = blocks;
  }

  add(cid: Uint8Array): void {
    const block = this.#blocks.candidate(cid, 0);
    if (block !== -1) this.#wanted!.push(block);
  }

  value(cid: string): Record<string, unknown> {
    this.#repo.assertOpen();
    if (this.#index === null) {
      this.#index = new CarIndex(this.#blocks.carOf(CHUNK_HEADER, this.#wanted!));
      this.#wanted = null;
    }
    // readRecordBlock compares the full CID and hashes the bytes, as for a CAR in memory
    return readRecordBlock(this.#index, cid);
  }
}

class Repo implements StreamedRepo {
  readonly commit: SignedCommit;
  readonly carBytes: number;
  readonly blockCount: number;
  readonly #store: CarStore;
  readonly #memory: CarIndex | null;
  readonly #spill: SpillBlocks | null;
  readonly #signal: AbortSignal | undefined;
  #closed = false;

  constructor(
    commit: SignedCommit,
    carBytes: number,
    blockCount: number,
    store: CarStore,
    blocks: CarIndex | SpillBlocks,
    signal: AbortSignal | undefined,
  ) {
    this.commit = commit;
    this.carBytes = carBytes;
    this.blockCount = blockCount;
    this.#store = store;
    this.#memory = blocks instanceof CarIndex ? blocks : null;
    this.#spill = blocks instanceof SpillBlocks ? blocks : null;
    this.#signal = signal;
  }

  get spilled(): boolean {
    return this.#spill !== null;
  }

  assertOpen(): void {
    if (this.#closed) throw new Error('repo-stream: the repo was closed');
  }

  async *records(size: number): AsyncGenerator<RepoRecord[]> {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('records: size must be a positive integer');
    this.assertOpen();
    try {
      const memory = this.#memory;
      const spill = this.#spill;
      const walk = new TreeWalk(memory ?? spill!, this.commit.data.bytes);
      const source = memory === null ? null : new MemoryRecords(this, memory);
      for (;;) {
        this.assertOpen();
        if (this.#signal?.aborted) throw new RepoStreamError('aborted', 'the walk was aborted', { cause: this.#signal.reason });
        const batch: RepoRecord[] = [];
        if (source !== null) {
          walk.next(size, (path, cid) => batch.push(new StreamRecord(path, CID.toString(CID.decode(cid)), source)));
        } else {
          const chunk = new SpilledChunk(this, spill!);
          walk.next(size, (path, cid) => {
            chunk.add(cid);
            batch.push(new StreamRecord(path, CID.toString(CID.decode(cid)), chunk));
          });
        }
        if (batch.length === 0) return;
        yield batch;
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#store.close();
  }
}

/**
 * Reads a getRepo body to its end (hashing every block, spilling past `memoryBytes`) and its signed
 * commit; the records then come from `records()`. Throws RepoStreamError, CommitReadError (the CAR
 * framing: 'bad-car'; the commit) or MstError; the body is cancelled and the spill file closed.
 */
export async function readRepoStream(did: string, body: ReadableStream<Uint8Array>, options: RepoStreamOptions): Promise<StreamedRepo> {
  const { spillDir, maxBytes, signal } = options;
  const memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!(maxBytes >= 0) || !(memoryBytes >= 0)) throw new RangeError('readRepoStream: maxBytes and memoryBytes must be non-negative');
  const reader = body.getReader();
  const store = new CarStore(spillDir, memoryBytes);
  const framer = new CarFramer();
  const aborted = (): RepoStreamError => new RepoStreamError('aborted', 'the read was aborted', { cause: signal?.reason });
  // a pending read ends (done) at once when the reader is cancelled, whatever the source is doing
  const onAbort = (): void => {
    reader.cancel(signal?.reason).catch(() => undefined);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let carBytes = 0;
  try {
    if (signal?.aborted) throw aborted();
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw aborted();
        throw new RepoStreamError('truncated', `the body failed after ${carBytes} bytes`, { cause: err });
      }
      if (signal?.aborted) throw aborted();
      if (result.done) break;
      const chunk = result.value;
      carBytes += chunk.length;
      if (carBytes > maxBytes) throw new RepoStreamError('too-large', `the repo is larger than ${maxBytes} bytes`);
      framer.feed(chunk);
      store.append(chunk);
    }
    framer.end();
    store.finish();
    if (!store.spilled) {
      const { commit, blocks } = readRepoCommit(did, store.bytes);
      return new Repo(commit, carBytes, framer.blockCount, store, blocks, signal);
    }
    const blocks = new SpillBlocks(store.fd, framer, carBytes);
    return new Repo(spilledCommit(did, framer, blocks), carBytes, framer.blockCount, store, blocks, signal);
  } catch (err) {
    store.close();
    await reader.cancel(err).catch(() => undefined);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

/** The commit of a spilled CAR: readRepoCommit over its header and its root block alone. */
const spilledCommit = (did: string, framer: CarFramer, blocks: SpillBlocks): SignedCommit => {
  const header = framer.headerFrame!;
  const root = framer.header!.roots[0];
  const block = root === undefined ? -1 : blocks.find(root);
  if (block === -1) return readRepoCommit(did, header).commit;
  const frame = blocks.frameOf(block);
  const car = new Uint8Array(header.length + frame.length);
  car.set(header, 0);
  car.set(frame, header.length);
  return readRepoCommit(did, car).commit;
};
