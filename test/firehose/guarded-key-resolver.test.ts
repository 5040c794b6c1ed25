import { afterAll, describe, expect, test } from 'bun:test';
import { GuardedKeyResolver } from '../../src/firehose/guarded-key-resolver.ts';
import { CircuitBreakers } from '../../src/identity/circuit-breaker.ts';
import { DidResolutionError, DidResolver } from '../../src/identity/did-resolver.ts';

let status = 500;
let requests = 0;
const plc = Bun.serve({
  port: 0,
  fetch() {
    requests++;
    return new Response(JSON.stringify({ message: 'nope' }), { status });
  },
});
afterAll(() => plc.stop(true));

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const did = (n: number) => `did:plc:${'a'.repeat(22)}${LETTERS[Math.floor(n / 26) % 26]}${LETTERS[n % 26]}`;

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error instanceof DidResolutionError ? error.reason : String(error);
  }
}

describe('GuardedKeyResolver', () => {
  test('a failing directory opens the circuit: lookups then fail at once, one probe per cooldown', async () => {
    let now = 1_000_000;
    const resolver = new GuardedKeyResolver(
      new DidResolver({ plcUrl: `http://127.0.0.1:${plc.port}` }),
      new CircuitBreakers({ failureThreshold: 3, cooldownMs: 10_000, now: () => now }),
    );
    status = 500;
    requests = 0;
    for (let n = 0; n < 3; n++) expect(await reason(resolver.resolve(did(n)))).toBe('http-status');
    expect(requests).toBe(3);
    for (let n = 3; n < 10; n++) expect(await reason(resolver.resolve(did(n)))).toBe('network');
    expect(requests).toBe(3); // nothing reached the directory while the circuit was open

    now += 10_001;
    status = 404; // the directory answers again (definitively, for this DID)
    expect(await reason(resolver.resolve(did(20)))).toBe('not-found');
    expect(await reason(resolver.resolve(did(21)))).toBe('not-found');
    expect(requests).toBe(5);
  });

  test('definitive answers do not open the circuit', async () => {
    const resolver = new GuardedKeyResolver(new DidResolver({ plcUrl: `http://127.0.0.1:${plc.port}` }), new CircuitBreakers({ failureThreshold: 2 }));
    status = 410;
    requests = 0;
    for (let n = 0; n < 5; n++) expect(await reason(resolver.resolve(did(100 + n)))).toBe('tombstoned');
    expect(requests).toBe(5);
  });
});
