// http-get: one bounded GET for identity work (handles, profiles), and the bounded body readers the
// DID resolver and the resync worker share.
//
// Owns nothing but the request in flight. Promises: `httpGet` settles within `timeoutMs` (headers
// and body) or as soon as `signal` aborts; reads at most `maxBytes`; a response of any status is
// returned as `{ status, text }` (the body is read only for 2xx and 4xx, which callers interpret);
// everything else rejects with an HttpGetError whose `reason` is fixed: 'timeout', 'aborted',
// 'network', 'too-large', or 'refused' (the guarded client, src/outbound, would not go there).
import { ReasonError } from '../lib/reason-error.ts';
import { OutboundRefused } from '../outbound/guarded-fetch.ts';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export type HttpGetErrorReason = 'timeout' | 'aborted' | 'network' | 'too-large' | 'refused';

export class HttpGetError extends ReasonError<HttpGetErrorReason> {
  override readonly name = 'HttpGetError';
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/** Reads a response body as text, refusing (BodyTooLarge) more than `maxBytes`. */
export const readBounded = async (response: Pick<Response, 'headers' | 'body'>, maxBytes: number): Promise<string> =>
  new TextDecoder().decode(await readBoundedBytes(response, maxBytes));

/** Reads a response's (or a request's) body, refusing (BodyTooLarge) more than `maxBytes`. */
export const readBoundedBytes = async (response: Pick<Response, 'headers' | 'body'>, maxBytes: number): Promise<Uint8Array> => {
  const declared = Number(response.headers.get('content-length'));
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new BodyTooLarge();
  }
  const body = response.body;
  if (body === null) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
};

export interface HttpGetOptions {
  fetch: FetchLike;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  redirect?: RequestRedirect;
}

export interface HttpGetResult {
  status: number;
  /** the body for 2xx and 4xx answers, '' otherwise */
  text: string;
}

export const httpGet = async (url: string, options: HttpGetOptions): Promise<HttpGetResult> => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const failed = (err: unknown, what: string): HttpGetError => {
    if (err instanceof OutboundRefused) return new HttpGetError('refused', `${what}: ${err.message}`, { cause: err });
    if (options.signal?.aborted) return new HttpGetError('aborted', `${what}: aborted`, { cause: err });
    if (controller.signal.aborted) {
      return new HttpGetError('timeout', `${what}: timed out after ${options.timeoutMs} ms`, { cause: err });
    }
    return new HttpGetError('network', `${what}: network error`, { cause: err });
  };
  try {
    if (options.signal?.aborted) throw new HttpGetError('aborted', 'aborted before the request');
    let response: Response;
    try {
      const init: RequestInit = { signal: controller.signal, redirect: options.redirect ?? 'follow' };
      if (options.headers) init.headers = options.headers;
      response = await options.fetch(url, init);
    } catch (err) {
      throw failed(err, 'fetch');
    }
    const { status } = response;
    if (status >= 500 || status < 200 || (status >= 300 && status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      return { status, text: '' };
    }
    try {
      return { status, text: await readBounded(response, options.maxBytes) };
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new HttpGetError('too-large', `body larger than ${options.maxBytes} bytes`);
      throw failed(err, 'body');
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
};
