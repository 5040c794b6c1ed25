import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { PlcExport, readEntry } from '../../src/identity/plc-export.ts';
import { createLogger } from '../../src/log.ts';

const base32 = 'abcdefghijklmnopqrstuvwxyz234567';
const did = (n: number) => `did:plc:${'a'.repeat(18)}${Array.from({ length: 6 }, (_, i) => base32[Math.floor(n / 32 ** (5 - i)) % 32]).join('')}`;
const key = (n: number) => `did:key:zQ3sh${n}`;
const started = Date.now() - 60_000;
const createdAt = (n: number) => new Date(started + n).toISOString();
const operation = (n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    did: did(n),
    operation: { type: 'plc_operation', rotationKeys: [key(n)], verificationMethods: { atproto: key(n) }, alsoKnownAs: [], services: {}, prev: null, sig: 'x' },
    cid: 'bafy',
    nullified: false,
    createdAt: createdAt(n),
    ...extra,
  });

/** When a line was created; a line without a readable one counts as the first. */
const createdAtOf = (line: string): number => {
  try {
    return Date.parse(JSON.parse(line).createdAt) || started;
  } catch {
    return started;
  }
};

// a directory whose export the tests fill: lines in createdAt order, pages cut like plc.directory's
let lines: string[] = [];
let status = 200;
let delayMs = 0;
const afters: string[] = [];
const directory = Bun.serve({
  port: 0,
  async fetch(request) {
    const url = new URL(request.url);
    if (delayMs > 0) await Bun.sleep(delayMs);
    if (url.pathname !== '/export') return new Response('not found', { status: 404 });
    if (status !== 200) return new Response('no', { status });
    const after = Date.parse(url.searchParams.get('after')!);
    afters.push(url.searchParams.get('after')!);
    const count = Number(url.searchParams.get('count'));
    const page = lines.filter((line) => createdAtOf(line) > after).slice(0, count);
    return new Response(page.join('\n'), { headers: { 'content-type': 'application/jsonlines' } });
  },
});
afterAll(() => directory.stop(true));

const plcUrl = `http://127.0.0.1:${directory.port}`;
const warnings: string[] = [];
const log = createLogger('warn', (line) => warnings.push(line));
let feeds: PlcExport[] = [];
afterEach(async () => {
  await Promise.all(feeds.map((feed) => feed.stop()));
  feeds = [];
  lines = [];
  status = 200;
  delayMs = 0;
  afters.length = 0;
  warnings.length = 0;
});

const follow = (options: { idlePollMs?: number; url?: string } = {}) => {
  const learned: [string, string | null][] = [];
  const feed = new PlcExport({
    plcUrl: options.url ?? plcUrl,
    fetch: globalThis.fetch,
    log,
    learn: (d, k) => learned.push([d, k]),
    startAt: new Date(started - 1),
    idlePollMs: options.idlePollMs ?? 60_000,
    minGapMs: 10,
  });
  feeds.push(feed);
  feed.start();
  return { feed, learned };
};

const until = async (done: () => boolean) => {
  for (let tries = 0; tries < 500 && !done(); tries++) await Bun.sleep(10);
  expect(done()).toBe(true);
};

describe('PlcExport', () => {
  test('pages through a backlog in order, one request per 1,000 operations, and moves its position to the newest', async () => {
    lines = Array.from({ length: 2500 }, (_, n) => operation(n));
    const { feed, learned } = follow();
    await until(() => learned.length === 2500);
    expect(learned.map(([d]) => d)).toEqual(Array.from({ length: 2500 }, (_, n) => did(n)));
    expect(learned[7]).toEqual([did(7), key(7)]);
    expect(afters).toEqual([createdAt(-1), createdAt(999), createdAt(1999)]);
    expect(feed.figures).toMatchObject({ following: true, position: createdAt(2499), pages: 3, operations: 2500, badLines: 0 });
  });

  test("a new repo's wait is answered by the next page that brings its key, which is then not learned as well", async () => {
    lines = [operation(0)];
    const { feed, learned } = follow();
    await until(() => feed.figures.pages === 1);
    const waiting = feed.awaitKey(did(1));
    lines.push(operation(1));
    // the idle wait (60 s) is cut short by the wait
    expect(await waiting).toBe(key(1));
    expect(learned).toEqual([[did(0), key(0)]]);
    expect(feed.figures).toMatchObject({ waitsAnswered: 1, waitsMissed: 0 });
  });

  test('a wait for a DID the next short page does not list falls back (undefined), as does a did:web', async () => {
    lines = [operation(0)];
    const { feed } = follow();
    await until(() => feed.figures.pages === 1);
    expect(await feed.awaitKey(did(5))).toBeUndefined();
    expect(await feed.awaitKey('did:web:example.com')).toBeUndefined();
    expect(feed.figures).toMatchObject({ waitsAnswered: 0, waitsMissed: 1, pages: 2 });
  });

  test('lines that are not PLC operations are counted and skipped; nullified ones are skipped; a tombstone drops the key', async () => {
    lines = [
      'not json',
      operation(0),
      JSON.stringify({ did: 'did:plc:UPPER', operation: {}, createdAt: createdAt(1) }),
      operation(2, { nullified: true }),
      JSON.stringify({ did: did(3), operation: { type: 'plc_tombstone', prev: 'x', sig: 'x' }, nullified: false, createdAt: createdAt(3) }),
      operation(4, { operation: { type: 'plc_operation', verificationMethods: { atproto: 42 } } }),
    ];
    const { feed, learned } = follow();
    await until(() => feed.figures.pages === 1);
    expect(learned).toEqual([
      [did(0), key(0)],
      [did(3), null],
    ]);
    expect(feed.figures).toMatchObject({ badLines: 3, operations: 2, position: createdAt(3) });
  });

  test('a directory without an export stops the loop with one warning; waits fall back at once', async () => {
    const { feed } = follow({ url: `${plcUrl}/elsewhere` });
    await until(() => !feed.figures.following);
    expect(await feed.awaitKey(did(1))).toBeUndefined();
    expect(warnings.filter((line) => line.includes('no export'))).toHaveLength(1);
  });

  test('a failing directory is retried after a backoff; while it fails, waits fall back at once', async () => {
    status = 503;
    lines = [operation(0)];
    const { feed, learned } = follow();
    await until(() => feed.figures.failures === 1);
    expect(await feed.awaitKey(did(0))).toBeUndefined();
    status = 200;
    // the first backoff is 1 s
    await until(() => learned.length === 1);
    expect(feed.figures).toMatchObject({ failures: 1, pages: 1 });
    expect(warnings.filter((line) => line.includes('export failed'))).toHaveLength(1);
  });

  test('stop() ends a request in flight and answers the waits still open', async () => {
    lines = [];
    const { feed } = follow();
    await until(() => feed.figures.pages === 1);
    // the next request hangs for longer than the test may run
    delayMs = 60_000;
    const waiting = feed.awaitKey(did(9));
    await Bun.sleep(50);
    await feed.stop();
    expect(await waiting).toBeUndefined();
    expect(feed.figures).toMatchObject({ pages: 1, waitsMissed: 1 });
  });
});

describe('readEntry', () => {
  test('reads the key of a current operation, a legacy create and a tombstone', () => {
    const at = createdAt(0);
    expect(readEntry(JSON.parse(operation(0)))).toEqual({ did: did(0), createdAtMs: Date.parse(at), nullified: false, signingKey: key(0) });
    expect(readEntry({ did: did(1), operation: { type: 'create', signingKey: key(1), handle: 'a.test' }, createdAt: at })?.signingKey).toBe(key(1));
    expect(readEntry({ did: did(2), operation: { type: 'plc_operation', verificationMethods: {} }, createdAt: at })?.signingKey).toBeNull();
    expect(readEntry({ did: did(3), operation: { type: 'plc_tombstone' }, createdAt: at })?.signingKey).toBeNull();
  });

  test('refuses what is not an operation', () => {
    const at = createdAt(0);
    expect(readEntry(null)).toBeNull();
    expect(readEntry({ did: did(0), operation: { type: 'plc_operation' }, createdAt: 'yesterday' })).toBeNull();
    expect(readEntry({ did: did(0), operation: { type: 'something' }, createdAt: at })).toBeNull();
    expect(readEntry({ did: did(0), operation: { type: 'create', signingKey: 'zQ3' }, createdAt: at })).toBeNull();
    expect(readEntry({ did: did(0), operation: { type: 'create', signingKey: key(0) }, nullified: 'no', createdAt: at })).toBeNull();
  });
});
