/**
 * The dashboard over HTTP: `GET /` (the whole page, complete without JavaScript),
 * `GET /dashboard/tiles/:name` (one tile, for htmx polling) and `GET /static/htmx.js` (htmx from
 * the `htmx.org` package, embedded at build time so the single binary needs no node_modules and
 * no CDN). Pages carry a strict Content-Security-Policy (scripts from this origin only) as a
 * second line behind the escaping done in views/.
 */
import { Elysia } from 'elysia';
import htmxSource from 'htmx.org/dist/htmx.min.js' with { type: 'text' };
import { DashboardPage, type DashboardView, isTileName, renderTile } from '../../views/dashboard.tsx';
import { XrpcError } from './errors.ts';
import type { MetricsService } from './metrics/metrics-service.ts';

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const HTMX_HEADERS = {
  'content-type': 'text/javascript; charset=utf-8',
  'cache-control': 'public, max-age=86400',
  'x-content-type-options': 'nosniff',
};

export function dashboardRoutes(metrics: MetricsService) {
  const view = async (): Promise<DashboardView> => {
    const [eventProcessor, database] = await Promise.all([metrics.eventProcessor(), metrics.database()]);
    return {
      eventProcessor,
      database,
      firehose: metrics.firehose(),
      backfill: metrics.backfill(),
      history: metrics.history.samples(),
      historySlots: metrics.history.capacity,
      errors: metrics.recentErrors?.latest() ?? [],
      now: Date.now(),
    };
  };
  const html = async (markup: JSX.Element): Promise<Response> => new Response(await markup, { headers: HTML_HEADERS });

  return new Elysia({ name: 'dashboard' })
    .get('/', async () => html(DashboardPage(await view())))
    .get('/dashboard/tiles/:name', async ({ params }) => {
      if (!isTileName(params.name)) throw new XrpcError(404, 'NotFound', 'no such tile');
      return html(renderTile(params.name, await view()));
    })
    .get('/static/htmx.js', () => new Response(htmxSource, { headers: HTMX_HEADERS }));
}
