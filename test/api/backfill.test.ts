/**
 * The backfill's operator surface over real HTTP and a real PostgreSQL: `GET /api/metrics/backfill`
 * field by field, its Prometheus families through the strict parser, the dashboard tile with a
 * hostile failure reason, and `POST /api/backfill` (ADMIN_TOKEN, strict validation, the rows it
 * queues). First a Backfill that is never started, so the figures move only by what the test asks;
 * then a started one draining its queue against a local PDS and PLC directory.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createApp } from '../../src/api/app.ts';
import { hostName, MAX_DIDS, parseBackfillRequest } from '../../src/api/backfill.ts';
import { XrpcError } from '../../src/api/errors.ts';
import { MetricsService } from '../../src/api/metrics/metrics-service.ts';
import { silentLogger } from '../../src/log.ts';
import { migratedDatabase, type MigratedDatabase } from '../support/schema.ts';
import { until } from '../support/until.ts';
import { parsePrometheus, sampleValue } from './prometheus-text.ts';
import { plcDid, testBackfill, type TestBackfill } from './test-backfill.ts';

const TOKEN = 'backfill-test-token-0123456789';
const PROBE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

type App = ReturnType<typeof createApp>;

const get = (app: App, path: string, token?: string) =>
  app.handle(new Request(`http://aqueduct.test${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {}));

function post(app: App, body: BodyInit | null, headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }) {
  return app.handle(new Request('http://aqueduct.test/api/backfill', { method: 'POST', headers, body }));
}

async function backfillJson(app: App, token?: string): Promise<Record<string, unknown>> {
  const response = await get(app, '/api/metrics/backfill', token);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('application/json');
  expect(response.headers.get('cache-control')).toBe('no-store');
  return (await response.json()) as Record<string, unknown>;
}

describe('a backfill that is not started: figures move only by what is asked', () => {
  let migrated: MigratedDatabase;
  let fixture: TestBackfill;
  let metrics: MetricsService;
  let open: App;
  let guarded: App;

  beforeAll(async () => {
    migrated = await migratedDatabase('api_backfill', 3);
    cleanups.push(() => migrated.close());
    fixture = testBackfill(migrated.db);
    cleanups.push(() => fixture.close());
    metrics = new MetricsService({ db: migrated.db, ingest: null, config: { relayUrl: 'wss://relay.invalid', maxConcurrentUserCreations: 4 }, backfill: fixture.backfill });
    open = createApp({ log: silentLogger, readiness: {}, metrics, backfill: fixture.backfill });
    guarded = createApp({ log: silentLogger, readiness: {}, metrics, backfill: fixture.backfill, adminToken: TOKEN });
  });

  test('GET /api/metrics/backfill: every figure, and the queued count after request({dids})', async () => {
    expect(await backfillJson(open)).toEqual({
      enabled: true,
      repos: { queued: 0, done: 0, inactive: 0, failed: 0 },
      hostsListing: 0,
      hostsToList: 0,
      activeImports: 0,
      outcomes: {},
      recordsImported: 0,
      recordsChanged: 0,
      invalidRecords: 0,
      bytesFetched: 0,
      unverified: 0,
      recordsPerSecond: 0,
      reposPerSecond: 0,
      etaSeconds: null,
      troubledHosts: [],
      phaseSeconds: { resolve: 0, wait: 0, fetch: 0, verify: 0, parse: 0, write: 0, release: 0 },
      listed: { hosts: 0, repos: 0, invalid: 0 },
    });
    expect(await fixture.backfill.request({ dids: [plcDid('one'), plcDid('two'), plcDid('three'), plcDid('one')] })).toEqual({ repos: 3, hosts: 0 });
    const after = await backfillJson(open);
    expect(after.repos).toEqual({ queued: 3, done: 0, inactive: 0, failed: 0 });
    expect(after.etaSeconds).toBeNull(); // nothing imported yet: no rate to reckon with
  });

  test('without a backfill the route says enabled: false, /metrics leaves the families out, the tile is idle', async () => {
    const bare = createApp({ log: silentLogger, readiness: {}, metrics: new MetricsService({ db: migrated.db, ingest: null, config: { relayUrl: 'wss://relay.invalid', maxConcurrentUserCreations: 4 } }) });
    const json = await backfillJson(bare);
    expect(json.enabled).toBe(false);
    expect(json.repos).toEqual({ queued: 0, done: 0, inactive: 0, failed: 0 });
    const scrape = await (await get(bare, '/metrics')).text();
    expect(scrape).not.toContain('aqueduct_backfill_');
    const tile = await (await get(bare, '/dashboard/tiles/backfill')).text();
    expect(tile).toMatch(/^<section id="tile-backfill" class="tile wide" data-state="idle"/);
    expect(tile).toContain('not running in this process');
    expect((await post(bare, '{"all":true}', { 'content-type': 'application/json' })).status).toBe(403);
  });

  test('/metrics: the backfill families, well-formed, with the queue and a paused host', async () => {
    for (let i = 0; i < 3; i++) fixture.politeness.failed('pds.troubled.example', 'unreachable');
    const response = await get(open, '/metrics');
    expect(response.status).toBe(200);
    const parsed = parsePrometheus(await response.text());
    const expected: Array<[string, string]> = [
      ['aqueduct_backfill_repos', 'gauge'],
      ['aqueduct_backfill_imports_total', 'counter'],
      ['aqueduct_backfill_records_total', 'counter'],
      ['aqueduct_backfill_records_changed_total', 'counter'],
      ['aqueduct_backfill_invalid_records_total', 'counter'],
      ['aqueduct_backfill_bytes_total', 'counter'],
      ['aqueduct_backfill_unverified_repos_total', 'counter'],
      ['aqueduct_backfill_listed_hosts_total', 'counter'],
      ['aqueduct_backfill_listed_repos_total', 'counter'],
      ['aqueduct_backfill_listed_invalid_total', 'counter'],
      ['aqueduct_backfill_active_imports', 'gauge'],
      ['aqueduct_backfill_hosts_listing', 'gauge'],
      ['aqueduct_backfill_records_per_second', 'gauge'],
      ['aqueduct_backfill_repos_per_second', 'gauge'],
      ['aqueduct_backfill_eta_seconds', 'gauge'],
      ['aqueduct_backfill_hosts_paused', 'gauge'],
    ];
    for (const [name, type] of expected) {
      expect([name, parsed.get(name)?.type]).toEqual([name, type]);
      expect(parsed.get(name)?.help.length).toBeGreaterThan(10);
    }
    expect([...parsed.keys()].filter((name) => name.startsWith('aqueduct_backfill_')).sort()).toEqual(expected.map(([name]) => name).sort());
    for (const [state, value] of Object.entries({ queued: 3, done: 0, inactive: 0, failed: 0 })) expect(sampleValue(parsed, 'aqueduct_backfill_repos', { state })).toBe(value);
    expect(parsed.get('aqueduct_backfill_imports_total')?.samples).toEqual([]); // no import has finished
    expect(parsed.get('aqueduct_backfill_eta_seconds')?.samples).toEqual([]); // null: left out, not faked
    expect(sampleValue(parsed, 'aqueduct_backfill_hosts_paused')).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_backfill_active_imports')).toBe(0);
    expect(sampleValue(parsed, 'aqueduct_backfill_bytes_total')).toBe(0);
  });

  test('the tile: counts, rates, and a troubled host whose hostile reason is escaped', async () => {
    for (let i = 0; i < 3; i++) fixture.politeness.failed('pds.hostile.example', PROBE);
    const json = await backfillJson(open);
    const troubled = json.troubledHosts as Array<Record<string, unknown>>;
    const hostile = troubled.find((host) => host.host === 'pds.hostile.example');
    expect(hostile).toEqual({ host: 'pds.hostile.example', pausedForMs: expect.any(Number), failuresInRow: 3, reason: PROBE });
    expect(hostile?.pausedForMs as number).toBeGreaterThan(0);

    for (const html of [await (await get(open, '/dashboard/tiles/backfill')).text(), await (await get(open, '/')).text()]) {
      expect(html).not.toContain('<script>window.__xss');
      expect(html).not.toContain('<img src=x');
      expect(html).toContain('<span class="reason">&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;</span>');
      expect(html).toContain('<code class="host">pds.hostile.example</code>');
      expect(html).toContain('<code class="host">pds.troubled.example</code> <span class="reason">unreachable</span>');
      expect(html).toMatch(/id="tile-backfill" class="tile wide" data-state="warn"/);
      expect(html).toContain('<span class="backfill-queued">3</span> queued');
      expect(html).toContain('0.0 records/s · ETA <span class="backfill-eta">—</span>');
      expect(html).toContain('0 importing · 0 hosts listing');
      expect(html).toMatch(/paused \d+\.\d s/);
    }
  });

  test('POST /api/backfill: 403 without ADMIN_TOKEN, 401 with a wrong or Basic one, 202 with the Bearer token and the rows queued', async () => {
    const body = JSON.stringify({ dids: [plcDid('posted'), 'did:web:pds.posted.example'], hosts: ['PDS.Posted.Example:2583'] });
    const forbidden = await post(open, body, { 'content-type': 'application/json' });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { message: string }).message).toContain('set it');
    expect((await post(open, body, { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` })).status).toBe(403);

    for (const authorization of [undefined, 'Bearer wrong-token-wrong-token-xx', `Bearer ${TOKEN}x`, `Basic ${Buffer.from(`operator:${TOKEN}`).toString('base64')}`]) {
      const refused = await post(guarded, body, { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) });
      expect([authorization, refused.status]).toEqual([authorization, 401]);
      expect(refused.headers.get('www-authenticate')).toStartWith('Bearer');
    }
    const rows = await migrated.db.run((sql) => sql`select count(*)::int as n from backfill_repos where did in (${plcDid('posted')}, 'did:web:pds.posted.example')`);
    expect(rows[0]?.n).toBe(0);

    const accepted = await post(guarded, body);
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('content-type')).toContain('application/json');
    expect(await accepted.json()).toEqual({ queued: { repos: 2, hosts: 1 } });
    const repos = await migrated.db.run((sql) => sql<{ did: string; state: string }[]>`select did, state from backfill_repos where did in (${plcDid('posted')}, 'did:web:pds.posted.example') order by did`);
    expect(repos.map((row) => ({ ...row }))).toEqual([
      { did: plcDid('posted'), state: 'queued' },
      { did: 'did:web:pds.posted.example', state: 'queued' },
    ]);
    const hosts = await migrated.db.run((sql) => sql<{ host: string; state: string }[]>`select host, state from backfill_hosts`);
    expect(hosts.map((row) => ({ ...row }))).toEqual([{ host: 'pds.posted.example:2583', state: 'listing' }]);
    expect(((await backfillJson(guarded, TOKEN)).repos as Record<string, number>).queued).toBe(5);

    // queueing again answers what it queued again; all and retryFailed reach the queue too
    const again = await post(guarded, JSON.stringify({ all: true, retryFailed: true, dids: [plcDid('posted')] }));
    expect(await again.json()).toEqual({ queued: { repos: 1, hosts: 1 } });
    const relay = await migrated.db.run((sql) => sql<{ kind: string }[]>`select kind from backfill_hosts where host = 'relay.invalid'`);
    expect(relay.map((row) => row.kind)).toEqual(['relay']);
  });

  test('the metrics JSON and the tile stay behind ADMIN_TOKEN like the other operator pages', async () => {
    for (const path of ['/api/metrics/backfill', '/dashboard/tiles/backfill']) {
      expect((await get(guarded, path)).status).toBe(401);
      expect((await get(guarded, path, 'wrong-token-wrong-token')).status).toBe(401);
      expect((await get(guarded, path, TOKEN)).status).toBe(200);
    }
  });

  test('POST /api/backfill: every malformed body is a 400 InvalidRequest with a message, never a 500', async () => {
    const manyDids = Array.from({ length: MAX_DIDS + 1 }, (_, i) => `did:web:h${i}.example`);
    const bad: Array<[string, string | Uint8Array<ArrayBuffer>]> = [
      ['not JSON', '{"all": tru'],
      ['empty', ''],
      ['an array', '[]'],
      ['null', 'null'],
      ['a number', '1'],
      ['a string', '"all"'],
      ['an empty object', '{}'],
      ['asking for nothing', '{"all": false, "dids": [], "hosts": [], "retryFailed": false}'],
      ['an unknown field', '{"all": true, "everything": true}'],
      ['a __proto__ field', '{"__proto__": {"all": true}}'],
      ['all not a boolean', '{"all": "yes"}'],
      ['all null', '{"all": null}'],
      ['retryFailed a number', '{"retryFailed": 1}'],
      ['dids a string', '{"dids": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}'],
      ['dids an object', '{"dids": {"0": "did:web:a.example"}}'],
      ['a did a number', '{"dids": [1]}'],
      ['a did null', '{"dids": [null]}'],
      ['a did that is not a DID', '{"dids": ["alice.bsky.social"]}'],
      ['a did with a bad method', '{"dids": ["did:PLC:abc"]}'],
      ['a DID too long', JSON.stringify({ dids: [`did:web:${'a'.repeat(2100)}`] })],
      ['too many dids', JSON.stringify({ dids: manyDids })],
      ['hosts a string', '{"hosts": "pds.example.com"}'],
      ['a host with a scheme', '{"hosts": ["https://pds.example.com"]}'],
      ['a host with a path', '{"hosts": ["pds.example.com/xrpc"]}'],
      ['a host with port 0', '{"hosts": ["pds.example.com:0"]}'],
      ['a host with a port too high', '{"hosts": ["pds.example.com:65536"]}'],
      ['a host with a user', '{"hosts": ["user@pds.example.com"]}'],
      ['a host with markup', '{"hosts": ["<b>pds</b>.example"]}'],
      ['a host with a leading hyphen', '{"hosts": ["-pds.example.com"]}'],
      ['a host with an empty label', '{"hosts": ["pds..example.com"]}'],
      ['a host with a label too long', JSON.stringify({ hosts: [`${'a'.repeat(64)}.example`] })],
      ['an empty host', '{"hosts": [""]}'],
      ['a host a number', '{"hosts": [443]}'],
      ['not UTF-8', new Uint8Array([0x7b, 0x22, 0x61, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
    ];
    for (const [what, body] of bad) {
      const response = await post(guarded, body);
      const answer = (await response.json()) as { error?: string; message?: string };
      expect([what, response.status, answer.error]).toEqual([what, 400, 'InvalidRequest']);
      expect(typeof answer.message).toBe('string');
      expect(answer.message?.length).toBeLessThan(300);
    }
    const queued = ((await backfillJson(guarded, TOKEN)).repos as Record<string, number>).queued;
    expect(queued).toBe(5); // nothing of the above was queued
  });

  test('POST /api/backfill: JSON only (415), at most 1 MiB (413) whether declared or streamed', async () => {
    const body = '{"all": true}';
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const response = await post(guarded, body, { authorization: `Bearer ${TOKEN}`, ...(type ? { 'content-type': type } : {}) });
      expect([type, response.status]).toEqual([type, 415]);
    }
    expect((await post(guarded, body, { authorization: `Bearer ${TOKEN}`, 'content-type': 'Application/JSON; charset=utf-8' })).status).toBe(202);

    const big = JSON.stringify({ dids: [`did:web:${'a'.repeat(1024 * 1024)}`] });
    const declared = await post(guarded, big);
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: string }).error).toBe('PayloadTooLarge');
    const chunk = new TextEncoder().encode(' '.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 40) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const streamed = await app413(guarded, stream);
    expect(streamed.status).toBe(413);
    expect(sent).toBeLessThan(40); // stopped reading once past the limit
  });
});

function app413(app: App, body: ReadableStream<Uint8Array>): Promise<Response> {
  return app.handle(
    new Request('http://aqueduct.test/api/backfill', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body, duplex: 'half' } as RequestInit),
  );
}

describe('parseBackfillRequest and hostName (pure)', () => {
  test('good requests come back normalized: hosts lower-cased, empty and false fields dropped', () => {
    expect(parseBackfillRequest({ all: true })).toEqual({ all: true });
    expect(parseBackfillRequest({ all: false, retryFailed: true, dids: [] })).toEqual({ retryFailed: true });
    expect(parseBackfillRequest({ hosts: ['PDS.Example.com', 'localhost:2583', '127.0.0.1:8080'], dids: ['did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'] })).toEqual({
      hosts: ['pds.example.com', 'localhost:2583', '127.0.0.1:8080'],
      dids: ['did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'],
    });
    expect(parseBackfillRequest({ dids: Array.from({ length: MAX_DIDS }, (_, i) => `did:web:h${i}.example`) }).dids).toHaveLength(MAX_DIDS);
  });

  test('the message names the field and the entry', () => {
    const message = (body: unknown): string => {
      try {
        parseBackfillRequest(body);
      } catch (error) {
        expect(error).toBeInstanceOf(XrpcError);
        return (error as XrpcError).message;
      }
      throw new Error('accepted');
    };
    expect(message({ dids: ['did:web:ok.example', 'nope'] })).toBe('dids[1] "nope" is not a DID (did:method:id)');
    expect(message({ hosts: ['https://x.example'] })).toStartWith('hosts[0] "https://x.example" is not a host name');
    expect(message({ colour: 'red' })).toBe('unknown field "colour": expected all, hosts, dids or retryFailed');
    expect(message({ dids: [`did:web:${'x'.repeat(2100)}`] })).toContain('…');
  });

  test('hostName', () => {
    const cases: Array<[string, string | null]> = [
      ['pds.example.com', 'pds.example.com'],
      ['PDS.EXAMPLE.COM:443', 'pds.example.com:443'],
      ['localhost', 'localhost'],
      ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
      ['a.b-c.d:65535', 'a.b-c.d:65535'],
      ['pds.example.com:65536', null],
      ['pds.example.com:080', null],
      ['pds.example.com:', null],
      ['pds.example.com.', null],
      ['.example.com', null],
      ['pds_1.example.com', null],
      ['[::1]:2583', null],
      ['pds.example.com:2583/', null],
      [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`],
      [`${'a.'.repeat(127)}ab`, null], // 256 characters
    ];
    for (const [input, expected] of cases) expect([input, hostName(input)]).toEqual([input, expected]);
  });
});

describe('a started backfill draining its queue against a local PLC directory', () => {
  let migrated: MigratedDatabase;
  let fixture: TestBackfill;
  let app: App;
  let plc: ReturnType<typeof Bun.serve>;
  const broken = plcDid('broken');

  beforeAll(async () => {
    // The PLC directory knows no DID (the import ends 'repo-gone'), but fails on one ('did-unresolvable').
    plc = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (request) =>
        new URL(request.url).pathname === `/${broken}` ? new Response('overloaded', { status: 500 }) : Response.json({ message: 'DID not registered' }, { status: 404 }),
    });
    cleanups.push(async () => plc.stop(true));
    migrated = await migratedDatabase('api_backfill_run', 4);
    cleanups.push(() => migrated.close());
    fixture = testBackfill(migrated.db, `http://127.0.0.1:${plc.port}`);
    cleanups.push(() => fixture.close());
    const metrics = new MetricsService({ db: migrated.db, ingest: null, config: { relayUrl: 'wss://relay.invalid', maxConcurrentUserCreations: 4 }, backfill: fixture.backfill });
    app = createApp({ log: silentLogger, readiness: {}, metrics, backfill: fixture.backfill, adminToken: TOKEN });
    await fixture.backfill.start();
  });

  const rows = async (): Promise<Record<string, string>> =>
    Object.fromEntries((await migrated.db.run((sql) => sql<{ did: string; state: string; lastError: string | null }[]>`select did, state, last_error from backfill_repos`)).map((row) => [row.did, `${row.state} ${row.lastError?.split(':')[0]}`]));

  test('DIDs POSTed are imported, the one that fails waits for its retry; the JSON, /metrics and the tile follow', async () => {
    const dids = [plcDid('gone'), plcDid('gonetoo'), broken];
    expect(await (await post(app, JSON.stringify({ dids }))).json()).toEqual({ queued: { repos: 3, hosts: 0 } });
    await until(async () => Object.values(await rows()).filter((row) => row !== 'queued undefined').length === 3);
    expect(await rows()).toEqual({ [plcDid('gone')]: 'done repo-gone', [plcDid('gonetoo')]: 'done repo-gone', [broken]: 'queued did-unresolvable' });

    const json = await backfillJson(app, TOKEN);
    expect(json).toMatchObject({
      enabled: true,
      repos: { queued: 1, done: 2, inactive: 0, failed: 0 },
      hostsListing: 0,
      hostsToList: 0,
      activeImports: 0,
      outcomes: { 'repo-gone': 2, 'did-unresolvable': 1 },
      recordsImported: 0,
      recordsChanged: 0,
      invalidRecords: 0,
      bytesFetched: 0,
      unverified: 0,
      listed: { hosts: 0, repos: 0, invalid: 0 },
      troubledHosts: [],
    });
    // the rate is over the last 10 s (here, 2 repos or none): the ETA is the one queued repo at it
    const rate = json.reposPerSecond as number;
    expect(json.etaSeconds).toBe(rate > 0 ? Math.round(1 / rate) : null);

    const parsed = parsePrometheus(await (await get(app, '/metrics', TOKEN)).text());
    expect(sampleValue(parsed, 'aqueduct_backfill_imports_total', { outcome: 'repo-gone' })).toBe(2);
    expect(sampleValue(parsed, 'aqueduct_backfill_imports_total', { outcome: 'did-unresolvable' })).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_backfill_repos', { state: 'done' })).toBe(2);
    expect(sampleValue(parsed, 'aqueduct_backfill_repos', { state: 'queued' })).toBe(1);
    expect(sampleValue(parsed, 'aqueduct_backfill_active_imports')).toBe(0);
    expect(sampleValue(parsed, 'aqueduct_backfill_hosts_paused')).toBe(0);

    const tile = await (await get(app, '/dashboard/tiles/backfill', TOKEN)).text();
    expect(tile).toContain('<p class="value">2<span class="unit">repos done</span></p>');
    expect(tile).toContain('<span class="backfill-queued">1</span> queued · <span class="backfill-failed">0</span> failed · 0 inactive');
    expect(tile).toMatch(/data-state="ok"/);
    expect(tile).not.toContain('class="troubled"');
  });
});
