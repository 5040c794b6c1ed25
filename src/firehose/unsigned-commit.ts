// unsigned-commit: the bytes a commit's signature covers, cut out of the signed commit block.
//
// A signed commit block is the DAG-CBOR map of the unsigned commit plus one entry, `sig`. DAG-CBOR
// is canonical (map keys sorted length-first then bytewise, every head in its shortest form), so
// the unsigned encoding is the block without the `sig` entry, under a map head counting one entry
// less (a head that may be a byte shorter: 24 entries need two bytes, 23 one).
// Promises: for a block that @atcute/cbor's `decode` accepts as a map with a `sig` entry, returns
// exactly what `encode` gives for that map without `sig`, as a new array; returns null when it
// cannot vouch for that, and the caller re-encodes: on any float (the encoder writes an integral
// float as an integer) and on anything malformed or not canonical. Never throws.

const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const SIMPLE_FALSE = 20;
const SIMPLE_TRUE = 21;
const SIMPLE_NULL = 22;
// text string of length 3, then "sig"
const SIG_KEY = [0x63, 0x73, 0x69, 0x67] as const;

interface Cursor {
  at: number;
}

/** The argument of the head at `cursor.at` (advancing past it), or -1 if truncated or not shortest. */
const readArgument = (bytes: Uint8Array, cursor: Cursor): number => {
  const at = cursor.at;
  const info = bytes[at]! & 0x1f;
  if (info < 24) {
    cursor.at = at + 1;
    return info;
  }
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0 || at + 1 + size > bytes.length) return -1;
  let value = 0;
  for (let i = 1; i <= size; i++) value = value * 256 + bytes[at + i]!;
  const smallest = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 0x100000000;
  if (value < smallest || value > Number.MAX_SAFE_INTEGER) return -1;
  cursor.at = at + 1 + size;
  return value;
};

/** Skips `count` whole data items; false when one is truncated, a float or not DAG-CBOR. */
const skipItems = (bytes: Uint8Array, cursor: Cursor, count: number): boolean => {
  let pending = count;
  while (pending > 0) {
    pending--;
    if (cursor.at >= bytes.length) return false;
    const initial = bytes[cursor.at]!;
    const major = initial >> 5;
    if (major === MAJOR_SIMPLE) {
      const info = initial & 0x1f;
      if (info !== SIMPLE_FALSE && info !== SIMPLE_TRUE && info !== SIMPLE_NULL) return false;
      cursor.at++;
      continue;
    }
    const argument = readArgument(bytes, cursor);
    if (argument < 0) return false;
    if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
      cursor.at += argument;
      if (cursor.at > bytes.length) return false;
    } else if (major === MAJOR_ARRAY) {
      pending += argument;
    } else if (major === MAJOR_MAP) {
      pending += argument * 2;
    } else if (major === MAJOR_TAG) {
      pending += 1;
    } else if (major === MAJOR_NEGATIVE && argument === Number.MAX_SAFE_INTEGER) {
      return false; // -1 - argument is past the safe range: the decoder rejects it
    }
  }
  return true;
};

const headLength = (argument: number): number =>
  argument < 24 ? 1 : argument < 0x100 ? 2 : argument < 0x10000 ? 3 : argument < 0x100000000 ? 5 : 9;

const writeMapHead = (out: Uint8Array, count: number): void => {
  const length = headLength(count);
  if (length === 1) {
    out[0] = (MAJOR_MAP << 5) | count;
    return;
  }
  out[0] = (MAJOR_MAP << 5) | (length === 2 ? 24 : length === 3 ? 25 : length === 5 ? 26 : 27);
  let rest = count;
  for (let i = length - 1; i >= 1; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
};

const isSigKey = (bytes: Uint8Array, at: number): boolean =>
  bytes[at] === SIG_KEY[0] && bytes[at + 1] === SIG_KEY[1] && bytes[at + 2] === SIG_KEY[2] && bytes[at + 3] === SIG_KEY[3];

/** The block without its top-level `sig` entry, or null (see the contract above). */
export const cutUnsignedCommit = (block: Uint8Array): Uint8Array | null => {
  if (block.length === 0 || block[0]! >> 5 !== MAJOR_MAP) return null;
  const cursor: Cursor = { at: 0 };
  const count = readArgument(block, cursor);
  if (count < 1) return null;
  const entriesStart = cursor.at;
  let sigStart = -1;
  let sigEnd = -1;
  for (let entry = 0; entry < count; entry++) {
    const entryStart = cursor.at;
    if (entryStart >= block.length || block[entryStart]! >> 5 !== MAJOR_TEXT) return null;
    if (!skipItems(block, cursor, 2)) return null;
    if (isSigKey(block, entryStart)) {
      sigStart = entryStart;
      sigEnd = cursor.at;
    }
  }
  if (sigStart === -1 || cursor.at !== block.length) return null;

  const head = headLength(count - 1);
  const out = new Uint8Array(head + (sigStart - entriesStart) + (block.length - sigEnd));
  writeMapHead(out, count - 1);
  out.set(block.subarray(entriesStart, sigStart), head);
  out.set(block.subarray(sigEnd), head + (sigStart - entriesStart));
  return out;
};
