/**
 * The operator's pages behind ADMIN_TOKEN: the dashboard (/, /partials, /static), the JSON metrics
 * (/api/) and the Prometheus scrape (/metrics). /health, /ready, /xrpc/ and /.well-known/ stay
 * public. Promises: with a token set, such a request must carry it as `Authorization: Bearer
 * <token>` (scrapers) or as the password of Basic auth (a browser asks for it: the answer is 401
 * with `WWW-Authenticate: Basic`); the comparison takes the same time whatever the guess.
 */
import { Elysia } from 'elysia';
import { createHash, timingSafeEqual } from 'node:crypto';

const PUBLIC = /^\/(health|ready|xrpc\/|\.well-known\/)/;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The token the request carries, as Bearer or as a Basic password; null when none. */
function presented(authorization: string | null): string | null {
  if (!authorization) return null;
  const [scheme, value] = authorization.split(' ', 2);
  if (!value) return null;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

export function adminAuth(token: string) {
  const expected = digest(token);
  return new Elysia({ name: 'admin-auth' }).onRequest(({ request, set }) => {
    if (PUBLIC.test(new URL(request.url).pathname)) return;
    const given = presented(request.headers.get('authorization'));
    if (given !== null && timingSafeEqual(digest(given), expected)) return;
    set.status = 401;
    set.headers['www-authenticate'] = 'Basic realm="Aqueduct", charset="UTF-8"';
    set.headers['content-type'] = 'application/json';
    return { error: 'AuthenticationRequired', message: 'ADMIN_TOKEN is required for this page' };
  });
}
