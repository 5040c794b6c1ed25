/**
 * Finding actors and records by what clients send: DIDs, handles and AT-URIs.
 *
 * `resolveActors` maps identifiers (DID or handle; handles only when verified, case-insensitive)
 * to actor rows in one statement. `resolveUris` does the same for the authorities of AT-URIs and
 * returns record keys. Neither trusts its input: malformed identifiers simply do not resolve (the
 * syntax checks are src/lib/syntax.ts; a handle may carry a leading "@", as clients type it).
 */
import type { Db, RecordKey } from '../../hydration/loaders.ts';
import { isDid, isHandle, isNsid, isRecordKey } from '../../lib/syntax.ts';

export interface ActorRef {
  readonly id: number;
  readonly did: string;
  readonly handle: string | null;
  readonly status: string | null;
}

const AT_URI_RE = /^at:\/\/([^/?#]+)\/([^/]+)\/([^/]+)$/;

export function normalizeIdentifier(identifier: string): string | null {
  if (isDid(identifier)) return identifier;
  const handle = identifier.replace(/^@/, '').toLowerCase();
  return isHandle(handle) ? handle : null;
}

/** identifier (as given) -> actor, for the identifiers that resolve. */
export async function resolveActors(db: Db, identifiers: readonly string[]): Promise<Map<string, ActorRef>> {
  const normalized = new Map<string, string>();
  for (const identifier of identifiers) {
    const value = normalizeIdentifier(identifier);
    if (value !== null) normalized.set(identifier, value);
  }
  const values = [...new Set(normalized.values())];
  const out = new Map<string, ActorRef>();
  if (values.length === 0) return out;
  const dids = values.filter((value) => value.startsWith('did:'));
  const handles = values.filter((value) => !value.startsWith('did:'));
  const rows = await db.run(
    (sql) => sql`
      select id, did, handle, status from actors where did = any(${dids}::text[])
      union
      select id, did, handle, status from actors where handle = any(${handles}::text[])`,
  );
  const byValue = new Map<string, ActorRef>();
  for (const row of rows) {
    const actor: ActorRef = { id: row.id, did: row.did, handle: row.handle, status: row.status };
    byValue.set(actor.did, actor);
    if (actor.handle) byValue.set(actor.handle, actor);
  }
  for (const [identifier, value] of normalized) {
    const actor = byValue.get(value);
    if (actor) out.set(identifier, actor);
  }
  return out;
}

export interface ParsedUri {
  readonly authority: string;
  readonly collection: string;
  readonly rkey: string;
}

export function parseUri(uri: string): ParsedUri | null {
  const match = AT_URI_RE.exec(uri);
  if (!match || !isNsid(match[2]) || !isRecordKey(match[3])) return null;
  return { authority: match[1]!, collection: match[2]!, rkey: match[3]! };
}

export interface ResolvedUri extends RecordKey {
  readonly uri: string;
  readonly collection: string;
  readonly actor: ActorRef;
}

/** uri (as given) -> record key, for the URIs whose authority resolves. */
export async function resolveUris(db: Db, uris: readonly string[]): Promise<Map<string, ResolvedUri>> {
  const parsed = new Map<string, ParsedUri>();
  for (const uri of uris) {
    const parts = parseUri(uri);
    if (parts) parsed.set(uri, parts);
  }
  const actors = await resolveActors(db, [...new Set([...parsed.values()].map((parts) => parts.authority))]);
  const out = new Map<string, ResolvedUri>();
  for (const [uri, parts] of parsed) {
    const actor = actors.get(parts.authority);
    if (actor) out.set(uri, { uri, collection: parts.collection, actorId: actor.id, rkey: parts.rkey, actor });
  }
  return out;
}
