/**
 * AT-URIs of records, as the compact references the tables store.
 *
 * `parseAtUri` accepts only `at://<did>/<collection>/<rkey>`: a record pointer whose authority is
 * a DID. Anything else (a handle authority, a bare repo, a query or fragment) is `null`, for the
 * caller to count as a bad reference.
 */

export interface RecordRef {
  readonly did: string;
  readonly collection: string;
  readonly rkey: string;
}

const AT_URI = /^at:\/\/(did:[a-z]+:[a-zA-Z0-9._:%-]+)\/([a-zA-Z0-9.-]+)\/([a-zA-Z0-9._~:-]{1,512})$/;

export function parseAtUri(uri: string): RecordRef | null {
  const match = AT_URI.exec(uri);
  if (!match) return null;
  const [, did, collection, rkey] = match;
  if (did === undefined || collection === undefined || rkey === undefined || rkey === '.' || rkey === '..') return null;
  return { did, collection, rkey };
}
