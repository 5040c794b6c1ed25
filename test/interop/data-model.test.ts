/**
 * atproto interop vectors, data-model/*.json, against Aqueduct's DAG-CBOR decoder and its check of
 * records that arrive as JSON.
 *
 * data-model-fixtures.json: each CBOR block decodes (src/firehose/dag-cbor-decode.ts) to the
 * vector's JSON once serialized the way the pipeline stores records (JSON.stringify, links as
 * {"$link"}, bytes as {"$bytes"}); it decodes as @atcute/cbor does and re-encodes to the same bytes;
 * its SHA-256 is the digest of the vector's CID (src/firehose/sha256.ts, as commit-reader checks
 * blocks). data-model-valid/invalid.json: JSON records, checked by src/lib/data-model.ts and by the
 * profile fetcher (the one place a record arrives as JSON: a PDS's getRecord answer) with the
 * vector's fields beside a profile's; the valid ones also survive DAG-CBOR and back.
 */
import { describe, expect, test } from 'bun:test';
import * as atcute from '@atcute/cbor';
import { fromDigest, fromString as parseCid, toString as cidToString } from '@atcute/cid';

import { decode } from '../../src/firehose/dag-cbor-decode.ts';
import { sha256, sha256Equals } from '../../src/firehose/sha256.ts';
import { readAnswer } from '../../src/identity/profile-fetcher.ts';
import { isObject } from '../../src/lib/is-object.ts';
import { isDataModelRecord, MAX_DEPTH } from '../../src/lib/data-model.ts';
import { interopJson } from '../support/interop.ts';
import { fromJson } from './vectors.ts';

interface Fixture {
  readonly json: unknown;
  readonly cbor_base64: string;
  readonly cid: string;
}
interface Example {
  readonly note: string;
  readonly json: unknown;
}

const FIXTURES = interopJson<Fixture[]>('data-model/data-model-fixtures.json');
const VALID = interopJson<Example[]>('data-model/data-model-valid.json');
const INVALID = interopJson<Example[]>('data-model/data-model-invalid.json');

const bytesOf = (fixture: Fixture) => Uint8Array.from(Buffer.from(fixture.cbor_base64, 'base64'));
/** What the pipeline stores for a decoded record. */
const storedJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));


const DID = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz';
/** A getRecord answer whose profile carries the vector's fields (or is the vector, when not an object). */
const profileAnswer = (json: unknown): string =>
  JSON.stringify({
    uri: `at://${DID}/app.bsky.actor.profile/self`,
    cid: 'bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq',
    value: isObject(json) ? { $type: 'app.bsky.actor.profile', ...json } : json,
  });

const fixtureRows = FIXTURES.map((fixture, index): [string, Fixture] => [`fixture ${index} (${fixture.cid})`, fixture]);
const exampleRows = (examples: readonly Example[]) => examples.map((example, index): [string, Example] => [`${index}: ${example.note}`, example]);

describe('data-model-fixtures.json', () => {
  test('the file has vectors', () => expect(FIXTURES.length).toBeGreaterThan(0));

  test.each(fixtureRows)('%s decodes to the JSON of the vector', (_name, fixture) => {
    expect(storedJson(decode(bytesOf(fixture)))).toEqual(fixture.json);
  });

  test.each(fixtureRows)('%s decodes as @atcute/cbor does', (_name, fixture) => {
    const bytes = bytesOf(fixture);
    expect(decode(bytes)).toStrictEqual(atcute.decode(bytes));
  });

  test.each(fixtureRows)('%s: the decoded value and the JSON both encode to the same bytes', (_name, fixture) => {
    const bytes = bytesOf(fixture);
    expect(atcute.encode(decode(bytes))).toEqual(bytes);
    expect(atcute.encode(fromJson(fixture.json))).toEqual(bytes);
  });

  test.each(fixtureRows)('%s: the CID is the dag-cbor SHA-256 of the bytes', (_name, fixture) => {
    const bytes = bytesOf(fixture);
    const cid = parseCid(fixture.cid);
    expect(cid.codec).toBe(0x71);
    expect(sha256Equals(bytes, cid.digest.contents)).toBe(true);
    expect(cidToString(fromDigest(0x71, sha256(bytes)))).toBe(fixture.cid);
  });

  test.each(fixtureRows)('%s is data model, decoded and as JSON', (_name, fixture) => {
    expect(isDataModelRecord(decode(bytesOf(fixture)))).toBe(true);
    expect(isDataModelRecord(fixture.json)).toBe(true);
  });
});

describe('data-model-valid.json', () => {
  test('the file has vectors', () => expect(VALID.length).toBeGreaterThan(0));

  test.each(exampleRows(VALID))('%s: isDataModelRecord', (_name, example) => {
    expect(isDataModelRecord(example.json)).toBe(true);
  });

  test.each(exampleRows(VALID))('%s: a profile carrying it is taken', (_name, example) => {
    expect(readAnswer(profileAnswer(example.json), DID).kind).toBe('found');
  });

  test.each(exampleRows(VALID))('%s: survives DAG-CBOR and back', (_name, example) => {
    expect(storedJson(decode(atcute.encode(fromJson(example.json))))).toEqual(example.json);
  });
});

describe('data-model-invalid.json', () => {
  test('the file has vectors', () => expect(INVALID.length).toBeGreaterThan(0));

  test.each(exampleRows(INVALID))('%s: not isDataModelRecord', (_name, example) => {
    expect(isDataModelRecord(example.json)).toBe(false);
  });

  test.each(exampleRows(INVALID))('%s: a profile carrying it is refused', (_name, example) => {
    // a non-object is no profile (the lexicon says so); the vectors' fields are none the lexicon types
    const reason = isObject(example.json) ? 'data-model' : 'lexicon';
    expect(readAnswer(profileAnswer(example.json), DID)).toEqual({ kind: 'invalid', reason });
  });
});

describe('isDataModelRecord beyond the vectors', () => {
  test.each([
    ['a CID link and bytes as decoded DAG-CBOR', { a: atcute.toCidLink(parseCid('bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq')), b: atcute.toBytes(new Uint8Array([1])) }, true],
    ['bytes with padding', { b: { $bytes: 'AQ==' } }, true],
    ['an array at the top', [1, 2], false],
    ['NaN', { a: Number.NaN }, false],
    ['an unsafe integer', { a: 2 ** 53 }, false],
    ['undefined', { a: undefined }, false],
    ['a Date', { a: new Date(0) }, false],
    ['bytes that are not base64', { b: { $bytes: 'not base64!' } }, false],
    ['a blob whose size is a float', { blb: { $type: 'blob', ref: { $link: 'bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity' }, mimeType: 'image/jpeg', size: 1.5 } }, false],
  ] as const)('%s', (_name, value, expected) => {
    expect(isDataModelRecord(value)).toBe(expected);
  });

  test('nesting is bounded, not a stack overflow', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = [value];
      return { a: value };
    };
    expect(isDataModelRecord(nested(MAX_DEPTH - 1))).toBe(true);
    expect(isDataModelRecord(nested(MAX_DEPTH))).toBe(false);
    expect(isDataModelRecord(nested(100_000))).toBe(false);
  });
});
