import { describe, expect, test } from 'bun:test';
import { ServiceAuth, type KeyResolver } from '../../src/api/xrpc/auth.ts';
import { XrpcError } from '../../src/api/errors.ts';
import { k256Signer } from '../firehose/fixtures.ts';

const AUDIENCE = 'did:web:appview.test';
const ISSUER = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
const signer = k256Signer(9);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function token(claims: Record<string, unknown>, sign = signer): string {
  const header = b64({ alg: 'ES256K', typ: 'JWT' });
  const payload = b64({ iss: ISSUER, aud: AUDIENCE, lxm: 'app.bsky.feed.getTimeline', exp: Math.floor(Date.now() / 1000) + 60, ...claims });
  return `Bearer ${header}.${payload}.${Buffer.from(sign.sign(new TextEncoder().encode(`${header}.${payload}`))).toString('base64url')}`;
}

async function failure(promise: Promise<unknown>): Promise<[string, string]> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(XrpcError);
    return [(error as XrpcError).error, (error as XrpcError).message];
  }
  throw new Error('expected a refusal');
}

describe('ServiceAuth', () => {
  test('a token valid for far longer than a PDS mints them is refused', async () => {
    const auth = new ServiceAuth({ audience: AUDIENCE, resolver: { resolve: async () => ({ signingKey: signer.didKey }), invalidate: () => {} } });
    expect(await auth.verify(token({}), { lxm: 'app.bsky.feed.getTimeline' })).toBe(ISSUER);
    expect((await failure(auth.verify(token({ exp: Math.floor(Date.now() / 1000) + 3600 }), { lxm: 'app.bsky.feed.getTimeline' })))[0]).toBe('BadJwt');
  });

  test('forged tokens cost one document fetch a minute per issuer, not one each', async () => {
    let invalidations = 0;
    const resolver: KeyResolver = { resolve: async () => ({ signingKey: signer.didKey }), invalidate: () => void invalidations++ };
    let now = Date.now();
    const auth = new ServiceAuth({ audience: AUDIENCE, resolver, now: () => now });
    const forged = token({}, k256Signer(10));
    for (let i = 0; i < 20; i++) expect((await failure(auth.verify(forged, { lxm: 'app.bsky.feed.getTimeline' })))[0]).toBe('BadJwtSignature');
    expect(invalidations).toBe(1);
    now += 61_000;
    await failure(auth.verify(token({ exp: Math.floor(now / 1000) + 60 }, k256Signer(10)), { lxm: 'app.bsky.feed.getTimeline' }));
    expect(invalidations).toBe(2);
  });

  test('an issuer whose key cannot be had gets one reason, whatever the cause', async () => {
    const causes = [new Error('connect ECONNREFUSED 10.0.0.1:5432'), new Error('refused: a private address'), new Error('timed out')];
    const answers = new Set<string>();
    for (const cause of causes) {
      const auth = new ServiceAuth({ audience: AUDIENCE, resolver: { resolve: () => Promise.reject(cause), invalidate: () => {} } });
      answers.add((await failure(auth.verify(token({}), { lxm: 'app.bsky.feed.getTimeline' }))).join(': '));
    }
    const none = new ServiceAuth({ audience: AUDIENCE, resolver: { resolve: async () => ({ signingKey: null }), invalidate: () => {} } });
    answers.add((await failure(none.verify(token({}), { lxm: 'app.bsky.feed.getTimeline' }))).join(': '));
    expect([...answers]).toEqual(['BadJwtSignature: jwt signature does not match jwt issuer']);
  });
});
