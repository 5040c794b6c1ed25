// profile-fetcher: an actor's `app.bsky.actor.profile/self` record from their PDS, for actors whose
// profile has not come through the firehose.
//
// Owns the getRecord request and the checks on its answer. Promises: the answer is untrusted and
// comes back as one of three results: 'found' (the record is atproto data model JSON, see
// lib/data-model.ts, and passed the same lexicon and datetime checks as firehose records, via
// `parseRecord`, and is returned as the JSON text the pipeline
// stores, CID links as {"$link"}), 'absent' (any 4xx but 429: no record, no repo, deactivated,
// taken down) or 'invalid' (a 200 whose body is not a profile of this DID, too large, or an
// endpoint we refuse); transient trouble (5xx, 429, timeout, network, open circuit) rejects, so
// the caller retries later. The PDS is fetched through the guarded client (src/outbound): an
// endpoint on a private address, or on plain http outside ALLOW_PRIVATE_HOSTS, is 'invalid'.
import { fromString as parseCid } from '@atcute/cid';
import { isDataModelRecord } from '../lib/data-model.ts';
import { parseRecord } from '../pipeline/collections.ts';
import type { HostGate, Outcome, Verdict } from './host-gate.ts';
import { httpGet, HttpGetError, type HttpGetResult } from './http-get.ts';
import { outbound, type Outbound } from '../outbound/guarded-fetch.ts';
import { isObject } from '../lib/is-object.ts';

export const PROFILE_COLLECTION = 'app.bsky.actor.profile';

export type ProfileResult =
  | { kind: 'found'; cid: string; createdAt: string | null; record: string }
  | { kind: 'absent' }
  | { kind: 'invalid'; reason: string };

export class ProfileFetchError extends Error {
  override readonly name = 'ProfileFetchError';
  readonly host: string;

  constructor(host: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.host = host;
  }
}

export interface ProfileFetcherOptions {
  /** the guarded client (default: no private hosts) */
  strangers?: Outbound;
  /** whole request (default 5000) */
  timeoutMs?: number;
  /** largest accepted answer (default 128 KiB) */
  maxBytes?: number;
  gate?: HostGate;
}

const verdict = (outcome: Outcome<HttpGetResult>): Verdict => {
  if (outcome.ok) return outcome.value.status >= 500 || outcome.value.status === 429 ? 'failure' : 'success';
  if (outcome.error instanceof HttpGetError && outcome.error.reason === 'aborted') return 'neutral';
  if (outcome.error instanceof HttpGetError && outcome.error.reason === 'too-large') return 'success';
  return 'failure';
};

export class ProfileFetcher {
  readonly #strangers: Outbound;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #gate: HostGate | null;

  constructor(options: ProfileFetcherOptions = {}) {
    this.#strangers = options.strangers ?? outbound();
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#maxBytes = options.maxBytes ?? 128 * 1024;
    this.#gate = options.gate ?? null;
  }

  async fetch(pdsEndpoint: string, did: string, signal?: AbortSignal): Promise<ProfileResult> {
    let base: URL;
    try {
      base = new URL(pdsEndpoint);
    } catch {
      return { kind: 'invalid', reason: 'bad-endpoint' };
    }
    if (base.protocol !== 'https:' && !(base.protocol === 'http:' && this.#strangers.allowsHttp(base.hostname))) {
      return { kind: 'invalid', reason: 'insecure-endpoint' };
    }
    const url = new URL('/xrpc/com.atproto.repo.getRecord', base);
    url.searchParams.set('repo', did);
    url.searchParams.set('collection', PROFILE_COLLECTION);
    url.searchParams.set('rkey', 'self');
    const host = base.host;
    const get = () =>
      httpGet(url.href, {
        fetch: this.#strangers.fetch,
        timeoutMs: this.#timeoutMs,
        maxBytes: this.#maxBytes,
        ...(signal ? { signal } : {}),
        headers: { accept: 'application/json' },
      });

    let result: HttpGetResult;
    try {
      result = this.#gate === null ? await get() : await this.#gate.run(host, get, verdict, signal);
    } catch (err) {
      if (err instanceof HttpGetError && err.reason === 'too-large') return { kind: 'invalid', reason: 'too-large' };
      if (err instanceof HttpGetError && err.reason === 'refused') return { kind: 'invalid', reason: 'refused-endpoint' };
      if (err instanceof HttpGetError && err.reason === 'aborted') throw err;
      throw new ProfileFetchError(host, 'profile request failed', { cause: err });
    }
    if (result.status >= 500 || result.status === 429) throw new ProfileFetchError(host, `PDS answered HTTP ${result.status}`);
    if (result.status >= 400) return { kind: 'absent' };
    if (result.status !== 200) return { kind: 'invalid', reason: `http-${result.status}` };
    return readAnswer(result.text, did);
  }
}

/** Checks a getRecord answer: `{ uri, cid, value }` for this DID's profile. */
export const readAnswer = (text: string, did: string): ProfileResult => {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'not-json' };
  }
  if (!isObject(body)) return { kind: 'invalid', reason: 'not-an-object' };
  if (body.uri !== undefined && body.uri !== `at://${did}/${PROFILE_COLLECTION}/self`) return { kind: 'invalid', reason: 'wrong-uri' };
  const cid = body.cid;
  if (typeof cid !== 'string') return { kind: 'invalid', reason: 'no-cid' };
  try {
    parseCid(cid);
  } catch {
    return { kind: 'invalid', reason: 'bad-cid' };
  }
  const parsed = parseRecord(PROFILE_COLLECTION, 'self', body.value);
  if (parsed === null) return { kind: 'invalid', reason: 'not-indexed' };
  if (!parsed.ok) return { kind: 'invalid', reason: parsed.reason };
  // the lexicon types the profile's own fields; any others must still be data model
  if (!isDataModelRecord(body.value)) return { kind: 'invalid', reason: 'data-model' };
  const row = parsed.row;
  if (!('record' in row)) return { kind: 'invalid', reason: 'not-a-document' };
  return { kind: 'found', cid, createdAt: row.createdAt, record: row.record };
};
