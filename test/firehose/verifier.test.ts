import { afterAll, describe, expect, test } from 'bun:test';
import { WorkerVerifier } from '../../src/firehose/verifier.ts';
import { createLogger } from '../../src/log.ts';
import { k256Signer, p256Signer, type Signer } from './fixtures.ts';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const did = (n: number) => `did:plc:${'a'.repeat(22)}${LETTERS[Math.floor(n / 26) % 26]}${LETTERS[n % 26]}`;

// the directory: did(0..9) have a secp256k1 key, did(10) a P-256 key, did(11) is unknown, did(12) fails
const signers = new Map<string, Signer>();
for (let n = 0; n < 10; n++) signers.set(did(n), k256Signer(n + 1));
for (let n = 20; n < 24; n++) signers.set(did(n), k256Signer(n + 1));
signers.set(did(10), p256Signer());
// its export lists the operations in `exported` (none at first)
const exported: string[] = [];
const exportLine = (n: number) =>
  JSON.stringify({
    did: did(n),
    operation: { type: 'plc_operation', verificationMethods: { atproto: `did:key:${signers.get(did(n))!.multikey}` } },
    nullified: false,
    createdAt: new Date(Date.now() - 60_000 + exported.length).toISOString(),
  });
const requests = new Map<string, number>();
const plc = Bun.serve({
  port: 0,
  fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/export') {
      const after = Date.parse(url.searchParams.get('after')!);
      return new Response(exported.filter((line) => Date.parse(JSON.parse(line).createdAt) > after).join('\n'));
    }
    const id = decodeURIComponent(url.pathname.slice(1));
    requests.set(id, (requests.get(id) ?? 0) + 1);
    if (id === did(12)) return new Response('down', { status: 500 });
    const signer = signers.get(id);
    if (!signer) return new Response('{}', { status: 404 });
    return Response.json({
      id,
      alsoKnownAs: ['at://someone.test'],
      verificationMethod: [{ id: `${id}#atproto`, type: 'Multikey', controller: id, publicKeyMultibase: signer.multikey }],
      service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.example.com' }],
    });
  },
});
afterAll(() => plc.stop(true));

const unsigned = (n: number) => new TextEncoder().encode(`unsigned commit ${n}`);

describe('WorkerVerifier', () => {
  test('light and busy firehoses get the same outcomes from one key cache, each document fetched once', async () => {
    const verifier = await WorkerVerifier.start(`http://127.0.0.1:${plc.port}`, createLogger('error'));
    try {
      for (let n = 0; n < 10; n++) verifier.prefetch(did(n));
      // light: a few commits, checked on this thread
      expect(await verifier.verify(did(0), unsigned(0), signers.get(did(0))!.sign(unsigned(0)))).toBe('ok');
      expect(await verifier.verify(did(10), unsigned(0), signers.get(did(10))!.sign(unsigned(0)))).toBe('ok');
      expect(await verifier.verify(did(11), unsigned(0), new Uint8Array(64))).toBe('key-invalid');
      expect(await verifier.verify(did(12), unsigned(0), new Uint8Array(64))).toBe('key-unavailable');
      expect(verifier.checksOnWorker).toBe(0);
      expect(verifier.fetchesOnWorker).toBe(0);

      // busy: more commits in a second than the light limit, packed for the worker with their
      // sizes; every 7th is signed by the wrong key, every 13th has its sig cut short by a byte
      // (both views into larger buffers), every 17th signs nothing
      const expected: string[] = [];
      const outcomes: Promise<string>[] = [];
      for (let n = 0; n < 3000; n++) {
        const repo = did(n % 11);
        const signer = n % 7 === 0 ? k256Signer(99) : signers.get(repo)!;
        const message = n % 17 === 0 ? new Uint8Array(0) : unsigned(n);
        const sig = signer.sign(message);
        expected.push(n % 7 === 0 || n % 13 === 0 ? 'bad-signature' : 'ok');
        outcomes.push(verifier.verify(repo, message, n % 13 === 0 ? sig.subarray(0, 63) : sig));
      }
      expect(await Promise.all(outcomes)).toEqual(expected);
      expect(verifier.checksOnWorker).toBeGreaterThan(1000);
      for (let n = 0; n <= 10; n++) expect(requests.get(did(n))).toBe(1);
    } finally {
      await verifier.close();
    }
  });

  test('a busy firehose sends P-256 checks to the worker too, bad signatures included', async () => {
    const verifier = await WorkerVerifier.start(`http://127.0.0.1:${plc.port}`, createLogger('error'));
    try {
      // the first 999 commits of a second are light (checked here); every one after goes to the worker
      const outcomes: Promise<string>[] = [];
      const expected: string[] = [];
      for (let n = 0; n < 1100; n++) {
        outcomes.push(verifier.verify(did(1), unsigned(n), signers.get(did(1))!.sign(unsigned(n))));
        expected.push('ok');
      }
      for (let n = 0; n < 200; n++) {
        const signer = n % 10 === 0 ? p256Signer() : signers.get(did(10))!;
        outcomes.push(verifier.verify(did(10), unsigned(n), signer.sign(unsigned(n))));
        expected.push(n % 10 === 0 ? 'bad-signature' : 'ok');
      }
      expect(await Promise.all(outcomes)).toEqual(expected);
      // 301 when the loop stays inside one wall-clock second; a slow machine crossing a second's
      // boundary moves a few either way, so only "the worker took part" is asserted
      expect(verifier.checksOnWorker).toBeGreaterThan(0);
      expect(verifier.checksOnWorker).toBeLessThanOrEqual(1100 + 200);
    } finally {
      await verifier.close();
    }
  });

  test("following the export, new repos' keys come from its pages: no document is fetched for them", async () => {
    exported.push(exportLine(20), exportLine(21));
    const verifier = await WorkerVerifier.start(`http://127.0.0.1:${plc.port}`, createLogger('error'), { followExport: true });
    try {
      const sign = (n: number) => signers.get(did(n))!.sign(unsigned(n));
      // learned from the first page before their commits come
      for (let tries = 0; tries < 200 && verifier.exportFigures!.operations < 2; tries++) await Bun.sleep(10);
      expect(await verifier.verify(did(21), unsigned(21), sign(21))).toBe('ok');
      // created after the export was read: the first commit's prefetch waits for the next page
      exported.push(exportLine(22));
      verifier.prefetch(did(22), true);
      expect(await verifier.verify(did(22), unsigned(22), sign(22))).toBe('ok');
      // a new repo the export does not list, and a repo not new: their documents are fetched
      verifier.prefetch(did(23), true);
      expect(await verifier.verify(did(23), unsigned(23), sign(23))).toBe('ok');
      verifier.prefetch(did(5));
      expect(await verifier.verify(did(5), unsigned(5), sign(5))).toBe('ok');
      expect(verifier.exportFigures).toMatchObject({ following: true, operations: 3, waitsAnswered: 1, waitsMissed: 1, badLines: 0 });
      expect([20, 21, 22, 23].map((n) => requests.get(did(n)) ?? 0)).toEqual([0, 0, 0, 1]);
    } finally {
      await verifier.close();
    }
  });
});
