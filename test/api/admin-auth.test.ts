import { expect, test } from 'bun:test';
import { createApp } from '../../src/api/app.ts';
import { silentLogger } from '../../src/log.ts';

const TOKEN = 'a-token-of-24-characters';

test('with ADMIN_TOKEN, the operator pages need it (Bearer or Basic); health, readiness and XRPC stay open', async () => {
  const app = createApp({ log: silentLogger, readiness: {}, adminToken: TOKEN });
  const get = (path: string, authorization?: string) =>
    app.handle(new Request(`http://localhost${path}`, authorization ? { headers: { authorization } } : {}));
  for (const path of ['/', '/api/metrics/event-processor', '/api/metrics/backfill', '/metrics', '/dashboard/tiles/events', '/static/htmx.js']) {
    const refused = await get(path);
    expect([path, refused.status]).toEqual([path, 401]);
    expect(refused.headers.get('www-authenticate')).toContain('Basic');
    expect((await get(path, 'Bearer wrong-token-wrong-token')).status).toBe(401);
    expect((await get(path, `Basic ${Buffer.from('anyone:nearly-the-token').toString('base64')}`)).status).toBe(401);
    // the token lets the request through to the routes (this app has none of them: 404)
    expect((await get(path, `Bearer ${TOKEN}`)).status).toBe(404);
    expect((await get(path, `Basic ${Buffer.from(`operator:${TOKEN}`).toString('base64')}`)).status).toBe(404);
  }
  expect((await get('/health')).status).toBe(200);
  expect((await get('/xrpc/app.bsky.actor.getProfile?actor=alice.test')).status).not.toBe(401);
  expect((await get('/.well-known/did.json')).status).not.toBe(401);
});

test('without ADMIN_TOKEN nothing asks for one, and actions are refused', async () => {
  const app = createApp({ log: silentLogger, readiness: {} });
  expect((await app.handle(new Request('http://localhost/metrics'))).status).toBe(404);
  const action = await app.handle(new Request('http://localhost/api/backfill', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }));
  expect(action.status).toBe(403);
  expect(((await action.json()) as { message: string }).message).toContain('set it');
  // what is public stays public whatever the method
  expect((await app.handle(new Request('http://localhost/xrpc/app.bsky.feed.getTimeline', { method: 'POST' }))).status).not.toBe(403);
});

test('with ADMIN_TOKEN, an action needs it as Bearer: a remembered Basic password is not enough', async () => {
  const app = createApp({ log: silentLogger, readiness: {}, adminToken: TOKEN });
  const send = (authorization?: string) =>
    app.handle(new Request('http://localhost/api/backfill', { method: 'POST', ...(authorization ? { headers: { authorization } } : {}) }));
  for (const authorization of [undefined, `Basic ${Buffer.from(`operator:${TOKEN}`).toString('base64')}`, 'Bearer wrong-token-wrong-token', `bearer${TOKEN}`]) {
    const refused = await send(authorization);
    expect([authorization, refused.status]).toEqual([authorization, 401]);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="Aqueduct"');
  }
  expect((await send(`Bearer ${TOKEN}`)).status).toBe(404); // through to the routes (none here)
});
