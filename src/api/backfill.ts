/**
 * The operator's backfill action: `POST /api/backfill` with a JSON body
 * `{ all?: boolean, hosts?: string[], dids?: string[], retryFailed?: boolean }` queues that work
 * (src/backfill/backfill.ts `request`) and answers 202 `{ queued: { repos, hosts } }`: how many
 * repos and hosts were added or queued again; the imports run afterwards, watched at
 * /api/metrics/backfill. ADMIN_TOKEN is checked before this (admin-auth.ts: an action needs it set
 * and sent as Bearer).
 *
 * Promises: the body is read up to MAX_BODY_BYTES (1 MiB, else 413) as UTF-8 JSON sent as
 * `application/json` (else 415, so a plain HTML form elsewhere cannot post here); it is validated
 * strictly by `parseBackfillRequest`, a pure function: an object with only the four fields, each
 * of its type, at most MAX_DIDS DIDs (atproto DID syntax) and MAX_HOSTS hosts (`host[:port]`,
 * lower-cased), asking for something. Anything else is 400 `InvalidRequest` naming the field.
 */
import { Elysia } from 'elysia';
import type { BackfillRequest } from '../backfill/backfill.ts';
import { isDid } from '../lib/syntax.ts';
import { XrpcError } from './errors.ts';
import type { BackfillSource } from './metrics/metrics-service.ts';
import { BodyTooLarge, readBoundedBytes } from '../identity/http-get.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_DIDS = 10_000;
export const MAX_HOSTS = 1_000;

const FIELDS: ReadonlySet<string> = new Set(['all', 'hosts', 'dids', 'retryFailed']);
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^(${LABEL}(?:\\.${LABEL})*)(?::([1-9][0-9]{0,4}))?$`, 'i');
const MAX_HOST_NAME = 253;

export function backfillRoutes(backfill: BackfillSource) {
  return new Elysia({ name: 'backfill' }).post(
    '/api/backfill',
    async ({ request, set }) => {
      const wanted = parseBackfillRequest(await readJson(request));
      const queued = await backfill.request(wanted);
      set.status = 202;
      set.headers['cache-control'] = 'no-store';
      return { queued: { repos: queued.repos, hosts: queued.hosts } };
    },
    { parse: 'none' },
  );
}

/** The request a body asks for, or an XrpcError 400 saying what is wrong with it. */
export function parseBackfillRequest(body: unknown): BackfillRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) invalid('the body must be a JSON object');
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!FIELDS.has(key)) invalid(`unknown field ${quote(key)}: expected all, hosts, dids or retryFailed`);
  }
  const all = optionalBoolean(fields, 'all');
  const retryFailed = optionalBoolean(fields, 'retryFailed');
  const dids = optionalStrings(fields, 'dids', MAX_DIDS, (did) => (isDid(did) ? did : null), 'a DID (did:method:id)');
  const hosts = optionalStrings(fields, 'hosts', MAX_HOSTS, hostName, 'a host name with an optional port, such as pds.example.com or pds.example.com:2583 (no scheme, no path)');
  if (!all && !retryFailed && !dids?.length && !hosts?.length) invalid('nothing to queue: give all: true, some hosts, some dids or retryFailed: true');
  return {
    ...(all ? { all } : {}),
    ...(hosts?.length ? { hosts } : {}),
    ...(dids?.length ? { dids } : {}),
    ...(retryFailed ? { retryFailed } : {}),
  };
}

/** `host[:port]` lower-cased, or null when it is not one. */
export function hostName(value: string): string | null {
  const match = HOST.exec(value);
  if (match === null || (match[1] ?? '').length > MAX_HOST_NAME) return null;
  if (match[2] !== undefined && Number(match[2]) > 65_535) return null;
  return value.toLowerCase();
}

function optionalBoolean(fields: Record<string, unknown>, name: string): boolean | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') invalid(`${name} must be true or false`);
  return value;
}

function optionalStrings(fields: Record<string, unknown>, name: string, max: number, check: (value: string) => string | null, what: string): string[] | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) invalid(`${name} must be an array of strings`);
  if (value.length > max) invalid(`${name} has ${value.length} entries: at most ${max} at once`);
  return value.map((entry: unknown, index) => {
    if (typeof entry !== 'string') invalid(`${name}[${index}] must be a string`);
    const checked = check(entry);
    if (checked === null) invalid(`${name}[${index}] ${quote(entry)} is not ${what}`);
    return checked;
  });
}

async function readJson(request: Request): Promise<unknown> {
  const type = (request.headers.get('content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new XrpcError(415, 'UnsupportedMediaType', 'send the body as Content-Type: application/json');
  const bytes = await readBounded(request, MAX_BODY_BYTES);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    invalid('the body is not UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    invalid('the body is not JSON');
  }
}

async function readBounded(request: Request, maxBytes: number): Promise<Uint8Array> {
  try {
    return await readBoundedBytes(request, maxBytes);
  } catch (error) {
    if (error instanceof BodyTooLarge) throw new XrpcError(413, 'PayloadTooLarge', `the body is larger than ${maxBytes} bytes`);
    throw error;
  }
}

/** A value for a message: JSON-quoted and cut to 80 characters. */
function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function invalid(message: string): never {
  throw new XrpcError(400, 'InvalidRequest', message);
}
