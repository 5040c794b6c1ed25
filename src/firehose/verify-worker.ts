/**
 * The verification worker: signing keys and signature checks on a thread of their own.
 *
 * Runs a `SigningKeyCache` over a `DidResolver`, so DID document fetches and ~50 us signature
 * checks happen beside the thread that reads the socket and writes batches, on the second core.
 * Protocol (see `verifier.ts`): `{ type: 'init', plcUrl }` once, answered `{ type: 'ready' }`;
 * then batches `{ type: 'jobs', ids, dids, unsigned, sigs, prefetch, invalidate }`, answered by
 * batches `{ type: 'results', ids, outcomes }`: jobs whose key is cached are answered at once, in
 * one message per batch; the others as their key arrives (a slow fetch delays only its commits). Never throws: every outcome is one of VerifyOutcome.
 */
import { DidResolver } from '../identity/did-resolver.ts';
import { Semaphore } from '../lib/semaphore.ts';
import { GuardedKeyResolver } from './guarded-key-resolver.ts';
import { SigningKeyCache, type VerifyOutcome } from './signing-keys.ts';

declare const self: Worker;

export interface InitMessage {
  readonly type: 'init';
  readonly plcUrl: string;
}
export interface JobsMessage {
  readonly type: 'jobs';
  readonly ids: number[];
  readonly dids: string[];
  readonly unsigned: Uint8Array[];
  readonly sigs: Uint8Array[];
  readonly prefetch: string[];
  readonly invalidate: string[];
}
export interface ResultsMessage {
  readonly type: 'results';
  readonly ids: number[];
  readonly outcomes: VerifyOutcome[];
}

const PREFETCH_CONCURRENCY = 64;

let keys: SigningKeyCache | null = null;
let results: ResultsMessage | null = null;
const prefetchSlots = new Semaphore(PREFETCH_CONCURRENCY);

self.onmessage = (event: MessageEvent<InitMessage | JobsMessage>) => {
  const message = event.data;
  if (message.type === 'init') {
    // The key cache is what verification needs; the resolver's own document cache stays small.
    // A failing directory opens a circuit, so lookups fail at once instead of waiting on timeouts.
    keys = new SigningKeyCache(new GuardedKeyResolver(new DidResolver({ plcUrl: message.plcUrl, fetch: globalThis.fetch, maxEntries: 1000 })));
    self.postMessage({ type: 'ready' });
    return;
  }
  const cache = keys;
  if (!cache) return;
  for (const did of message.invalidate) cache.invalidate(did);
  const now: ResultsMessage = { type: 'results', ids: [], outcomes: [] };
  for (let index = 0; index < message.ids.length; index++) {
    const id = message.ids[index] as number;
    const did = message.dids[index] as string;
    const unsigned = message.unsigned[index] as Uint8Array;
    const sig = message.sigs[index] as Uint8Array;
    // the common case, a known key: answered in this same turn
    const outcome = cache.verifyCached(did, unsigned, sig);
    if (outcome !== null) {
      now.ids.push(id);
      now.outcomes.push(outcome);
      continue;
    }
    cache.verifyCommit(did, unsigned, sig).then(
      (result) => answer(id, result),
      // verifyCommit does not throw; if it ever did, index the commit and count it unverified
      () => answer(id, 'key-unavailable'),
    );
  }
  if (now.ids.length) self.postMessage(now);
  for (const did of message.prefetch) if (!cache.has(did)) prefetch(cache, did);
};

function answer(id: number, outcome: VerifyOutcome): void {
  if (!results) {
    results = { type: 'results', ids: [], outcomes: [] };
    setImmediate(flush);
  }
  results.ids.push(id);
  results.outcomes.push(outcome);
}

function flush(): void {
  const batch = results;
  results = null;
  if (batch) self.postMessage(batch);
}

/** Fetches `did`'s key ahead of its commits, at most PREFETCH_CONCURRENCY at once. */
function prefetch(cache: SigningKeyCache, did: string): void {
  prefetchSlots
    .run(async () => {
      if (!cache.has(did)) await cache.get(did);
    })
    .catch(() => {
      // the commit's own verification asks again and reports the outcome
    });
}
