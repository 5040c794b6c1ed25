/**
 * AT-URIs of records, as the compact references the tables store.
 *
 * `parseAtUri` accepts only `at://<did>/<collection>/<rkey>`: a record pointer whose authority is
 * a DID, whose collection is an NSID and whose record key is one, as src/lib/syntax.ts checks
 * them (test/interop/syntax.test.ts runs the interop vectors through both). Anything else (a handle
 * authority, a bare repo, a query or fragment) is `null`, for the caller to count as a bad
 * reference. One regular expression does the work: this runs for every like, repost, reply and
 * quote, and calling the three syntax checks instead costs about twice as much.
 */

export interface RecordRef {
  readonly did: string;
  readonly collection: string;
  readonly rkey: string;
}

// did: syntax.isDid; collection: 2+ domain labels (1-63 of [a-zA-Z0-9-], no hyphen at either end,
// the first starting with a letter) and a name segment; rkey: syntax.isRecordKey but "." and "..".
// Backtracking stays bounded: no label can contain the delimiter after it.
const AT_URI =
  /^at:\/\/(did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-])\/((?=[a-zA-Z])(?:(?!-)[a-zA-Z0-9-]{1,63}(?<!-)\.){2,}[a-zA-Z][a-zA-Z0-9]{0,62})\/([a-zA-Z0-9._~:-]{1,512})$/;
const MAX_DID_LENGTH = 2048;
const MAX_NSID_LENGTH = 317;

export function parseAtUri(uri: string): RecordRef | null {
  const match = AT_URI.exec(uri);
  if (!match) return null;
  const [, did, collection, rkey] = match;
  if (did === undefined || collection === undefined || rkey === undefined) return null;
  if (did.length > MAX_DID_LENGTH || collection.length > MAX_NSID_LENGTH || rkey === '.' || rkey === '..') return null;
  return { did, collection, rkey };
}
