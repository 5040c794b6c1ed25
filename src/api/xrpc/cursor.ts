/**
 * Opaque pagination cursors.
 *
 * A cursor is the sort key of the last item of a page (a timestamp with microseconds, then
 * integers and record keys as tie-breakers), JSON-encoded and base64url'ed so clients treat it as
 * opaque. `decodeCursor` checks every part's type against the expected shape and throws
 * `InvalidRequest` naming `cursor` for anything else: a cursor is untrusted input.
 */
import { invalid } from './params.ts';

export type CursorPart = 'time' | 'int' | 'text';
type PartValue<P extends CursorPart> = P extends 'int' ? number : string;
export type CursorValues<S extends readonly CursorPart[]> = { [K in keyof S]: PartValue<S[K]> };

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const MAX_CURSOR_CHARS = 2_000;

export function encodeCursor(values: ReadonlyArray<string | number>): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** undefined when no cursor was given; the decoded parts otherwise. */
export function decodeCursor<const S extends readonly CursorPart[]>(cursor: string | undefined, shape: S): CursorValues<S> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid('cursor is not valid');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid('cursor is not valid');
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length) throw invalid('cursor is not valid');
  shape.forEach((part, index) => {
    const value: unknown = parsed[index];
    const ok =
      part === 'int'
        ? Number.isSafeInteger(value)
        : part === 'time'
          ? typeof value === 'string' && TIME_RE.test(value) && !Number.isNaN(Date.parse(value))
          : typeof value === 'string' && value.length <= 512;
    if (!ok) throw invalid('cursor is not valid');
  });
  return parsed as CursorValues<S>;
}
