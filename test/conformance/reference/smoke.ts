/**
 * Smoke check of the reference network (not a *.test.ts so `bun test` skips it):
 *
 *   bun test/conformance/reference/smoke.ts
 *
 * Starts the network, creates an account and a post on the PDS over XRPC, waits
 * for the post in the AppView's getAuthorFeed (first without, then with
 * processAll), prints the account's DID document from the PLC, and reads frames
 * from com.atproto.sync.subscribeRepos?cursor=0. Exits non-zero on failure.
 */
import { decodeFirst } from '@atcute/cbor';
import { startReferenceNetwork } from './reference-network.ts';

const out = (label: string, value: unknown) => console.log(`${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);

async function xrpc(base: string, nsid: string, init: { body?: unknown; token?: string; query?: Record<string, string> } = {}) {
  const url = new URL(`/xrpc/${nsid}`, base);
  for (const [k, v] of Object.entries(init.query ?? {})) url.searchParams.set(k, v);
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method: init.body !== undefined ? 'POST' : 'GET', headers, body: init.body !== undefined ? JSON.stringify(init.body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${nsid} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

async function waitForPost(bsky: string, actor: string, uri: string, timeoutMs: number) {
  const start = performance.now();
  let polls = 0;
  while (performance.now() - start < timeoutMs) {
    polls++;
    const res = await fetch(`${bsky}/xrpc/app.bsky.feed.getAuthorFeed?actor=${encodeURIComponent(actor)}`);
    const body = await res.json();
    // Until the AppView has indexed the account it answers 400 {"error":"InvalidRequest","message":"Profile not found"}.
    if (res.status === 400 && polls === 1) out('  first poll', `${res.status} ${JSON.stringify(body)}`);
    if (res.ok && body.feed.some((item: { post: { uri: string } }) => item.post.uri === uri)) return { ms: Math.round(performance.now() - start), polls };
    await Bun.sleep(10);
  }
  return undefined;
}

const t0 = performance.now();
const ref = await startReferenceNetwork();
let failed = false;
try {
  out('started in ms (incl. install check)', Math.round(performance.now() - t0));
  out('network', ref.info);

  // 1. account (dev-env's PDS has inviteRequired=false; handle must end in .test)
  const handle = `smoke${Date.now() % 100000}.test`;
  const account = await xrpc(ref.pds, 'com.atproto.server.createAccount', {
    body: { handle, email: `${handle}@example.com`, password: 'smoke-pass' },
  });
  out('createAccount', { did: account.did, handle: account.handle, keys: Object.keys(account) });

  // 2. DID document from the PLC
  const plcRes = await fetch(`${ref.plc}/${account.did}`);
  out('PLC GET /{did} status', `${plcRes.status} ${plcRes.headers.get('content-type')}`);
  out('PLC DID document', await plcRes.text());
  out('PLC GET /{did}/data', await (await fetch(`${ref.plc}/${account.did}/data`)).text());

  // 3. post, then read it back from the AppView without calling processAll
  const post = async (text: string) =>
    xrpc(ref.pds, 'com.atproto.repo.createRecord', {
      token: account.accessJwt,
      body: { repo: account.did, collection: 'app.bsky.feed.post', record: { $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString() } },
    });
  for (let i = 1; i <= 3; i++) {
    const created = await post(`hello reference #${i}`);
    const seen = await waitForPost(ref.bsky, account.did, created.uri, 15_000);
    out(`post #${i} (no processAll) visible in getAuthorFeed after`, seen ?? 'NOT within 15 s');
    if (!seen) failed = true;
  }

  // 4. with processAll
  const created = await post('hello reference (processAll)');
  const p0 = performance.now();
  await ref.processAll();
  const pMs = Math.round(performance.now() - p0);
  const feed = await xrpc(ref.bsky, 'app.bsky.feed.getAuthorFeed', { query: { actor: account.did } });
  const found = feed.feed.some((item: { post: { uri: string } }) => item.post.uri === created.uri);
  out('processAll took ms / post visible right after', `${pMs} / ${found}`);
  if (!found) failed = true;
  out('getAuthorFeed item[0]', feed.feed[0]);

  // 5. firehose
  const wsUrl = `${ref.pds.replace(/^http/, 'ws')}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`;
  const frames: { op: number; t?: string; seq?: number; repo?: string; did?: string; bytes: number }[] = [];
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => {
      ws.close();
      resolve();
    }, 2_000);
    ws.onmessage = (ev) => {
      const bytes = new Uint8Array(ev.data as ArrayBuffer);
      const [header, rest] = decodeFirst(bytes);
      const body = decodeFirst(rest)[0];
      frames.push({ op: header.op, t: header.t, seq: body.seq, repo: body.repo, did: body.did, bytes: bytes.length });
    };
    ws.onerror = (ev) => {
      clearTimeout(timer);
      reject(new Error(`websocket error ${String((ev as ErrorEvent).message ?? ev)}`));
    };
  });
  const types: Record<string, number> = {};
  for (const f of frames) types[f.t ?? `op${f.op}`] = (types[f.t ?? `op${f.op}`] ?? 0) + 1;
  out('subscribeRepos?cursor=0 frames in 2 s', { count: frames.length, types, first: frames[0], last: frames.at(-1) });
  if (frames.length === 0) failed = true;
} catch (err) {
  failed = true;
  console.error(err);
  console.error(ref.log().slice(-4000));
} finally {
  const s0 = performance.now();
  await ref.stop();
  out('stopped in ms', Math.round(performance.now() - s0));
}
out('result', failed ? 'FAIL' : 'OK');
process.exit(failed ? 1 : 0);
