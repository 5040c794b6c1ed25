import { expect, test } from 'bun:test';
import { createApp } from '../../src/api/app.ts';
import { silentLogger } from '../../src/log.ts';

const TOKEN = 'a-token-of-24-characters';

test('with ADMIN_TOKEN, the operator pages need it (Bearer or Basic); health, readiness and XRPC stay open', async () => {
  const app = createApp({ log: silentLogger, readiness: {}, adminToken: TOKEN });
  const get = (path: string, authorization?: string) =>
    app.handle(new Request(`http://localhost${path}`, authorization ? { headers: { authorization } } : {}));
  for (const path of ['/', '/api/metrics/event-processor', '/metrics', '/partials/events', '/static/htmx.js']) {
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

test('without ADMIN_TOKEN nothing asks for one', async () => {
  const app = createApp({ log: silentLogger, readiness: {} });
  expect((await app.handle(new Request('http://localhost/metrics'))).status).toBe(404);
});
