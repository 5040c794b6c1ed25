/**
 * PostgreSQL array literals for the columns of bulk statements (`unnest(${...}::int4[], ...)`).
 *
 * postgres.js passes a string given for an array parameter through unchanged, and otherwise
 * serializes, escapes and quotes every element in JavaScript (timestamps through a `Date` and
 * back). A literal built here costs about one native `JSON.stringify` per column. Both builders
 * are exact: PostgreSQL reads back the values given, whatever the strings contain (a string
 * with U+0000 is refused by PostgreSQL, as it is when postgres.js sends it).
 */

/** `{1,-2,null}`. For ids and counts: integers or null (NaN and Infinity would read as null). */
export function intArray(values: ReadonlyArray<number | null>): string {
  // JSON writes an integer as PostgreSQL reads it, and null unquoted, which PostgreSQL reads as NULL.
  const json = JSON.stringify(values);
  return `{${json.slice(1, -1)}}`;
}

/** `{"a","b \"c\"",null}` */
export function textArray(values: ReadonlyArray<string | null>): string {
  const json = JSON.stringify(values);
  // Without a backslash, no string had anything to escape, and JSON's quoting is PostgreSQL's:
  // the common case of keys, CIDs, DIDs and timestamps, one native call for the whole column.
  if (!json.includes('\\')) return `{${json.slice(1, -1)}}`;
  // Otherwise JSON's escapes (\n, \u0001, ...) are not PostgreSQL's: inside double quotes
  // PostgreSQL only needs `\` before `"` and `\`.
  let literal = '{';
  for (let index = 0; index < values.length; index++) {
    const value = values[index] ?? null;
    if (index > 0) literal += ',';
    literal += value === null ? 'null' : `"${value.includes('\\') || value.includes('"') ? value.replaceAll('\\', '\\\\').replaceAll('"', '\\"') : value}"`;
  }
  return `${literal}}`;
}
