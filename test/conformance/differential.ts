/**
 * The differential test's comparison: one XRPC call made to the reference AppView and to
 * Aqueduct, the two answers compared field by field.
 *
 * Promises: every leaf (a string, number, boolean or null, and every present-or-absent key) is
 * one field compared, counted; a difference names its JSON path and both values. A few fields
 * cannot be equal by construction and are compared by what they mean instead, each with its
 * reason (IGNORED below); everything else must be equal, array order included.
 */
import { xrpcRaw, type CallOptions } from './pds-client.ts';

export interface Difference {
  readonly call: string;
  readonly path: string;
  readonly reference: unknown;
  readonly aqueduct: unknown;
  /** the reference's object that holds the field (a post or profile view names its subject) */
  readonly holder?: Record<string, unknown>;
}

export interface Comparison {
  fields: number;
  readonly differences: Difference[];
  /** both answers of every call that differed, to read when a test fails */
  readonly answers?: { call: string; reference: unknown; aqueduct: unknown }[];
}

/**
 * Fields whose values differ between two correct AppViews, by key, and how each is compared:
 *   indexedAt: when that AppView indexed the record: its own clock (compared: both present).
 *   cursor: opaque, each AppView encodes its own position (compared: both present or both absent).
 *   avatar, banner, thumb, fullsize, playlist: image URLs on each AppView's own CDN template
 *     (IMAGE_URL_TEMPLATE): compared by the blob CID they name.
 */
const PRESENCE_ONLY = new Set(['indexedAt', 'cursor']);
const BY_CID = new Set(['avatar', 'banner', 'thumb', 'fullsize', 'playlist']);
export const IGNORED: Readonly<Record<string, string>> = {
  indexedAt: 'the time that AppView indexed the record (its own clock): compared for presence',
  cursor: "opaque, each AppView's own encoding: compared for presence",
  avatar: "an image URL on each AppView's CDN: compared by the blob CID it names",
  banner: "an image URL on each AppView's CDN: compared by the blob CID it names",
  thumb: "an image URL on each AppView's CDN: compared by the blob CID it names",
  fullsize: "an image URL on each AppView's CDN: compared by the blob CID it names",
  playlist: "a video URL on each AppView's CDN: compared by the blob CID it names",
};

const cidIn = (value: unknown): unknown => (typeof value === 'string' ? (/bafk[a-z2-7]+/.exec(value)?.[0] ?? value) : value);

function compare(call: string, path: string, reference: unknown, aqueduct: unknown, out: Comparison, holder?: Record<string, unknown>): void {
  const key = path.slice(path.lastIndexOf('.') + 1);
  if (PRESENCE_ONLY.has(key)) {
    out.fields++;
    if ((reference === undefined) !== (aqueduct === undefined)) out.differences.push({ call, path, reference, aqueduct });
    return;
  }
  if (BY_CID.has(key)) {
    out.fields++;
    if (cidIn(reference) !== cidIn(aqueduct)) out.differences.push({ call, path, reference, aqueduct });
    return;
  }
  if (Array.isArray(reference) && Array.isArray(aqueduct)) {
    out.fields++;
    if (reference.length !== aqueduct.length) {
      out.differences.push({ call, path: `${path}.length`, reference: reference.length, aqueduct: aqueduct.length });
    }
    for (let i = 0; i < Math.min(reference.length, aqueduct.length); i++) compare(call, `${path}[${i}]`, reference[i], aqueduct[i], out);
    return;
  }
  if (isObject(reference) && isObject(aqueduct)) {
    for (const name of new Set([...Object.keys(reference), ...Object.keys(aqueduct)])) {
      compare(call, `${path}.${name}`, reference[name], aqueduct[name], out, reference);
    }
    return;
  }
  out.fields++;
  if (!Bun.deepEquals(reference, aqueduct)) out.differences.push({ call, path, reference, aqueduct, ...(holder ? { holder } : {}) });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export interface Services {
  readonly reference: string;
  readonly aqueduct: string;
}

/** One call to both; the status, and the body (error name and all) compared. */
export async function compareCall(services: Services, nsid: string, options: CallOptions, out: Comparison, auth?: { reference: string; aqueduct: string }): Promise<void> {
  const call = `${nsid} ${JSON.stringify(options.query ?? {})}`;
  const [reference, aqueduct] = await Promise.all([
    xrpcRaw(services.reference, nsid, auth ? { ...options, authorization: auth.reference } : options),
    xrpcRaw(services.aqueduct, nsid, auth ? { ...options, authorization: auth.aqueduct } : options),
  ]);
  const before = out.differences.length;
  compare(call, 'status', reference.status, aqueduct.status, out);
  if (reference.status === 200 && aqueduct.status === 200) compare(call, 'body', reference.body, aqueduct.body, out);
  else compare(call, 'body.error', errorOf(reference.body), errorOf(aqueduct.body), out);
  if (out.differences.length > before) out.answers?.push({ call, reference: reference.body, aqueduct: aqueduct.body });
}

const errorOf = (body: unknown): unknown => (isObject(body) ? body.error : body);
