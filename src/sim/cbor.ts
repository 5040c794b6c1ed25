/**
 * DAG-CBOR encoding for the simulator's hot path: records, MST nodes, commits and frames.
 *
 * Owns: one growable scratch buffer, reused by every encode (encodes never nest: a writer callback
 * must not start another encode; that throws).
 * Promises: the bytes @atcute/cbor's `encode` gives for the values the simulator builds: plain
 * objects (keys in DAG-CBOR order: length, then bytes; undefined values left out), arrays, strings,
 * safe integers (other numbers as float64), booleans, null, CID links (`CidLinkWrapper` or
 * `{$link}`), byte strings (`BytesWrapper`, `{$bytes}` or a bare Uint8Array). Each result is an
 * exact-size copy, safe to keep. Why not @atcute/cbor here: it allocates 1 KiB chunks per call and
 * concatenates them, which with the copies around it was about a fifth of the simulator's CPU per
 * commit.
 */
import { BytesWrapper, fromBytes } from '@atcute/cbor';
import { CidLinkWrapper, fromString as cidFromString } from '@atcute/cid';

const utf8 = new TextEncoder();

let buf = new Uint8Array(1 << 16);
let view = new DataView(buf.buffer);
let pos = 0;
let busy = false;

const reserve = (n: number): void => {
  if (pos + n <= buf.length) return;
  const next = new Uint8Array(Math.max(buf.length * 2, pos + n));
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(buf.buffer);
};

/** Major type and argument (up to 2^53). */
export const writeHead = (major: number, arg: number): void => {
  reserve(9);
  const m = major << 5;
  if (arg < 24) buf[pos++] = m | arg;
  else if (arg < 0x100) {
    buf[pos++] = m | 24;
    buf[pos++] = arg;
  } else if (arg < 0x10000) {
    buf[pos++] = m | 25;
    buf[pos++] = arg >>> 8;
    buf[pos++] = arg & 0xff;
  } else if (arg < 0x100000000) {
    buf[pos++] = m | 26;
    view.setUint32(pos, arg);
    pos += 4;
  } else {
    buf[pos++] = m | 27;
    view.setUint32(pos, Math.floor(arg / 0x100000000));
    view.setUint32(pos + 4, arg >>> 0);
    pos += 8;
  }
};

const headLength = (arg: number): number => (arg < 24 ? 1 : arg < 0x100 ? 2 : arg < 0x10000 ? 3 : arg < 0x100000000 ? 5 : 9);

/** A text string (major type 3), or with `major` 2 the UTF-8 of `s` as a byte string. */
export const writeString = (s: string, major: 2 | 3 = 3): void => {
  const n = s.length;
  reserve(n * 3 + 9);
  // ASCII first: the header length is known, the characters go straight in
  const start = pos + headLength(n);
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    buf[start + i] = c;
  }
  if (i === n) {
    writeHead(major, n);
    pos += n;
    return;
  }
  const guess = headLength(n * 3);
  const { written } = utf8.encodeInto(s, buf.subarray(pos + guess));
  const head = headLength(written);
  if (head !== guess) buf.copyWithin(pos + head, pos + guess, pos + guess + written);
  writeHead(major, written);
  pos += written;
};

export const writeBytes = (bytes: Uint8Array): void => {
  writeHead(2, bytes.length);
  reserve(bytes.length);
  buf.set(bytes, pos);
  pos += bytes.length;
};

/** A CID link (tag 42) from raw CID bytes. */
export const writeCid = (cid: Uint8Array): void => {
  writeHead(6, 42);
  writeHead(2, cid.length + 1);
  reserve(cid.length + 1);
  buf[pos++] = 0;
  buf.set(cid, pos);
  pos += cid.length;
};

const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
};

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/** Keys with a defined value, by length then bytes (for ASCII keys the UTF-16 order is the byte order). */
const orderedKeys = (obj: Record<string, unknown>): string[] => {
  const keys: string[] = [];
  let ascii = true;
  for (const key in obj) {
    if (obj[key] === undefined) continue;
    if (ascii && !isAscii(key)) ascii = false;
    let j = keys.length - 1;
    keys.push(key);
    for (; j >= 0; j--) {
      const other = keys[j]!;
      if (key.length > other.length || (key.length === other.length && key > other)) break;
      keys[j + 1] = other;
    }
    keys[j + 1] = key;
  }
  if (!ascii) {
    const bytes = new Map(keys.map((k) => [k, utf8.encode(k)]));
    keys.sort((a, b) => bytes.get(a)!.length - bytes.get(b)!.length || compareBytes(bytes.get(a)!, bytes.get(b)!));
  }
  return keys;
};

export const writeValue = (value: unknown): void => {
  switch (typeof value) {
    case 'boolean':
      reserve(1);
      buf[pos++] = value ? 0xf5 : 0xf4;
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError('NaN and Infinity values not supported');
      if (!Number.isSafeInteger(value)) {
        if (Number.isInteger(value)) throw new RangeError(`can't encode numbers beyond safe integer range`);
        reserve(9);
        buf[pos++] = 0xfb;
        view.setFloat64(pos, value);
        pos += 8;
      } else if (value < 0) writeHead(1, -value - 1);
      else writeHead(0, value);
      return;
    case 'string':
      writeString(value);
      return;
    case 'object': {
      if (value === null) {
        reserve(1);
        buf[pos++] = 0xf6;
        return;
      }
      if (Array.isArray(value)) {
        writeHead(4, value.length);
        for (const item of value) writeValue(item);
        return;
      }
      if (value instanceof Uint8Array) {
        writeBytes(value);
        return;
      }
      if (value instanceof CidLinkWrapper) {
        writeCid(value.bytes);
        return;
      }
      if (value instanceof BytesWrapper) {
        writeBytes(value.buf);
        return;
      }
      const obj = value as Record<string, unknown>;
      const keys = orderedKeys(obj);
      if (keys.length === 1 && keys[0] === '$link' && typeof obj.$link === 'string') {
        writeCid(cidFromString(obj.$link).bytes);
        return;
      }
      if (keys.length === 1 && keys[0] === '$bytes' && typeof obj.$bytes === 'string') {
        writeBytes(fromBytes({ $bytes: obj.$bytes }));
        return;
      }
      writeHead(5, keys.length);
      for (const key of keys) {
        writeString(key);
        writeValue(obj[key]);
      }
      return;
    }
    default:
      throw new TypeError(`unsupported type: ${typeof value}`);
  }
};

/** Runs `write` against the scratch buffer and returns an exact-size copy of what it wrote. */
export const encodeWith = (write: () => void): Uint8Array<ArrayBuffer> => {
  if (busy) throw new Error('cbor: an encode started inside another');
  busy = true;
  pos = 0;
  try {
    write();
    return buf.slice(0, pos);
  } finally {
    busy = false;
  }
};

export const encode = (value: unknown): Uint8Array<ArrayBuffer> => encodeWith(() => writeValue(value));

/** `prefix` (already encoded) followed by the encoding of `value`, as one array. */
export const encodeAfter = (prefix: Uint8Array, value: unknown): Uint8Array<ArrayBuffer> =>
  encodeWith(() => {
    reserve(prefix.length);
    buf.set(prefix, pos);
    pos += prefix.length;
    writeValue(value);
  });
