import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Database } from '../../src/db/database.ts';
import { intArray, textArray } from '../../src/db/pg-array.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let server: TestDatabase;
let db: Database;
beforeAll(async () => {
  server = await createTestDatabase('pgarray');
  db = new Database({ url: server.url, poolSize: 2 });
});
afterAll(async () => {
  await db.close();
  await server.drop();
});

/** What PostgreSQL reads from the literal, element by element, in order. */
async function readText(literal: string): Promise<Array<string | null>> {
  const rows = await db.run((sql) => sql<{ value: string | null }[]>`select value from unnest(${literal}::text[]) with ordinality as t(value, n) order by n`);
  return rows.map((row) => row.value);
}

const TEXT_CASES: ReadonlyArray<readonly [string, ReadonlyArray<string | null>]> = [
  ['empty array', []],
  ['record keys, CIDs, DIDs, timestamps', ['3kaaaaaaaaa22', 'self', 'a:b~c.d_e-f', 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm', 'did:plc:abc', '2026-11-27T10:00:00.000Z']],
  ['null among values', [null, 'a', null]],
  ['only null', [null]],
  ['NULL, null and empty strings are strings', ['NULL', 'null', '', ' ', 'Null']],
  ['array syntax inside strings', ['{a,b}', '{', '}', ',', 'a,b', '"', '""', '{"x":1}']],
  ['backslashes and quotes', ['\\', '\\\\', 'a\\"b', '"quoted"', 'end\\', '\\n is not a newline']],
  ['control characters', ['line\nbreak', 'tab\there', 'cr\r', '\u0001\u001f', '\b\f']],
  ['whitespace kept', ['  leading', 'trailing  ', '\t', '\n']],
  ['non-ASCII', ['émoji 🎉', '日本語', '\u2028\u2029', 'Ünïcödé "q" \\ 🎉']],
  ['JSON documents', [JSON.stringify({ text: 'say "hi"\nnow', path: 'C:\\dir', e: '\u0001' }), null, '[]']],
  ['one string needing escapes among plain ones', ['plain', 'also plain', 'not "plain"', null]],
];

describe('textArray', () => {
  for (const [name, values] of TEXT_CASES) {
    test(`round trip: ${name}`, async () => {
      expect(await readText(textArray(values))).toEqual([...values]);
    });
  }

  test('round trip: a nested literal (text[] per row) inside a text[] column', async () => {
    const inner = [['en', 'pt-BR'], ['x "y"', 'a\\b', 'null'], []].map(textArray);
    const rows = await db.run((sql) => sql<{ value: string[] }[]>`select v::text[] as value from unnest(${textArray(inner)}::text[]) with ordinality as t(v, n) order by n`);
    expect(rows.map((row) => row.value)).toEqual([['en', 'pt-BR'], ['x "y"', 'a\\b', 'null'], []]);
  });

  test('a string PostgreSQL cannot hold (U+0000) is refused, as postgres.js would send it', async () => {
    await expect(readText(textArray(['a\u0000b']))).rejects.toThrow();
  });
});

describe('intArray', () => {
  test('round trip: integers, negatives, null', async () => {
    const values = [0, 1, -1, 2_147_483_647, -2_147_483_648, null, 42];
    const rows = await db.run((sql) => sql<{ value: number | null }[]>`select value from unnest(${intArray(values)}::int4[]) with ordinality as t(value, n) order by n`);
    expect(rows.map((row) => row.value)).toEqual(values);
  });

  test('round trip: empty', async () => {
    const rows = await db.run((sql) => sql`select count(*)::int as n from unnest(${intArray([])}::int4[])`);
    expect(rows[0]?.n).toBe(0);
  });
});
