/**
 * The operator's pages behind ADMIN_TOKEN: the dashboard (/, /dashboard/tiles/, /static/), the JSON metrics
 * (/api/) and the Prometheus scrape (/metrics), and the operator's actions (any other method than
 * GET, HEAD or OPTIONS there, e.g. POST /api/backfill). /health, /ready, /xrpc/ and /.well-known/
 * stay public. Promises: with a token set, a read must carry it as `Authorization: Bearer <token>`
 * (scrapers) or as the password of Basic auth (a browser asks for it: the answer is 401 with
 * `WWW-Authenticate: Basic`); an action must carry it as Bearer, never Basic, since a browser
 * sends the Basic password it remembers with any request another site's page makes it send; the
 * comparison takes the same time whatever the guess. Without a token, reads are open and actions
 * are refused (403): nothing may change what Aqueduct does without a secret.
 */
import { Elysia } from 'elysia';
import { createHash, timingSafeEqual } from 'node:crypto';

const PUBLIC = /^\/(health|ready|xrpc\/|\.well-known\/)/;
const READS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** The token the request carries, as Bearer or (unless `bearerOnly`) as a Basic password; null when none. */
function presented(authorization: string | null, bearerOnly: boolean): string | null {
  if (!authorization) return null;
  const [scheme, value] = authorization.split(' ', 2);
  if (!value) return null;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (bearerOnly || scheme?.toLowerCase() !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** `token`: ADMIN_TOKEN, or null when it is not set. */
export function adminAuth(token: string | null) {
  const expected = token === null ? null : digest(token);
  return new Elysia({ name: 'admin-auth' }).onRequest(({ request, set }) => {
    const action = !READS.has(request.method);
    if (expected === null && !action) return;
    if (PUBLIC.test(new URL(request.url).pathname)) return;
    if (expected === null) {
      set.status = 403;
      set.headers['content-type'] = 'application/json';
      return { error: 'Forbidden', message: 'this action needs ADMIN_TOKEN: set it (16 characters or more) and send it as Authorization: Bearer <token>' };
    }
    const given = presented(request.headers.get('authorization'), action);
    if (given !== null && timingSafeEqual(digest(given), expected)) return;
    set.status = 401;
    set.headers['www-authenticate'] = action ? 'Bearer realm="Aqueduct"' : 'Basic realm="Aqueduct", charset="UTF-8"';
    set.headers['content-type'] = 'application/json';
    return {
      error: 'AuthenticationRequired',
      message: action ? 'this action needs ADMIN_TOKEN as Authorization: Bearer <token>' : 'ADMIN_TOKEN is required for this page',
    };
  });
}
