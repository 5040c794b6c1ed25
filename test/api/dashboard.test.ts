/**
 * The dashboard's HTML over `app.handle`: the page, every tile partial and its polling attributes,
 * htmx served from the package, hostile text escaped; plus the pure view helpers. The real browser
 * test is dashboard-browser.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { createApp } from '../../src/api/app.ts';
import { MetricsService } from '../../src/api/metrics/metrics-service.ts';
import { RecentErrors } from '../../src/lib/recent-errors.ts';
import { silentLogger } from '../../src/log.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { TILE_NAMES } from '../../views/dashboard.tsx';
import { formatBytes, formatCount, formatDuration, formatPercent, formatRate } from '../../views/format.ts';
import { Sparkline } from '../../views/sparkline.tsx';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { plcDid, testBackfill } from './test-backfill.ts';

const PROBE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

let migrated: MigratedDatabase;
let app: ReturnType<typeof createApp>;
let closeBackfill: () => Promise<void> = async () => {};

beforeAll(async () => {
  migrated = await migratedDatabase('dashboard', 2);
  const stats = new IngestStats();
  stats.event('commit');
  stats.batchCommitted(1234567, 3, 12);
  stats.reject('bad-signature');
  stats.unknownCollection(PROBE);
  const recent = new RecentErrors();
  recent.record('error', `relay said ${PROBE}`, { error: new Error(PROBE), handle: `${PROBE}.bsky.social` });
  recent.record('warn', 'relay connection closed: reconnecting');
  // A real backfill (never started): two repos queued, and a host failing with a hostile reason.
  const backfill = testBackfill(migrated.db);
  closeBackfill = backfill.close;
  await backfill.backfill.request({ dids: [plcDid('queued'), plcDid('queuedtoo')] });
  for (let i = 0; i < 3; i++) backfill.politeness.failed('pds.failing.example', `answered ${PROBE}`);
  const metrics = new MetricsService({
    db: migrated.db,
    ingest: {
      stats,
      pipeline: { queueDepth: 950, queueLimit: 1000, inFlight: 3, maxConcurrentOps: 80, lastAcceptedSeq: 99, committedSeq: 98, committedTime: new Date(Date.now() - 90_000).toISOString() },
      subscription: { connected: false, reconnects: 4, lastReceivedSeq: 99, lastFrameAt: Date.now(), relayUrl: `wss://relay.example/"><script>window.__xss=3</script>`, errorFrames: new Map() },
    },
    identityWorker: { stats: { active: 46, limit: 50 } },
    config: { relayUrl: 'unused', maxConcurrentUserCreations: 50 },
    recentErrors: recent,
    backfill: backfill.backfill,
  });
  for (let i = 0; i < 3; i++) metrics.sample();
  app = createApp({ log: silentLogger, readiness: {}, metrics });
});
afterAll(async () => {
  await closeBackfill();
  await migrated.close();
});

const get = (path: string) => app.handle(new Request(`http://aqueduct.test${path}`));

describe('the dashboard page', () => {
  test('is complete HTML at load, with every tile polling its own partial every 2 s', async () => {
    const response = await get('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    expect(html.startsWith('<!doctype html><html lang="en">')).toBe(true);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1"/>');
    for (const name of TILE_NAMES) {
      expect(html).toContain(`<section id="tile-${name}"`);
      expect(html).toMatch(new RegExp(`id="tile-${name}"[^>]*hx-get="/dashboard/tiles/${name}" hx-trigger="every 2s" hx-swap="outerHTML"`));
    }
    // Static numbers without JavaScript.
    expect(html).toContain('1,234,567</span> committed');
    expect(html).toContain('92.0%'); // user creations 46/50
    expect(html).toContain('1 min 30 s'); // lag
    expect(html).toContain('disconnected');
    // htmx from this origin only, no CDN.
    expect(html).toContain('<script src="/static/htmx.js" defer></script>');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  test('tiles show their state: queue nearly full, user creations high, relay disconnected', async () => {
    const html = await (await get('/')).text();
    expect(html).toMatch(/id="tile-queue" class="tile" data-state="bad"/);
    expect(html).toMatch(/id="tile-user-creations" class="tile" data-state="warn"/);
    expect(html).toMatch(/id="tile-cursor" class="tile" data-state="bad"/);
    expect(html).toMatch(/id="tile-lag" class="tile" data-state="warn"/);
    expect(html).toMatch(/id="tile-errors" class="tile wide full" data-state="bad"/);
    expect(html).toMatch(/id="tile-backfill" class="tile wide" data-state="warn"/); // a host paused
    expect(html).toContain('<span class="backfill-queued">2</span> queued');
  });

  test('network-derived text is escaped everywhere', async () => {
    const html = await (await get('/')).text();
    expect(html).not.toContain('<script>window.__xss');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('relay said &lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;');
    expect(html).toContain('wss://relay.example/&quot;&gt;&lt;script&gt;window.__xss=3&lt;/script&gt;');
    const errors = await (await get('/dashboard/tiles/errors')).text();
    expect(errors).not.toContain('<script>');
    expect(errors).toContain('handle=&lt;script&gt;');
    const backfill = await (await get('/dashboard/tiles/backfill')).text();
    expect(backfill).not.toContain('<script>');
    expect(backfill).toContain('<code class="host">pds.failing.example</code> <span class="reason">answered &lt;script&gt;window.__xss=1&lt;/script&gt;');
  });

  test('every tile is served alone, as the same polling section', async () => {
    for (const name of TILE_NAMES) {
      const response = await get(`/dashboard/tiles/${name}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const html = await response.text();
      expect(html.startsWith(`<section id="tile-${name}"`)).toBe(true);
      expect(html).toContain(`hx-get="/dashboard/tiles/${name}" hx-trigger="every 2s" hx-swap="outerHTML"`);
      expect(html.endsWith('</section>')).toBe(true);
    }
    expect((await get('/dashboard/tiles/nope')).status).toBe(404);
    expect((await get('/dashboard/tiles/%3Cscript%3E')).status).toBe(404);
  });

  test('htmx is served from the htmx.org package', async () => {
    const response = await get('/static/htmx.js');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const expected = await Bun.file(join(import.meta.dir, '../../node_modules/htmx.org/dist/htmx.min.js')).text();
    expect(await response.text()).toBe(expected);
  });

  test('sparklines are server-rendered SVG', async () => {
    const chart = await (await get('/dashboard/tiles/events-chart')).text();
    expect(chart).toContain('<svg class="spark" viewBox="0 0 300 60"');
    expect(chart).toContain('aria-label="events per second over the last 5 minutes"');
  });
});

describe('view helpers', () => {
  test('Sparkline: newest at the right edge, 0 at the bottom, the maximum at the top, gaps for null', async () => {
    const svg = await Sparkline({ values: [0, 5, null, 10], slots: 4, label: 'l"<' });
    expect(svg).toContain('aria-label="l&#34;<"');
    const lines = [...svg.matchAll(/<polyline class="spark-line" points="([^"]*)"/g)].map((m) => m[1]);
    expect(lines).toEqual(['0.0,58.0 100.0,30.0', '300.0,2.0']);
    const fewer = await Sparkline({ values: [1, 1], slots: 4, label: 'x' });
    expect(fewer).toContain('points="200.0,2.0 300.0,2.0"');
    const empty = await Sparkline({ values: [], slots: 300, label: 'x' });
    expect(empty).not.toContain('polyline');
    const zeros = await Sparkline({ values: [0, 0], label: 'x' });
    expect(zeros).toContain('points="0.0,58.0 300.0,58.0"');
  });

  test('formatters', () => {
    const cases: Array<[string, string]> = [
      [formatCount(0), '0'],
      [formatCount(1234567), '1,234,567'],
      [formatCount(-1234), '-1,234'],
      [formatCount(null), '—'],
      [formatCount(Number.NaN), '—'],
      [formatRate(3.25), '3.3'],
      [formatRate(12345.6), '12,346'],
      [formatPercent(75), '75.0%'],
      [formatDuration(0.42), '0.4 s'],
      [formatDuration(-3), '0.0 s'],
      [formatDuration(90), '1 min 30 s'],
      [formatDuration(7325), '2 h 02 min'],
      [formatDuration(3 * 86_400 + 4 * 3600 + 5), '3 d 4 h'],
      [formatDuration(null), '—'],
      [formatBytes(512), '512 B'],
      [formatBytes(1536), '1.5 KiB'],
      [formatBytes(5 * 1024 ** 3), '5.0 GiB'],
      [formatBytes(null), '—'],
    ];
    for (const [actual, expected] of cases) expect(actual).toBe(expected);
  });
});
