// dag-cbor-decode: @atcute/cbor's DAG-CBOR decoder (0BSD, v2.3.6 `decode.js`), with two costs taken out.
//
// Owns nothing new about the format: it accepts and rejects exactly what @atcute/cbor's `decode`
// and `decodeFirst` do and returns the same values (plain objects and arrays, BytesWrapper,
// CidLinkWrapper), which the tests check against the library over real and fuzzed input. What
// differs is the cost on the firehose's hot path, where the same few dozen map keys and many CIDs
// come by in every frame and record:
//   - a map key of up to 24 ASCII bytes is looked up in a small cache keyed by its bytes instead
//     of being turned into a new string by a native call each time;
//   - a CID becomes a CidLinkWrapper over one view of its 36 bytes (the library makes five views
//     and a CID object to get there);
//   - an ASCII string is read in one native call (Latin-1), without a view or a UTF-8 decoder.
// Kept in step with the library by hand: re-run the tests after upgrading @atcute/cbor.
import { BytesWrapper, CidLinkWrapper } from '@atcute/cbor';

interface State {
  readonly b: Uint8Array;
  v: DataView | null;
  p: number;
  /** start and length of the last key read */
  ks: number;
  kl: number;
}

interface Frame {
  /** 0: map, 1: array */
  readonly t: 0 | 1;
  readonly c: Record<string, unknown> | unknown[];
  k: string;
  ks: number;
  kl: number;
  r: number;
  readonly n: Frame | null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const CID_BINARY_LENGTH = 37;

const requireBytes = (state: State, needed: number): void => {
  if (needed > state.b.length - state.p) throw new RangeError(`unexpected end of input`);
};

const readArgument = (state: State, info: number): number => {
  if (info < 24) return info;
  let arg: number;
  switch (info) {
    case 24:
      requireBytes(state, 1);
      arg = state.b[state.p++]!;
      if (arg < 24) throw new TypeError(`non-canonical argument encoding`);
      break;
    case 25:
      requireBytes(state, 2);
      arg = readUint16(state);
      if (arg < 0x100) throw new TypeError(`non-canonical argument encoding`);
      break;
    case 26:
      requireBytes(state, 4);
      arg = readUint32(state);
      if (arg < 0x10000) throw new TypeError(`non-canonical argument encoding`);
      break;
    case 27: {
      requireBytes(state, 8);
      const hi = readUint32(state);
      const lo = readUint32(state);
      if (hi > 0x1fffff) throw new RangeError(`can't decode integers beyond safe integer range`);
      arg = hi * 2 ** 32 + lo;
      if (arg < 0x100000000) throw new TypeError(`non-canonical argument encoding`);
      break;
    }
    default:
      throw new Error(`invalid argument encoding; got ${info}`);
  }
  return arg;
};

const readUint16 = (state: State): number => {
  const buf = state.b;
  const pos = state.p;
  state.p = pos + 2;
  return (buf[pos]! << 8) | buf[pos + 1]!;
};

const readUint32 = (state: State): number => {
  const buf = state.b;
  const pos = state.p;
  state.p = pos + 4;
  return ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!) >>> 0;
};

const readFloat64 = (state: State): number => {
  requireBytes(state, 8);
  const view = (state.v ??= new DataView(state.b.buffer, state.b.byteOffset, state.b.byteLength));
  const value = view.getFloat64(state.p);
  // DRISL forbids NaN and infinities; -0 and subnormals are finite and remain allowed.
  if (!Number.isFinite(value)) throw new RangeError(`NaN and Infinity values not supported`);
  state.p += 8;
  return value;
};

const readString = (state: State, length: number): string => {
  requireBytes(state, length);
  const start = state.p;
  state.p = start + length;
  return decodeUtf8(state.b, start, length);
};

// Bun's Buffer method, which reads any Uint8Array: one native call, no view made
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

const decodeUtf8 = (buf: Uint8Array, start: number, length: number): string => {
  const end = start + length;
  let high = 0;
  for (let i = start; i < end; i++) high |= buf[i]!;
  // ASCII (most strings: URIs, CIDs, dates, handles) reads the same as Latin-1, and is valid UTF-8
  if (high < 0x80) return latin1Slice.call(buf, start, end);
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    throw new TypeError(`input is not valid utf-8`);
  }
};

// Map keys: 512 slots, each remembering the bytes and string of the last key that hashed there.
const KEY_SLOTS = 512;
const MAX_CACHED_KEY = 24;
const cachedKeyBytes = new Array<Uint8Array | null>(KEY_SLOTS).fill(null);
const cachedKeyStrings = new Array<string>(KEY_SLOTS).fill('');

const readKey = (state: State, length: number): string => {
  if (length > MAX_CACHED_KEY) return readString(state, length);
  requireBytes(state, length);
  const buf = state.b;
  const start = state.p;
  let hash = length;
  let high = 0;
  for (let i = 0; i < length; i++) {
    const byte = buf[start + i]!;
    high |= byte;
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  if (high >= 0x80) return readString(state, length);
  const slot = (hash >>> 0) % KEY_SLOTS;
  const cached = cachedKeyBytes[slot]!;
  state.p = start + length;
  if (cached !== null && cached.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (cached[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cachedKeyStrings[slot]!;
  }
  const key = decodeUtf8(buf, start, length);
  cachedKeyBytes[slot] = buf.slice(start, start + length);
  cachedKeyStrings[slot] = key;
  return key;
};

const readCid = (state: State, length: number): CidLinkWrapper => {
  requireBytes(state, length);
  const buf = state.b;
  const at = state.p;
  // the checks of @atcute/cid's fromBinary: a 0x00 prefix, then CIDv1, dag-cbor or raw, sha-256, 32 bytes
  if (length !== CID_BINARY_LENGTH || buf[at] !== 0) throw new SyntaxError(`invalid binary cid`);
  if (buf[at + 1] !== 1) throw new RangeError(`incorrect cid version (got v${buf[at + 1]})`);
  if (buf[at + 2] !== 0x71 && buf[at + 2] !== 0x55) throw new RangeError(`incorrect cid codec`);
  if (buf[at + 3] !== 0x12) throw new RangeError(`incorrect cid digest codec`);
  if (buf[at + 4] !== 32) throw new RangeError(`incorrect cid digest size`);
  state.p = at + length;
  return new CidLinkWrapper(buf.subarray(at + 1, at + length));
};

const decodeStringKey = (state: State): string => {
  requireBytes(state, 1);
  const prelude = state.b[state.p++]!;
  const type = prelude >> 5;
  if (type !== 3) throw new TypeError(`expected map to only have string keys; got type ${type}`);
  const info = prelude & 0x1f;
  const length = info < 24 ? info : readArgument(state, info);
  state.ks = state.p;
  state.kl = length;
  return readKey(state, length);
};

/** Decodes the first DAG-CBOR value; returns it and the bytes after it (a view). */
export const decodeFirst = (buf: Uint8Array): [unknown, Uint8Array] => {
  const value = decodeAt(buf);
  return [value.value, buf.subarray(value.end)];
};

/** Decodes exactly one DAG-CBOR value; throws on anything after it. */
export const decode = (buf: Uint8Array): unknown => {
  const { value, end } = decodeAt(buf);
  if (end !== buf.length) throw new Error(`decoded value contains remainder`);
  return value;
};

const decodeAt = (buf: Uint8Array): { value: unknown; end: number } => {
  const len = buf.length;
  const state: State = { b: buf, v: null, p: 0, ks: 0, kl: 0 };
  let stack: Frame | null = null;
  let value: unknown;
  jump: while (state.p < len) {
    const prelude = buf[state.p++]!;
    const type = prelude >> 5;
    const info = prelude & 0x1f;
    const arg = type === 7 ? 0 : info < 24 ? info : readArgument(state, info);
    switch (type) {
      case 0:
        value = arg;
        break;
      case 1:
        value = -1 - arg;
        // -(2^53) slips through the argument's safe-integer cap; the encoder refuses it
        if ((value as number) < Number.MIN_SAFE_INTEGER) {
          throw new RangeError(`can't decode integers beyond safe integer range`);
        }
        break;
      case 2:
        requireBytes(state, arg);
        value = new BytesWrapper(buf.subarray(state.p, (state.p += arg)));
        break;
      case 3:
        value = readString(state, arg);
        break;
      case 4:
        if (arg > 0) {
          // each element needs at least one byte: a truncated header must not force a huge allocation
          requireBytes(state, arg);
          const array = new Array<unknown>(arg);
          stack = { t: 1, c: array, k: '', ks: 0, kl: 0, r: arg, n: stack };
          continue jump;
        }
        value = [];
        break;
      case 5: {
        const map: Record<string, unknown> = {};
        value = map;
        if (arg > 0) {
          const first = decodeStringKey(state);
          stack = { t: 0, c: map, k: first, ks: state.ks, kl: state.kl, r: arg, n: stack };
          continue jump;
        }
        break;
      }
      case 6:
        if (arg !== 42) throw new TypeError(`unsupported tag; got ${arg}`);
        {
          requireBytes(state, 1);
          const inner = buf[state.p++]!;
          const innerType = inner >> 5;
          if (innerType !== 2) throw new TypeError(`expected cid-link to be type 2 (bytes); got type ${innerType}`);
          value = readCid(state, readArgument(state, inner & 0x1f));
        }
        break;
      case 7:
        switch (info) {
          case 20:
          case 21:
            value = info === 21;
            break;
          case 22:
            value = null;
            break;
          case 27:
            value = readFloat64(state);
            break;
          default:
            throw new Error(`invalid simple value; got ${info}`);
        }
        break;
      default:
        throw new TypeError(`invalid type; got ${type}`);
    }
    while (stack !== null) {
      if (stack.t === 0) {
        const map = stack.c as Record<string, unknown>;
        const key = stack.k;
        if (key === '__proto__') {
          // guard against prototype pollution (CWE-1321)
          Object.defineProperty(map, key, { enumerable: true, configurable: true, writable: true });
        }
        map[key] = value;
      } else {
        const array = stack.c as unknown[];
        array[array.length - stack.r] = value;
      }
      if (--stack.r) {
        if (stack.t === 0) {
          const prevStart = stack.ks;
          const prevLength = stack.kl;
          stack.k = decodeStringKey(state);
          const curStart = state.ks;
          const curLength = state.kl;
          // canonical order: by UTF-8 byte length, then bytewise
          let cmp = curLength - prevLength;
          if (cmp === 0) {
            for (let i = 0; i < curLength; i++) {
              cmp = buf[curStart + i]! - buf[prevStart + i]!;
              if (cmp !== 0) break;
            }
          }
          if (cmp <= 0) throw new TypeError(`map keys are not in canonical order or contain duplicates`);
          stack.ks = curStart;
          stack.kl = curLength;
        }
        continue jump;
      }
      value = stack.c;
      stack = stack.n;
    }
    return { value, end: state.p };
  }
  throw new RangeError(`unexpected end of input`);
};
