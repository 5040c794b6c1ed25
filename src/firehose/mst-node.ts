// mst-node: one atproto MST node: its canonical bytes read in place, changed, written and hashed.
//
// Owns the node layout (`{e: [{k, p, t, v}...], l}`, DAG-CBOR, CIDv1 dag-cbor sha-256), MST keys
// (a repo path's UTF-8 bytes) and key heights. Promises: pure and synchronous; `loadNode` takes a
// node from a block lookup, checks it against its CID and accepts exactly the canonical encoding
// (so a changed node re-encodes to the bytes any conforming implementation writes) and the rules
// the reference reader checks or relies on (keys `collection/rkey` of at most 1024 bytes and
// allowed characters, strictly ascending; no links below height 0; no empty nodes; a trimmed
// root), or throws an MstError ('missing-block' or 'bad-node'); `nodeCid` re-hashes a changed
// node and the changed nodes below it. A node's height is its parent's less one, as in the
// reference reader (only the root's comes from its first key).
// Why not src/sim/mst.ts: its nodes are immutable and fully decoded, with string keys and CID
// copies. A proof walks through most nodes without changing their shape, so here a node is first
// only its checked layout (offsets into its block): it is searched in place, its subtrees stay
// CIDs until walked into, and it is re-hashed from its own bytes with the new CIDs written over.
// Only a node whose keys change gets its entries made (keys copied out, one object per entry).
// That keeps a proof near the cost of its SHA-256s.
import * as CID from '@atcute/cid';

import { sha256, sha256Equals } from './sha256.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type MstErrorReason = 'missing-block' | 'bad-node';

export class MstError extends ReasonError<MstErrorReason> {
  override readonly name = 'MstError';
}

/** Where blocks come from: the CarIndex of a commit's CAR slice serves it as is. */
export interface BlockLookup {
  /** a handle for the block whose CID is these 36 bytes, or -1 */
  find(cid: Uint8Array): number;
  /** the bytes of a block found by `find` */
  bytesOf(block: number): Uint8Array;
}

const CID_LENGTH = 36;
const CID_PREFIX_DCBOR = [0x01, 0x71, 0x12, 0x20] as const;
const CODEC_DCBOR = 0x71;
const CODEC_RAW = 0x55;
// a CID link in DAG-CBOR: tag 42, a 37-byte byte string, the 0x00 multibase prefix, the CID
const LINK_LENGTH = 5 + CID_LENGTH;
const NULL = 0xf6;
// the reference's limit (@atproto/repo ensureValidMstKey)
const MAX_KEY_LENGTH = 1024;
const SLASH = 0x2f;
// bytes allowed in a key besides the one slash: A-Z a-z 0-9 _ ~ - : .
const KEY_BYTE = (() => {
  const table = new Uint8Array(256);
  for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~-:.') table[c.charCodeAt(0)] = 1;
  return table;
})();
// the layout of a decoded entry: key suffix offset and length, prefix length, value and subtree
// offsets (-1: no subtree), all in the node's block
const PARTS = 5;

/** The 36 bytes of a CID at `at` in `buf` (a place in a block, or a CID of its own at 0). */
export class CidRef {
  readonly buf: Uint8Array;
  readonly at: number;

  constructor(buf: Uint8Array, at: number) {
    this.buf = buf;
    this.at = at;
  }

  equals(cid: Uint8Array): boolean {
    if (cid.length !== CID_LENGTH) return false;
    const { buf, at } = this;
    // digest bytes first: they differ between CIDs, the prefix rarely does
    for (let i = CID_LENGTH - 1; i >= 0; i--) if (buf[at + i] !== cid[i]) return false;
    return true;
  }

  /** The CID as an array of its own (the same array when it already is one). */
  bytes(): Uint8Array {
    return this.at === 0 && this.buf.length === CID_LENGTH ? this.buf : this.buf.slice(this.at, this.at + CID_LENGTH);
  }
}

/** A subtree: decoded, still only a CID, or absent. */
export type Link = MstNode | CidRef | null;

/** One key of a node, its value and the subtree after it. */
export class Entry {
  /** the key: `keyLength` bytes at `keyAt` in `keyBuf` */
  readonly keyBuf: Uint8Array;
  readonly keyAt: number;
  readonly keyLength: number;
  /** the value: 36 CID bytes at `valueAt` in `valueBuf` */
  valueBuf: Uint8Array;
  valueAt: number;
  tree: Link;

  constructor(keyBuf: Uint8Array, keyAt: number, keyLength: number, valueBuf: Uint8Array, valueAt: number, tree: Link) {
    this.keyBuf = keyBuf;
    this.keyAt = keyAt;
    this.keyLength = keyLength;
    this.valueBuf = valueBuf;
    this.valueAt = valueAt;
    this.tree = tree;
  }
}

/** The entry's key compared with `key`: negative, 0 or positive. */
const compareKey = (entry: Entry, key: Uint8Array): number => {
  const { keyBuf, keyAt, keyLength } = entry;
  const end = keyLength < key.length ? keyLength : key.length;
  for (let i = 0; i < end; i++) {
    const d = keyBuf[keyAt + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return keyLength - key.length;
};

/**
 * The prefix-compressed keys of a decoded node searched in place. `m` is the common prefix of `key`
 * with the previous key (which is below `key`). An entry sharing more than `m` bytes with the
 * previous key is below `key` too; one sharing fewer goes up where the previous key still matched
 * `key`, so it is above (keys ascend and prefixes are maximal: checked by decodeNode).
 */
const searchLayout = (bytes: Uint8Array, layout: readonly number[], key: Uint8Array): number => {
  const count = layout.length / PARTS;
  let m = 0;
  for (let i = 0; i < count; i++) {
    const prefix = layout[PARTS * i + 2]!;
    if (prefix > m) continue;
    if (prefix < m) return 2 * i;
    const suffixAt = layout[PARTS * i]!;
    const suffixLength = layout[PARTS * i + 1]!;
    const rest = key.length - m;
    const end = suffixLength < rest ? suffixLength : rest;
    let j = 0;
    while (j < end && bytes[suffixAt + j] === key[m + j]) j++;
    if (j === end) {
      if (suffixLength === rest) return 2 * i + 1;
      if (suffixLength > rest) return 2 * i;
    } else if (bytes[suffixAt + j]! > key[m + j]!) {
      return 2 * i;
    }
    m += j;
  }
  return 2 * count;
};

export class MstNode {
  readonly height: number;
  /** the subtree before the first key (`l`) */
  left: Link;
  /** the node's CID; null once the node (or one below it) has changed and is not re-hashed yet */
  cid: CidRef | null;
  /**
   * The node's block while it has the keys and links it was decoded with (the layout below, read
   * from it, is still all there is): its new bytes are then these with some CIDs written over.
   * Null for a node made here, or whose entries were made.
   */
  #original: Uint8Array | null = null;
  /** where the `l` CID sits in the original bytes */
  #leftSlot = -1;
  /** a decoded node's layout (PARTS numbers per entry), until its entries are made */
  #layout: number[] | null = null;
  /** with a layout: the subtrees walked into and the values set (index i: entry i - 1, entry i) */
  #trees: (Link | undefined)[] | null = null;
  #values: (Uint8Array | undefined)[] | null = null;
  #entries: Entry[] | null;

  constructor(height: number, entries: Entry[], left: Link) {
    this.height = height;
    this.left = left;
    this.cid = null;
    this.#entries = entries;
  }

  /** A node as decoded from `original`, its CID `cid`. */
  static decoded(height: number, layout: number[], left: Link, cid: CidRef, original: Uint8Array, leftSlot: number): MstNode {
    const node = new MstNode(height, [], left);
    node.cid = cid;
    node.#original = original;
    node.#leftSlot = leftSlot;
    node.#layout = layout;
    node.#entries = null;
    return node;
  }

  get count(): number {
    return this.#layout !== null ? this.#layout.length / PARTS : this.#entries!.length;
  }

  get isEmpty(): boolean {
    return this.count === 0 && this.left === null;
  }

  /** The entries, made from the layout when first asked for (the node is then re-encoded in full). */
  get entries(): Entry[] {
    return (this.#entries ??= this.#makeEntries());
  }

  /** Twice the index of the first entry whose key is >= `key`, plus 1 when it is `key` itself. */
  search(key: Uint8Array): number {
    if (this.#layout !== null) return searchLayout(this.#original!, this.#layout, key);
    const entries = this.#entries!;
    for (let i = 0; i < entries.length; i++) {
      const order = compareKey(entries[i]!, key);
      if (order >= 0) return 2 * i + (order === 0 ? 1 : 0);
    }
    return 2 * entries.length;
  }

  /** The value of entry `i`. */
  value(i: number): CidRef {
    if (this.#layout === null) {
      const entry = this.#entries![i]!;
      return new CidRef(entry.valueBuf, entry.valueAt);
    }
    const set = this.#values?.[i];
    return set !== undefined ? new CidRef(set, 0) : new CidRef(this.#original!, this.#layout[PARTS * i + 3]!);
  }

  /** Sets the value of entry `i` (36 CID bytes); returns the one it replaces. */
  setValue(i: number, value: Uint8Array): CidRef {
    const replaced = this.value(i);
    if (this.#layout !== null) {
      (this.#values ??= [])[i] = value;
    } else {
      const entry = this.#entries![i]!;
      entry.valueBuf = value;
      entry.valueAt = 0;
    }
    return replaced;
  }

  /** Subtree `i`: 0 is `l`, i is the `t` of entry i - 1. */
  gap(i: number): Link {
    if (i === 0) return this.left;
    if (this.#layout === null) return this.#entries![i - 1]!.tree;
    const set = this.#trees?.[i];
    if (set !== undefined) return set;
    const treeAt = this.#layout[PARTS * (i - 1) + 4]!;
    return treeAt === -1 ? null : new CidRef(this.#original!, treeAt);
  }

  setGap(i: number, link: Link): void {
    // a link coming or going changes the shape (null is one byte, a link 41): no more patching
    if (this.#layout !== null && (this.gap(i) === null) !== (link === null)) this.#entries = this.#makeEntries();
    if (i === 0) this.left = link;
    else if (this.#layout !== null) (this.#trees ??= [])[i] = link;
    else this.#entries![i - 1]!.tree = link;
  }

  insert(i: number, entry: Entry): void {
    this.entries.splice(i, 0, entry);
  }

  remove(i: number): Entry {
    return this.entries.splice(i, 1)[0]!;
  }

  append(entries: readonly Entry[]): void {
    for (const entry of entries) this.entries.push(entry);
  }

  /** Every decoded subtree. */
  forEachLoaded(visit: (child: MstNode) => void): void {
    if (this.left instanceof MstNode) visit(this.left);
    if (this.#layout === null) {
      for (const entry of this.#entries!) if (entry.tree instanceof MstNode) visit(entry.tree);
    } else if (this.#trees !== null) {
      for (const tree of this.#trees) if (tree instanceof MstNode) visit(tree);
    }
  }

  /** The length of the original bytes, or -1 once the node must be encoded in full. */
  get originalLength(): number {
    return this.#original === null ? -1 : this.#original.length;
  }

  /**
   * Writes the original bytes into `out` with the CIDs of the subtrees walked into and of the
   * values set written over (subtrees hashed first); only while `originalLength` is not -1.
   */
  patchInto(out: Uint8Array): void {
    const original = this.#original!;
    const layout = this.#layout!;
    out.set(original, 0);
    if (this.left !== null) putCid(out, this.#leftSlot, linkCid(this.left));
    this.#trees?.forEach((tree, i) => {
      if (tree !== undefined && tree !== null) putCid(out, layout[PARTS * (i - 1) + 4]!, linkCid(tree));
    });
    this.#values?.forEach((value, i) => {
      if (value !== undefined) putCid(out, layout[PARTS * i + 3]!, new CidRef(value, 0));
    });
  }

  #makeEntries(): Entry[] {
    const layout = this.#layout!;
    const bytes = this.#original!;
    const count = layout.length / PARTS;
    let keysLength = 0;
    for (let i = 0; i < count; i++) keysLength += layout[PARTS * i + 2]! + layout[PARTS * i + 1]!;
    const keys = new Uint8Array(keysLength);
    const entries = new Array<Entry>(count);
    let keyAt = 0;
    let prevAt = 0;
    for (let i = 0; i < count; i++) {
      const suffixAt = layout[PARTS * i]!;
      const suffixLength = layout[PARTS * i + 1]!;
      const prefix = layout[PARTS * i + 2]!;
      for (let j = 0; j < prefix; j++) keys[keyAt + j] = keys[prevAt + j]!;
      for (let j = 0; j < suffixLength; j++) keys[keyAt + prefix + j] = bytes[suffixAt + j]!;
      const value = this.value(i);
      entries[i] = new Entry(keys, keyAt, prefix + suffixLength, value.buf, value.at, this.gap(i + 1));
      prevAt = keyAt;
      keyAt += prefix + suffixLength;
    }
    this.#original = null;
    this.#layout = null;
    this.#trees = null;
    this.#values = null;
    return entries;
  }
}

/** The CID a link stands for (a changed subtree is hashed before its parent). */
const linkCid = (link: MstNode | CidRef): CidRef => (link instanceof MstNode ? link.cid! : link);

const putCid = (out: Uint8Array, at: number, cid: CidRef): void => {
  const { buf, at: from } = cid;
  for (let i = 0; i < CID_LENGTH; i++) out[at + i] = buf[from + i]!;
};

const cidString = (cid: Uint8Array): string => {
  try {
    return CID.toString(CID.decode(cid));
  } catch {
    return 'an unreadable CID';
  }
};

const utf8 = new TextEncoder();

/** The MST key of a repo path: its UTF-8 bytes. */
export const mstKey = (path: string): Uint8Array => {
  const key = new Uint8Array(path.length);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 0x7f) return utf8.encode(path);
    key[i] = c;
  }
  return key;
};

/** Leading zero bits of SHA-256 of the key, divided by two (fanout 4). */
export const keyHeight = (key: Uint8Array): number => {
  const digest = sha256(key);
  let height = 0;
  for (let i = 0; i < digest.length; i++) {
    const byte = digest[i]!;
    if (byte === 0) {
      height += 4;
      continue;
    }
    if (byte < 0x04) height += 3;
    else if (byte < 0x10) height += 2;
    else if (byte < 0x40) height += 1;
    break;
  }
  return height;
};

/** Length of the common prefix of the bytes at `aAt` in `a` and at `bAt` in `b`. */
const prefixLength = (a: Uint8Array, aAt: number, aLength: number, b: Uint8Array, bAt: number, bLength: number): number => {
  const end = aLength < bLength ? aLength : bLength;
  let i = 0;
  while (i < end && a[aAt + i] === b[bAt + i]) i++;
  return i;
};

/** Length of the common prefix of two keys. */
export const commonPrefixLength = (a: Uint8Array, b: Uint8Array): number => prefixLength(a, 0, a.length, b, 0, b.length);

// ---- decoding: exactly the canonical layout, read in place ----

// the smallest entry: a4 61 6b 40 61 70 00 61 74 f6 61 76 <link>
const MIN_ENTRY = 12 + LINK_LENGTH;

const notCanonical = (): never => {
  throw new MstError('bad-node', 'not a canonical MST node');
};

const badKey = (): never => {
  throw new MstError('bad-node', 'a key that is not a valid repo path');
};

/** Whether a CIDv1 sha-256 link starts at `p`; a subtree must be dag-cbor, a value may be raw. */
const isLink = (b: Uint8Array, p: number, subtree: boolean): boolean =>
  p + LINK_LENGTH <= b.length &&
  b[p] === 0xd8 &&
  b[p + 1] === 0x2a &&
  b[p + 2] === 0x58 &&
  b[p + 3] === CID_LENGTH + 1 &&
  b[p + 4] === 0x00 &&
  b[p + 5] === 0x01 &&
  (b[p + 6] === CODEC_DCBOR || (!subtree && b[p + 6] === CODEC_RAW)) &&
  b[p + 7] === 0x12 &&
  b[p + 8] === 0x20;

// the previous key while decoding: the next one keeps its first `prefix` bytes and writes the rest
const keyScratch = new Uint8Array(MAX_KEY_LENGTH);

// Reading past the end gives undefined, which fails every comparison below: the checks are written
// as `!(value >= minimum)` so that undefined and NaN are refused too.

/** Decodes a node at `height` (null for the root: its first key tells). */
const decodeNode = (b: Uint8Array, cid: CidRef, height: number | null): MstNode => {
  const n = b.length;
  // {"e": [
  if (b[0] !== 0xa2 || b[1] !== 0x61 || b[2] !== 0x65) notCanonical();
  let p = 4;
  let count = b[3]! - 0x80;
  if (count >= 24) {
    if (count === 24) {
      count = b[p++]!;
      if (!(count >= 24)) notCanonical();
    } else if (count === 25) {
      count = (b[p]! << 8) | b[p + 1]!;
      p += 2;
      if (!(count >= 0x100)) notCanonical();
    } else {
      notCanonical();
    }
  } else if (!(count >= 0)) {
    notCanonical();
  }
  // a crafted count must not force a large allocation
  if (count * MIN_ENTRY > n) notCanonical();

  const layout = new Array<number>(count * PARTS);
  let prevLength = 0;
  let prevSlash = -1;
  let hasTree = false;
  for (let i = 0; i < count; i++) {
    // {"k": bytes
    if (b[p] !== 0xa4 || b[p + 1] !== 0x61 || b[p + 2] !== 0x6b) notCanonical();
    p += 3;
    const kHead = b[p++]!;
    let suffixLength = kHead - 0x40;
    if (suffixLength >= 24) {
      if (kHead === 0x58) {
        suffixLength = b[p++]!;
        if (!(suffixLength >= 24)) notCanonical();
      } else if (kHead === 0x59) {
        suffixLength = (b[p]! << 8) | b[p + 1]!;
        p += 2;
        if (!(suffixLength >= 0x100)) notCanonical();
      } else {
        notCanonical();
      }
    } else if (!(suffixLength >= 0)) {
      notCanonical();
    }
    const suffixAt = p;
    p += suffixLength;
    // "p": uint
    if (!(p <= n) || b[p] !== 0x61 || b[p + 1] !== 0x70) notCanonical();
    p += 2;
    let prefix = b[p++]!;
    if (prefix >= 24) {
      if (prefix === 0x18) {
        prefix = b[p++]!;
        if (!(prefix >= 24)) notCanonical();
      } else if (prefix === 0x19) {
        prefix = (b[p]! << 8) | b[p + 1]!;
        p += 2;
        if (!(prefix >= 0x100)) notCanonical();
      } else {
        notCanonical();
      }
    }
    if (!(prefix <= prevLength)) notCanonical();
    // "t": link or null
    if (b[p] !== 0x61 || b[p + 1] !== 0x74) notCanonical();
    p += 2;
    let treeAt = -1;
    if (b[p] === NULL) {
      p++;
    } else {
      if (!isLink(b, p, true)) notCanonical();
      treeAt = p + 5;
      p += LINK_LENGTH;
      hasTree = true;
    }
    // "v": link
    if (b[p] !== 0x61 || b[p + 1] !== 0x76 || !isLink(b, p + 2, false)) notCanonical();
    const valueAt = p + 7;
    p += 2 + LINK_LENGTH;

    // strictly ascending, the prefix the whole common prefix: after the shared bytes the key goes on
    // with a greater byte, or it is the previous key with more bytes after it
    if (prefix === prevLength ? i > 0 && suffixLength === 0 : suffixLength === 0 || b[suffixAt]! <= keyScratch[prefix]!) {
      notCanonical();
    }
    const length = prefix + suffixLength;
    if (length > MAX_KEY_LENGTH) badKey();
    // one slash, neither first nor last; the prefix was checked with the previous key
    let slash = prevSlash < prefix ? prevSlash : -1;
    for (let j = 0; j < suffixLength; j++) {
      const byte = b[suffixAt + j]!;
      if (byte === SLASH) {
        if (slash !== -1) badKey();
        slash = prefix + j;
      } else if (KEY_BYTE[byte] === 0) {
        badKey();
      }
      keyScratch[prefix + j] = byte;
    }
    if (slash < 1 || slash === length - 1) badKey();

    const at = PARTS * i;
    layout[at] = suffixAt;
    layout[at + 1] = suffixLength;
    layout[at + 2] = prefix;
    layout[at + 3] = valueAt;
    layout[at + 4] = treeAt;
    prevLength = length;
    prevSlash = slash;
  }
  // "l": link or null, and nothing after it
  if (b[p] !== 0x61 || b[p + 1] !== 0x6c) notCanonical();
  p += 2;
  let leftAt = -1;
  if (b[p] === NULL) {
    p++;
  } else {
    if (!isLink(b, p, true)) notCanonical();
    leftAt = p + 5;
    p += LINK_LENGTH;
  }
  if (p !== n) notCanonical();

  const left = leftAt === -1 ? null : new CidRef(b, leftAt);
  if (count === 0) {
    // (the empty tree, the one keyless root, is never loaded: its CID is known, EMPTY_TREE_CID)
    if (height === null) throw new MstError('bad-node', 'the root has no keys (an untrimmed tree)');
    if (left === null) throw new MstError('bad-node', 'an empty node inside the tree');
  }
  // the root's height is its first key's (that key has no prefix: its bytes are all in the block);
  // below it, as in the reference reader, the parent's height less one
  const actual = height ?? keyHeight(b.subarray(layout[0]!, layout[0]! + layout[1]!));
  if (actual === 0 && (left !== null || hasTree)) throw new MstError('bad-node', 'a subtree below height 0');
  return MstNode.decoded(actual, layout, left, cid, b, leftAt);
};

// the CID being looked up; only read by the lookup that filled it
const scratchCid = new Uint8Array(CID_LENGTH);

/** The node `cid` names at `height` (null for the root: its first key tells), checked against the CID. */
export const loadNode = (blocks: BlockLookup, cid: CidRef, height: number | null): MstNode => {
  const { buf, at } = cid;
  for (let i = 0; i < CID_LENGTH; i++) scratchCid[i] = buf[at + i]!;
  const block = blocks.find(scratchCid);
  if (block === -1) throw new MstError('missing-block', `MST node ${cidString(scratchCid)} is not in the blocks`);
  const bytes = blocks.bytesOf(block);
  if (scratchCid[1] !== CODEC_DCBOR || !sha256Equals(bytes, scratchCid, CID_PREFIX_DCBOR.length)) {
    throw new MstError('bad-node', `block ${cidString(scratchCid)} is not dag-cbor hashing to its CID`);
  }
  try {
    return decodeNode(bytes, cid, height);
  } catch (err) {
    if (err instanceof MstError) throw new MstError(err.reason, `MST node ${cidString(cid.bytes())}: ${err.message}`, { cause: err });
    throw err;
  }
};

// ---- encoding: the canonical bytes of a changed node, hashed into its CID ----

let out = new Uint8Array(4096);
let outPos = 0;

const headLength = (arg: number): number => (arg < 24 ? 1 : arg < 0x100 ? 2 : arg < 0x10000 ? 3 : 5);

const writeHead = (major: number, arg: number): void => {
  const m = major << 5;
  if (arg < 24) {
    out[outPos++] = m | arg;
  } else if (arg < 0x100) {
    out[outPos++] = m | 24;
    out[outPos++] = arg;
  } else if (arg < 0x10000) {
    out[outPos++] = m | 25;
    out[outPos++] = arg >>> 8;
    out[outPos++] = arg & 0xff;
  } else {
    out[outPos++] = m | 26;
    out[outPos++] = arg >>> 24;
    out[outPos++] = (arg >>> 16) & 0xff;
    out[outPos++] = (arg >>> 8) & 0xff;
    out[outPos++] = arg & 0xff;
  }
};

const writeField = (char: number): void => {
  out[outPos++] = 0x61;
  out[outPos++] = char;
};

const writeCid = (cid: CidRef): void => {
  out[outPos++] = 0xd8;
  out[outPos++] = 0x2a;
  out[outPos++] = 0x58;
  out[outPos++] = CID_LENGTH + 1;
  out[outPos++] = 0x00;
  putCid(out, outPos, cid);
  outPos += CID_LENGTH;
};

const writeSubtree = (link: Link): void => {
  if (link === null) out[outPos++] = NULL;
  else writeCid(linkCid(link));
};

const cidOfBytes = (bytes: Uint8Array): Uint8Array => {
  const cid = new Uint8Array(CID_LENGTH);
  cid.set(CID_PREFIX_DCBOR, 0);
  cid.set(sha256(bytes), CID_PREFIX_DCBOR.length);
  return cid;
};

const hashChanged = (child: MstNode): void => {
  if (child.cid === null) nodeCid(child);
};

/** The node's CID, encoding it (and the changed nodes below it) when it changed. */
export const nodeCid = (node: MstNode): CidRef => {
  if (node.cid !== null) return node.cid;
  // children first: the scratch buffer holds one node at a time
  node.forEachLoaded(hashChanged);
  const length = node.originalLength;
  if (length === -1) {
    encode(node);
  } else {
    if (out.length < length) out = new Uint8Array(length * 2);
    node.patchInto(out);
    outPos = length;
  }
  node.cid = new CidRef(cidOfBytes(out.subarray(0, outPos)), 0);
  return node.cid;
};

/** The canonical bytes of a node, from its entries. */
const encode = (node: MstNode): void => {
  const { entries, left } = node;
  let size = 3 + headLength(entries.length) + 2 + (left === null ? 1 : LINK_LENGTH);
  let prev: Entry | null = null;
  for (const entry of entries) {
    const prefix = prev === null ? 0 : prefixLength(prev.keyBuf, prev.keyAt, prev.keyLength, entry.keyBuf, entry.keyAt, entry.keyLength);
    const suffix = entry.keyLength - prefix;
    size += 3 + headLength(suffix) + suffix + 2 + headLength(prefix) + 2 + (entry.tree === null ? 1 : LINK_LENGTH) + 2 + LINK_LENGTH;
    prev = entry;
  }
  if (out.length < size) out = new Uint8Array(size * 2);
  outPos = 0;
  out[outPos++] = 0xa2;
  writeField(0x65); // e
  writeHead(4, entries.length);
  prev = null;
  for (const entry of entries) {
    const { keyBuf, keyAt, keyLength } = entry;
    const prefix = prev === null ? 0 : prefixLength(prev.keyBuf, prev.keyAt, prev.keyLength, keyBuf, keyAt, keyLength);
    out[outPos++] = 0xa4;
    writeField(0x6b); // k
    writeHead(2, keyLength - prefix);
    for (let i = prefix; i < keyLength; i++) out[outPos++] = keyBuf[keyAt + i]!;
    writeField(0x70); // p
    writeHead(0, prefix);
    writeField(0x74); // t
    writeSubtree(entry.tree);
    writeField(0x76); // v
    writeCid(new CidRef(entry.valueBuf, entry.valueAt));
    prev = entry;
  }
  writeField(0x6c); // l
  writeSubtree(left);
};

/** CID of the empty tree (`{e: [], l: null}`), the one root without keys. */
export const EMPTY_TREE_CID = new CidRef(cidOfBytes(Uint8Array.of(0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, NULL)), 0);
