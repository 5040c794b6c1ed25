/**
 * The simulated network's PDS hosts: which account lives where, and how a hostile host misbehaves.
 *
 * Owns: the account -> host assignment, the hosts' loopback addresses, and the hostile answers a
 * host gives to `com.atproto.sync.getRepo`.
 * Promises: the assignment depends only on (seed, accounts, hosts); with more accounts than hosts
 * every host holds at least one account; the spread is skewed like the real network's: host h draws
 * accounts with weight 1 / (h + 1)^1.5, so with 20 hosts host 0 holds ~40%, host 1 ~15%, and the
 * last ones 1-2% each. Host h listens on loopback address 127.0.0.(h + 2) (then 127.0.1.x, ...) on
 * the relay's port: every host has a hostname of its own, as a real PDS does, so an allowlist, a
 * per-host limit or a log line can tell them apart (Linux routes all of 127/8 to the loopback
 * interface; macOS would need the aliases added).
 *
 * Hostile kinds (each for getRepo only: listRepos, getRecord and the DID documents stay correct):
 *   garbage           200 with random bytes (deterministic per DID) as the CAR
 *   wrong-root        200, a complete repo CAR whose header root is the MST root, not the commit
 *   bad-signature     200, a complete repo CAR whose commit is signed by a key not in the DID document
 *   endless           200, the repo's CAR header and blocks, then valid-looking raw blocks forever
 *   trickle           200, the correct CAR at TRICKLE_BYTES bytes every TRICKLE_MS ms
 *   redirect-private  302 to http://10.0.0.1/xrpc/com.atproto.sync.getRepo?did=...
 *   rate-limited      every `rateLimitEvery`-th getRepo of the host (default 3rd, 6th, ...) is a 429
 *                     `RateLimitExceeded` with `Retry-After: 1`; every getRepo answer carries
 *                     ratelimit-limit/-remaining/-reset/-policy; the others are correct
 *   unavailable       503, plain text
 * A repo on a hostile host cannot be imported, except on a rate-limited one (retry after a 429).
 */
import type { Account } from './account.ts';
import { simKey, type SimKey } from './keys.ts';
import { Rng } from './rng.ts';

export const HOST_FAULTS = ['garbage', 'wrong-root', 'bad-signature', 'endless', 'trickle', 'redirect-private', 'rate-limited', 'unavailable'] as const;
export type HostFault = (typeof HOST_FAULTS)[number];

/** Faults whose repos an importer can still get (after retrying). */
export const importableDespite = (fault: HostFault | undefined): boolean => fault === undefined || fault === 'rate-limited';

export const TRICKLE_BYTES = 4;
export const TRICKLE_MS = 500;
export const DEFAULT_RATE_LIMIT_EVERY = 3;
export const MAX_HOSTS = 60_000;

/** Loopback address of host `h` (127.0.0.2 upwards; the relay keeps 127.0.0.1). */
export const hostAddress = (h: number): string => {
  const n = h + 2;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

/** Host index of every account (Uint16Array by account index). */
export const assignHosts = (seed: string, accounts: number, hosts: number): Uint16Array => {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS) throw new RangeError(`hosts must be an integer in 1..${MAX_HOSTS}, got ${hosts}`);
  const out = new Uint16Array(accounts);
  if (hosts === 1) return out;
  const rng = Rng.derive(seed, 'hosts');
  const cumulative = new Float64Array(hosts);
  let total = 0;
  for (let h = 0; h < hosts; h++) cumulative[h] = total += 1 / (h + 1) ** 1.5;
  for (let i = 0; i < accounts; i++) {
    const x = rng.float() * total;
    let lo = 0;
    let hi = hosts - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    out[i] = lo;
  }
  // no empty host: each host without an account takes a distinct one from the biggest host
  if (accounts >= hosts) {
    const counts = new Int32Array(hosts);
    for (const h of out) counts[h]!++;
    let donor = 0;
    for (let h = 0; h < hosts; h++) {
      if (counts[h]! > 0) continue;
      while (out[donor] !== 0 || counts[0]! <= 1) donor++;
      out[donor] = h;
      counts[0]!--;
      counts[h]!++;
    }
  }
  return out;
};

/** The key a `bad-signature` host signs with: not any account's. */
export const hostileKey = (seed: string): SimKey => simKey('multikey', new TextEncoder().encode(`aqueduct-sim/hostile-host/${seed}`));

const CAR_HEADERS = { 'content-type': 'application/vnd.ipld.car' };
const ENDLESS_CHUNK = 64 * 1024;

/** A CAR section entry: varint length, a raw CID (not checked here: a streaming reader sees a block), bytes. */
const endlessChunk = (): Uint8Array => {
  const out = new Uint8Array(ENDLESS_CHUNK);
  // varint of 36 + payload (< 2^21, three bytes), CIDv1 raw sha256 header, zero digest, zero payload
  let len = ENDLESS_CHUNK - 3;
  let o = 0;
  for (let i = 0; i < 3; i++) {
    out[o++] = (len & 0x7f) | (i < 2 ? 0x80 : 0);
    len >>= 7;
  }
  out.set([1, 0x55, 0x12, 32], o);
  return out;
};

export interface HostileContext {
  readonly seed: string;
  readonly key: SimKey;
  readonly rateLimitEvery: number;
  /** getRepo requests this host has answered so far */
  requests: number;
}

/** The hostile answer of a host with `fault` to getRepo for `account` (whose repo exists and is active). */
export const hostileGetRepo = (fault: HostFault, account: Account, ctx: HostileContext): Response => {
  ctx.requests++;
  switch (fault) {
    case 'garbage': {
      const rng = Rng.derive(ctx.seed, `garbage/${account.did}`);
      return new Response(rng.bytes(rng.range(1, 64 * 1024)), { headers: CAR_HEADERS });
    }
    case 'wrong-root':
      return new Response(account.repo.exportCar({ root: 'data' }), { headers: CAR_HEADERS });
    case 'bad-signature':
      return new Response(account.repo.exportCar({ signer: ctx.key }), { headers: CAR_HEADERS });
    case 'endless': {
      const car = account.repo.exportCar()!;
      const chunk = endlessChunk();
      let first = true;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(first ? car : chunk);
            first = false;
          },
        }, { highWaterMark: 1 }),
        { headers: CAR_HEADERS },
      );
    }
    case 'trickle': {
      const car = account.repo.exportCar()!;
      let at = 0;
      let timer: ReturnType<typeof setTimeout> | null = null;
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(car.slice(0, TRICKLE_BYTES));
            at = TRICKLE_BYTES;
          },
          pull(controller) {
            return new Promise<void>((resolve) => {
              timer = setTimeout(() => {
                timer = null;
                if (at >= car.length) controller.close();
                else controller.enqueue(car.slice(at, (at += TRICKLE_BYTES)));
                resolve();
              }, TRICKLE_MS);
            });
          },
          cancel() {
            if (timer !== null) clearTimeout(timer);
          },
        }, { highWaterMark: 0 }),
        { headers: CAR_HEADERS },
      );
    }
    case 'redirect-private':
      return new Response(null, { status: 302, headers: { location: `http://10.0.0.1/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(account.did)}` } });
    case 'rate-limited': {
      const every = ctx.rateLimitEvery;
      const used = ((ctx.requests - 1) % every) + 1;
      const reset = String(Math.ceil(Date.now() / 1000) + 1);
      const limits = { 'ratelimit-limit': String(every - 1), 'ratelimit-reset': reset, 'ratelimit-policy': `${every - 1};w=1` };
      if (used === every) {
        return Response.json(
          { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' },
          { status: 429, headers: { ...limits, 'ratelimit-remaining': '0', 'retry-after': '1' } },
        );
      }
      return new Response(account.repo.exportCar(), { headers: { ...CAR_HEADERS, ...limits, 'ratelimit-remaining': String(every - 1 - used) } });
    }
    case 'unavailable':
      return new Response('Service Unavailable\n', { status: 503, headers: { 'content-type': 'text/plain' } });
  }
};
