/**
 * The verification worker: DID document fetches and signature checks when the firehose is busy.
 *
 * Holds no signing-key cache: the one cache lives with `WorkerVerifier` on the pipeline's thread,
 * which sends each check its key. Here: fetching and parsing DID documents (a `DidResolver`
 * behind a circuit breaker per host), and ~50 us secp256k1 and ~57 us P-256 checks beside the
 * thread that reads the socket and writes batches, on the second core (a P-256 point becomes a
 * KeyObject once, kept for the next checks: at most P256_KEYS of them).
 * Protocol (see `verifier.ts`): `{ type: 'init', plcUrl, allowPrivateHosts }` once, answered `{ type: 'ready' }`;
 * then `{ type: 'work', ids, sizes, bytes, resolveIds, resolveDids, prefetch, hurry, invalidate }`.
 * The checks come packed: `ids`, `sizes` and `bytes` are views over one ArrayBuffer that the
 * pipeline's thread transferred (a structured clone copies each Uint8Array it meets, with the
 * whole buffer under it: a frame's, for a commit's bytes). Check i is `ids[i]`; `sizes[3i]`,
 * `sizes[3i+1]`, `sizes[3i+2]` are the lengths of its key (an uncompressed secp256k1 point, 65
 * bytes, or a compressed P-256 point, 33), its
 * sig and its unsigned commit, which follow one another in `bytes` in that order, check after
 * check. They are answered at once, in one `{ type: 'checked', ids, valid }` (`ids` the same view,
 * its buffer transferred back; `valid[i]` 1 or 0). Each resolution (request ids beside their DIDs;
 * `prefetch` flags the ones that may wait) is answered as its document arrives, gathered per turn
 * into `{ type: 'resolved', ids, answers }`. At most PREFETCH_CONCURRENCY prefetches run at once,
 * the others wait in order; a DID in `hurry` (a commit waits for it) starts at once. Never throws:
 * every answer is a signing key (or null: the document has none) or a failure the pipeline's
 * thread rebuilds as a `DidResolutionError`.
 */
import { DidResolutionError, type DidResolutionErrorReason } from '../identity/did-resolver.ts';
import { commitKeyResolver, type GuardedKeyResolver } from './guarded-key-resolver.ts';
import type { KeyObject } from 'node:crypto';
import { KeyError, p256KeyObject, verifyP256Signature, verifySecp256k1Signature } from './signature.ts';
import type { KeyAnswer } from './signing-keys.ts';

declare const self: Worker;

export interface InitMessage {
  readonly type: 'init';
  readonly plcUrl: string;
  /** ALLOW_PRIVATE_HOSTS */
  readonly allowPrivateHosts: readonly string[];
}
export interface WorkMessage {
  readonly type: 'work';
  /** the checks' request ids; `ids`, `sizes` and `bytes` share one transferred ArrayBuffer */
  readonly ids: Float64Array;
  /** per check: the length of its key, of its sig, of its unsigned commit */
  readonly sizes: Uint32Array;
  /** per check, in order: key (uncompressed secp256k1 point or compressed P-256 point), sig, unsigned commit */
  readonly bytes: Uint8Array;
  readonly resolveIds: number[];
  readonly resolveDids: string[];
  /** per resolution: true when it only prepares a later commit and may wait its turn */
  readonly prefetch: boolean[];
  readonly hurry: string[];
  readonly invalidate: string[];
}
export interface CheckedMessage {
  readonly type: 'checked';
  /** the work message's `ids`, its buffer transferred back */
  readonly ids: Float64Array;
  /** per check: 1 when the signature is valid, else 0 */
  readonly valid: Uint8Array;
}
/** A resolution's answer: the document's signing key (and why it is unusable), or why there is none. */
export type ResolveAnswer =
  | KeyAnswer
  | { readonly failure: { readonly reason: DidResolutionErrorReason | null; readonly status: number | null; readonly message: string } };
export interface ResolvedMessage {
  readonly type: 'resolved';
  readonly ids: number[];
  readonly answers: ResolveAnswer[];
}

const PREFETCH_CONCURRENCY = 64;
/** A check's key of this length is a compressed P-256 point; a secp256k1 one is sent uncompressed (65). */
export const P256_POINT_BYTES = 33;
const P256_KEYS = 4_096;

let resolver: GuardedKeyResolver | null = null;
let resolved: { ids: number[]; answers: ResolveAnswer[] } | null = null;
let running = 0;
/** prefetches waiting for a slot, in order, and their request ids by DID */
const waitingOrder: string[] = [];
let waitingHead = 0;
const waitingIds = new Map<string, number[]>();

self.onmessage = (event: MessageEvent<InitMessage | WorkMessage>) => {
  const message = event.data;
  if (message.type === 'init') {
    resolver = commitKeyResolver(message.plcUrl, message.allowPrivateHosts);
    self.postMessage({ type: 'ready' });
    return;
  }
  const keys = resolver;
  if (!keys) return;
  for (const did of message.invalidate) keys.invalidate(did);
  if (message.ids.length) self.postMessage(check(message), [message.ids.buffer]);
  for (let index = 0; index < message.resolveIds.length; index++) {
    const id = message.resolveIds[index]!;
    const did = message.resolveDids[index]!;
    if (!message.prefetch[index] || running < PREFETCH_CONCURRENCY) start(keys, id, did);
    else wait(id, did);
  }
  for (const did of message.hurry) {
    const ids = waitingIds.get(did);
    waitingIds.delete(did);
    for (const id of ids ?? []) start(keys, id, did);
  }
};

/** Checks the packed signatures of a work message. */
function check({ ids, sizes, bytes }: WorkMessage): CheckedMessage {
  const valid = new Uint8Array(ids.length);
  let at = 0;
  for (let index = 0; index < ids.length; index++) {
    const keyEnd = at + sizes[3 * index]!;
    const sigEnd = keyEnd + sizes[3 * index + 1]!;
    const end = sigEnd + sizes[3 * index + 2]!;
    const key = bytes.subarray(at, keyEnd);
    const unsigned = bytes.subarray(sigEnd, end);
    const sig = bytes.subarray(keyEnd, sigEnd);
    if (key.length !== P256_POINT_BYTES) valid[index] = verifySecp256k1Signature(unsigned, sig, key) ? 1 : 0;
    else {
      const keyObject = p256Key(key);
      valid[index] = keyObject !== null && verifyP256Signature(unsigned, sig, keyObject) ? 1 : 0;
    }
    at = end;
  }
  return { type: 'checked', ids, valid };
}

const p256Keys = new Map<string, KeyObject>();

/** The KeyObject of a P-256 point, made once (the oldest dropped past P256_KEYS); null off the curve. */
function p256Key(point: Uint8Array): KeyObject | null {
  const name = Buffer.from(point).toString('latin1');
  let keyObject = p256Keys.get(name);
  if (keyObject === undefined) {
    try {
      keyObject = p256KeyObject(point);
    } catch (error) {
      if (error instanceof KeyError) return null;
      throw error;
    }
    if (p256Keys.size >= P256_KEYS) p256Keys.delete(p256Keys.keys().next().value!);
    p256Keys.set(name, keyObject);
  }
  return keyObject;
}

function wait(id: number, did: string): void {
  const ids = waitingIds.get(did);
  if (ids) ids.push(id);
  else {
    waitingIds.set(did, [id]);
    waitingOrder.push(did);
  }
}

function start(keys: GuardedKeyResolver, id: number, did: string): void {
  running++;
  keys.resolve(did).then(
    (document) => answer(id, { signingKey: document.signingKey, signingKeyProblem: document.signingKeyProblem }),
    (error: unknown) =>
      answer(id, {
        failure:
          error instanceof DidResolutionError
            ? { reason: error.reason, status: error.status, message: error.message }
            : { reason: null, status: null, message: String(error) },
      }),
  ).finally(() => {
    running--;
    startWaiting(keys);
  });
}

function startWaiting(keys: GuardedKeyResolver): void {
  while (running < PREFETCH_CONCURRENCY && waitingHead < waitingOrder.length) {
    const did = waitingOrder[waitingHead++]!;
    const ids = waitingIds.get(did);
    waitingIds.delete(did);
    for (const id of ids ?? []) start(keys, id, did);
  }
  if (waitingHead === waitingOrder.length) {
    waitingOrder.length = 0;
    waitingHead = 0;
  } else if (waitingHead > 1024 && waitingHead * 2 > waitingOrder.length) {
    waitingOrder.splice(0, waitingHead);
    waitingHead = 0;
  }
}

function answer(id: number, outcome: ResolveAnswer): void {
  if (!resolved) {
    resolved = { ids: [], answers: [] };
    setImmediate(flush);
  }
  resolved.ids.push(id);
  resolved.answers.push(outcome);
}

function flush(): void {
  const batch = resolved;
  resolved = null;
  if (batch) self.postMessage({ type: 'resolved', ...batch } satisfies ResolvedMessage);
}
