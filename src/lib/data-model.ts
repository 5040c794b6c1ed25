/**
 * The atproto data model (https://atproto.com/specs/data-model), checked on a record that arrived
 * as JSON before it is stored.
 *
 * `isDataModelRecord(value)` promises: pure; true only for an object whose values, all the way
 * down, are null, booleans, integers (safe ones: no floats), strings, arrays and objects, bytes and
 * CID links; bytes and links either as @atcute/cbor's wrappers (decoded DAG-CBOR) or in their JSON
 * forms, `{"$bytes": <base64>}` and `{"$link": <CID>}` with nothing beside them. A `$type` is a
 * non-empty string; a blob (`"$type": "blob"`) has a CID link `ref`, a string `mimeType` and an
 * integer `size`. Nesting deeper than MAX_DEPTH is refused, so hostile input cannot exhaust the
 * stack. Lexicon rules (which fields, which types) are the lexicon validator's business.
 */
import { BytesWrapper, CidLinkWrapper } from '@atcute/cbor';
import { fromString as parseCid } from '@atcute/cid';

export const MAX_DEPTH = 128;

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

const isCidString = (value: unknown): boolean => {
  if (typeof value !== 'string') return false;
  try {
    parseCid(value);
    return true;
  } catch {
    return false;
  }
};

const isLink = (value: unknown): boolean =>
  value instanceof CidLinkWrapper ||
  (typeof value === 'object' && value !== null && isPlainObject(value) && Object.keys(value).length === 1 && isCidString(value.$link));

const isValue = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return true;
    case 'number':
      return Number.isSafeInteger(value);
    case 'object':
      if (value === null || value instanceof BytesWrapper || value instanceof CidLinkWrapper) return true;
      if (depth >= MAX_DEPTH) return false;
      if (Array.isArray(value)) return value.every((item) => isValue(item, depth + 1));
      return isPlainObject(value) && isMap(value, depth);
    default:
      return false;
  }
};

const isMap = (map: Record<string, unknown>, depth: number): boolean => {
  if ('$link' in map) return isLink(map);
  if ('$bytes' in map) return Object.keys(map).length === 1 && typeof map.$bytes === 'string' && BASE64_RE.test(map.$bytes);
  if ('$type' in map) {
    if (typeof map.$type !== 'string' || map.$type === '') return false;
    if (map.$type === 'blob' && !(isLink(map.ref) && typeof map.mimeType === 'string' && Number.isSafeInteger(map.size))) return false;
  }
  for (const key in map) if (!isValue(map[key], depth + 1)) return false;
  return true;
};

/** A record: an object of data-model values. */
export const isDataModelRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && isValue(value, 0);
