/**
 * The interop test vectors as table rows for `test.each`.
 *
 * `syntaxVectors(file)` reads one of `syntax/*.txt` (one vector a line; blank lines and lines
 * starting with `#` are comments; nothing is trimmed, since leading and trailing spaces are part of
 * some invalid vectors) and returns `[name, vector]` rows whose name gives the file's line and a
 * printable form of the vector, so a failing test names it. `Expectations` lists, for one check,
 * the vectors it treats otherwise than the file says, each with the reason; `expectationProblems`
 * keeps those lists honest (every listed vector exists and is on the side it claims). `fromJson`
 * turns a JSON vector into the values DAG-CBOR carries, to send it down the firehose's path.
 */
import { toBytes, toCidLink } from '@atcute/cbor';
import { fromString as parseCid } from '@atcute/cid';

import { isObject } from '../../src/lib/is-object.ts';
import { interopFile } from '../support/interop.ts';

export type VectorRow = [name: string, vector: string];

/** `"…"` with control and non-ASCII characters escaped, long vectors shortened. */
export const show = (vector: string): string => {
  const quoted = JSON.stringify(vector).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return quoted.length <= 72 ? quoted : `${quoted.slice(0, 48)}…" (${vector.length} chars)`;
};

export const syntaxVectors = (file: string): VectorRow[] =>
  interopFile(`syntax/${file}`)
    .split('\n')
    .flatMap((line, index): VectorRow[] => (line === '' || line.startsWith('#') ? [] : [[`${file}:${index + 1} ${show(line)}`, line]]));

export interface Expectations {
  /** valid vectors the check refuses on purpose, and why */
  readonly refusesValid?: Readonly<Record<string, string>>;
  /** invalid vectors the check lets through on purpose, and why */
  readonly acceptsInvalid?: Readonly<Record<string, string>>;
}

/** Listed vectors that are not in the files, or not on the side the list claims. */
export const expectationProblems = (expectations: Expectations, valid: readonly VectorRow[], invalid: readonly VectorRow[]): string[] => {
  const validSet = new Set(valid.map(([, vector]) => vector));
  const invalidSet = new Set(invalid.map(([, vector]) => vector));
  return [
    ...Object.keys(expectations.refusesValid ?? {}).filter((vector) => !validSet.has(vector)).map((vector) => `not a valid vector: ${show(vector)}`),
    ...Object.keys(expectations.acceptsInvalid ?? {}).filter((vector) => !invalidSet.has(vector)).map((vector) => `not an invalid vector: ${show(vector)}`),
  ];
};

/** atproto JSON -> the values @atcute/cbor encodes (a lone {"$link"} becomes a CID link, {"$bytes"} bytes). */
export const fromJson = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(fromJson);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && typeof value.$link === 'string') return toCidLink(parseCid(value.$link));
  if (keys.length === 1 && typeof value.$bytes === 'string') return toBytes(new Uint8Array(Buffer.from(value.$bytes, 'base64')));
  return Object.fromEntries(keys.map((key) => [key, fromJson(value[key])]));
};
