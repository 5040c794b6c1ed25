/**
 * The guarded client against servers on loopback only. What it must refuse is checked through
 * its decisions (judgeHop, the resolver seam): a refused address is never dialed, which the
 * servers' connection counts show.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { guardedFetch, judgeHop, OutboundRefused } from '../../src/outbound/guarded-fetch.ts';

let connections = 0;
const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch(request) {
    connections++;
    const url = new URL(request.url);
    if (url.pathname === '/hello') return new Response(`hello ${request.headers.get('host')}`);
    if (url.pathname === '/to') return new Response(null, { status: 302, headers: { location: url.searchParams.get('url')! } });
    if (url.pathname === '/loop') return new Response(null, { status: 301, headers: { location: '/loop' } });
    return new Response('not found', { status: 404 });
  },
});
afterAll(() => server.stop(true));
const here = `127.0.0.1:${server.port}`;

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(OutboundRefused);
    return (error as OutboundRefused).reason;
  }
  throw new Error('expected a refusal');
}

describe('guardedFetch', () => {
  test('loopback, private and metadata addresses in every written form are refused without a connection', async () => {
    const fetch = guardedFetch();
    const before = connections;
    for (const host of ['127.0.0.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '127.1', '[::1]', '[::ffff:127.0.0.1]', 'localhost']) {
      expect([host, await refusal(fetch(`http://${host}:${server.port}/hello`, {}))]).toEqual([host, 'address']);
    }
    expect(connections).toBe(before);
  });

  test('a name that resolves to a private address is refused; the resolver is asked once and the connection uses its answer', async () => {
    const asked: string[] = [];
    const fetch = guardedFetch({
      resolve: async (host) => {
        asked.push(host);
        return [{ address: '10.0.0.7', family: 4 }];
      },
    });
    const before = connections;
    expect(await refusal(fetch(`http://pds.example.com:${server.port}/hello`, {}))).toBe('address');
    expect(asked).toEqual(['pds.example.com']);
    expect(connections).toBe(before);
  });

  test('an allowed name connects to the address that was checked, with its own Host header', async () => {
    let calls = 0;
    const fetch = guardedFetch({
      allowPrivateHosts: new Set(['pds.sim.test']),
      // a rebinding resolver: a second lookup would answer something else
      resolve: async () => (calls++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '169.254.169.254', family: 4 }]),
    });
    const response = await fetch(`http://pds.sim.test:${server.port}/hello`, {});
    expect(await response.text()).toBe(`hello pds.sim.test:${server.port}`);
    expect(calls).toBe(1);
  });

  test('redirects are judged hop by hop: to a private address, too many, and manual', async () => {
    const fetch = guardedFetch({ allowPrivateHosts: new Set(['127.0.0.1']) });
    expect(await (await fetch(`http://${here}/to?url=${encodeURIComponent(`http://${here}/hello`)}`, {})).text()).toBe(`hello ${here}`);
    const before = connections;
    expect(await refusal(fetch(`http://${here}/to?url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`, {}))).toBe('address');
    expect(await refusal(fetch(`http://${here}/to?url=${encodeURIComponent(`http://[::ffff:127.0.0.1]:${server.port}/hello`)}`, {}))).toBe('address');
    expect(connections).toBe(before + 2); // the two first hops only
    expect(await refusal(fetch(`http://${here}/loop`, {}))).toBe('redirects');
    const manual = await fetch(`http://${here}/to?url=${encodeURIComponent('http://169.254.169.254/')}`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
  });

  test('judgeHop: https stays https, only http(s), IP literals judged', () => {
    const allow = new Set<string>();
    expect(() => judgeHop(new URL('http://pds.example.com/'), true, allow)).toThrow(OutboundRefused);
    expect(judgeHop(new URL('https://pds.example.com/'), true, allow)).toBe('pds.example.com');
    expect(() => judgeHop(new URL('file:///etc/passwd'), false, allow)).toThrow(OutboundRefused);
    expect(() => judgeHop(new URL('ftp://pds.example.com/'), false, allow)).toThrow(OutboundRefused);
    expect(() => judgeHop(new URL('http://[fd00::1]/'), false, allow)).toThrow(OutboundRefused);
  });
});
