/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * fed by the simulator's signed commits through a real ingester over a real listening server:
 * htmx loads from this origin, the events tile is replaced by its poll while events flow, hostile
 * error text and a hostile backfill failure reason render as text, the page fits a phone, and it shows full numbers with JavaScript
 * off. Screenshots go to test-results/. A missing browser fails this file; it never skips.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApp } from '../../src/api/app.ts';
import { MetricsService } from '../../src/api/metrics/metrics-service.ts';
import { RecentErrors, recordingLogger } from '../../src/lib/recent-errors.ts';
import { silentLogger } from '../../src/log.ts';
import { startIngester, type Ingester } from '../../src/pipeline/ingester.ts';
import { startSimulator, type Simulator } from '../../src/sim/server.ts';
import { migratedDatabase } from '../support/schema.ts';
import { LOOPBACK_HOSTS } from '../support/strangers.ts';
import { until } from '../support/until.ts';
import { plcDid, testBackfill } from './test-backfill.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const RESULTS = join(import.meta.dir, '../../test-results');
const PROBE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

const cleanups: Array<() => Promise<unknown>> = [];
let sim: Simulator;
let ingester: Ingester;
let base = '';
let browser: Browser | null = null;


/** Chromium, or a loud failure naming the package to install. */
async function openBrowser(): Promise<Browser> {
  if (browser) return browser;
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get update && apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return browser;
}

/** A page that records script errors and CSP violations, which the tests then require to be none. */
async function openPage(viewport: { width: number; height: number }, javaScriptEnabled = true): Promise<{ page: Page; problems: string[] }> {
  const context = await (await openBrowser()).newContext({ viewport, javaScriptEnabled, deviceScaleFactor: 1 });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  return { page, problems };
}

beforeAll(async () => {
  mkdirSync(RESULTS, { recursive: true });
  sim = await startSimulator({
    seed: 'dashboard-browser',
    accounts: 300,
    commits: 100_000,
    rate: 40,
    newAccountShare: 0.1,
    faults: { badSignature: 0.01, invalidRecord: 0.01, unknownCollection: 0.01 },
    epochMs: Date.now(),
  });
  cleanups.push(() => sim.stop());
  const migrated = await migratedDatabase('dashboard_browser', 6);
  cleanups.push(() => migrated.close());
  const recent = new RecentErrors();
  const log = recordingLogger(silentLogger, recent);
  const relayUrl = sim.url.replace(/^http/, 'ws');
  ingester = await startIngester({ relayUrl, firehoseStart: { kind: 'seq', seq: 0 }, plcUrl: sim.url, plcFollowExport: true, verifyCommits: true, maxConcurrentOps: 40, allowPrivateHosts: LOOPBACK_HOSTS }, migrated.db, log);
  cleanups.push(() => ingester.stop());
  // A real backfill, never started: one repo queued and a host failing with a hostile reason.
  const backfill = testBackfill(migrated.db);
  cleanups.push(() => backfill.close());
  await backfill.backfill.request({ dids: [plcDid('browser')] });
  for (let i = 0; i < 3; i++) backfill.politeness.failed('pds.failing.example', PROBE);
  const metrics = new MetricsService({ db: migrated.db, ingest: ingester, config: { relayUrl, maxConcurrentUserCreations: 20 }, recentErrors: recent, backfill: backfill.backfill });
  metrics.start();
  cleanups.push(async () => metrics.stop());
  const app = createApp({ log, readiness: {}, metrics });
  app.listen({ port: 0, hostname: '127.0.0.1' });
  cleanups.push(() => app.stop(true));
  base = `http://127.0.0.1:${app.server?.port}`;

  // The XSS probe: an error whose text came from the network.
  log.error(`relay sent ${PROBE}`, { error: new Error(PROBE), handle: `${PROBE}.example.com` });
  await until(() => (ingester.pipeline.committedSeq ?? 0) > 0, { timeoutMs: 30_000 });
}, 60_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser?.close();
});

describe('the dashboard in headless Chromium', () => {
  test('htmx polling replaces the events tile while events flow; hostile text stays text', async () => {
    const { page, problems } = await openPage({ width: 1280, height: 900 });
    await page.goto(`${base}/`);
    await page.waitForFunction(() => typeof (window as unknown as { htmx?: { version?: string } }).htmx?.version === 'string');
    expect(await page.evaluate(() => (window as unknown as { htmx: { version: string } }).htmx.version)).toStartWith('4.');

    // Mark the tile as first rendered; a poll replaces the element (outerHTML) with fresh numbers.
    const committed = '#tile-events .events-committed';
    const first = await page.textContent(committed);
    expect(first).toMatch(/^\d[\d,]*$/);
    await page.evaluate(() => document.querySelector('#tile-events')?.setAttribute('data-first', 'yes'));
    await page.waitForFunction(
      (before) => {
        const tile = document.querySelector('#tile-events');
        return tile !== null && !tile.hasAttribute('data-first') && tile.querySelector('.events-committed')?.textContent !== before;
      },
      first,
      { timeout: 15_000 },
    );
    const later = await page.textContent(committed);
    expect(Number(later?.replaceAll(',', ''))).toBeGreaterThan(Number(first?.replaceAll(',', '')));
    await page.waitForFunction(() => Number.parseFloat(document.querySelector('#tile-events .value')?.textContent ?? '') > 0, undefined, { timeout: 15_000 });

    // Let the sparklines gather a few seconds, then take the picture.
    await Bun.sleep(6_000);
    await page.waitForFunction(() => document.querySelectorAll('#tile-events-chart polyline').length > 0);
    await page.screenshot({ path: join(RESULTS, 'dashboard.png'), fullPage: true });

    // The probe rendered as text, also after the errors tile has been polled and swapped.
    await page.evaluate(() => document.querySelector('#tile-errors')?.setAttribute('data-first', 'yes'));
    await page.waitForFunction(() => !document.querySelector('#tile-errors')?.hasAttribute('data-first'), undefined, { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#tile-errors .message').first().textContent()).toBe(`relay sent ${PROBE}`);
    expect(await page.locator('#tile-errors script, #tile-errors img').count()).toBe(0);
    await page.evaluate(() => document.querySelector('#tile-backfill')?.setAttribute('data-first', 'yes'));
    await page.waitForFunction(() => !document.querySelector('#tile-backfill')?.hasAttribute('data-first'), undefined, { timeout: 10_000 });
    expect(await page.textContent('#tile-backfill .backfill-queued')).toBe('1');
    expect(await page.textContent('#tile-backfill .troubled .host')).toBe('pds.failing.example');
    expect(await page.textContent('#tile-backfill .troubled .reason')).toBe(PROBE);
    expect(await page.locator('#tile-backfill script, #tile-backfill img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(1);
    expect(problems).toEqual([]);
  }, 60_000);

  test('fits a phone screen', async () => {
    const { page, problems } = await openPage({ width: 390, height: 844 });
    await page.goto(`${base}/`);
    await page.waitForSelector('#tile-events .value');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const tileWidth = await page.evaluate(() => document.querySelector('#tile-events')?.getBoundingClientRect().width ?? 0);
    expect(tileWidth).toBeGreaterThan(140);
    await page.screenshot({ path: join(RESULTS, 'dashboard-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 60_000);

  test('with JavaScript off: full numbers at load, nothing polls', async () => {
    const { page } = await openPage({ width: 1024, height: 768 }, false);
    const requests: string[] = [];
    page.on('request', (request) => requests.push(new URL(request.url()).pathname));
    await page.goto(`${base}/`);
    const committed = Number((await page.textContent('#tile-events .events-committed'))?.replaceAll(',', ''));
    expect(committed).toBeGreaterThan(0);
    expect(await page.textContent('#tile-cursor .value')).toMatch(/^\d[\d,]*$/);
    expect(await page.textContent('#tile-lag .value')).toMatch(/\d/);
    expect(await page.locator('#tile-events-chart svg').count()).toBe(1);
    await Bun.sleep(2_500);
    expect(requests.filter((path) => path.startsWith('/dashboard/tiles/'))).toEqual([]);
  }, 60_000);
});
