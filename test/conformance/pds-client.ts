/**
 * A small XRPC client for the reference PDS (and any XRPC service): JSON queries and procedures,
 * bearer or admin Basic auth, and an error that names the method and the answer.
 */
export class XrpcCallError extends Error {
  override readonly name = 'XrpcCallError';
  readonly status: number;
  readonly body: unknown;

  constructor(nsid: string, status: number, body: unknown) {
    super(`${nsid} -> ${status} ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

export interface CallOptions {
  /** a POST body (JSON unless `bytes` is given) */
  readonly body?: unknown;
  readonly bytes?: { readonly data: Uint8Array; readonly type: string };
  readonly query?: Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;
  /** `Bearer <jwt>` or `Basic <...>` */
  readonly authorization?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** a procedure without input: POST with no body */
  readonly post?: boolean;
}

export interface XrpcAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

export function xrpcUrl(base: string, nsid: string, query: CallOptions['query'] = {}): URL {
  const url = new URL(`/xrpc/${nsid}`, base);
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) url.searchParams.append(name, item);
    else url.searchParams.set(name, String(value));
  }
  return url;
}

/** The answer whatever its status. */
export async function xrpcRaw(base: string, nsid: string, options: CallOptions = {}): Promise<XrpcAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.authorization) headers.authorization = options.authorization;
  let body: BodyInit | undefined;
  if (options.bytes) {
    headers['content-type'] = options.bytes.type;
    body = new Blob([options.bytes.data as Uint8Array<ArrayBuffer>]);
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const method = body === undefined && options.post !== true ? 'GET' : 'POST';
  const response = await fetch(xrpcUrl(base, nsid, options.query), { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** The answer's JSON body; any status other than 200 throws an XrpcCallError. */
export async function xrpc<T = Record<string, unknown>>(base: string, nsid: string, options: CallOptions = {}): Promise<T> {
  const answer = await xrpcRaw(base, nsid, options);
  if (answer.status !== 200) throw new XrpcCallError(nsid, answer.status, answer.body);
  return answer.body as T;
}

export const bearer = (jwt: string): string => `Bearer ${jwt}`;
export const adminAuth = (password: string): string => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
