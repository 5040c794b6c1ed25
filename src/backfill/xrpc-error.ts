/**
 * xrpc-error: the error name an XRPC error answer carries (`{"error": "RepoNotFound", ...}`), read
 * from a body already bounded by the caller. Promises: never throws; '' when the body is not JSON
 * or names no error; at most 100 characters, so a host's answer cannot bloat a message or a log.
 */
export function xrpcErrorName(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error.slice(0, 100) : '';
  } catch {
    return '';
  }
}
