/**
 * Repositories that already exist when the simulation starts, for a backfill to import.
 *
 * Owns: how many records each preloaded repo holds (the size spread) and what they are.
 * Promises: deterministic for (seed, accounts, options); accounts 0 .. `accounts - 1` get a repo
 * (the oldest accounts: the live workload signs up the later ones), their sizes sum to exactly
 * `records`; every record is valid per its lexicon and dated in the year before the simulated
 * epoch (rkeys and revs are TIDs of that year, so every live TID sorts after them); each repo is
 * one signed commit (repo.ts `preload`) and no frame is emitted for it: a subscriber learns of a
 * preloaded repo only from listRepos/getRepo, or from the live commits that chain from it.
 *
 * The spread: `giants` repos (random accounts) of 100,001..150,000 records; every other repo draws
 * a Pareto weight (exponent `tailExponent`, default 1.2) scaled so the whole adds up, capped at
 * 99,999 and at least 1. With about 100 records per account on average, ~75% of repos hold fewer
 * than 100 records, ~1% more than 1,000, and the giants most of the rest.
 *
 * The mix of a repo: a profile (every repo of 2 or more records, 70% of single-record ones), then
 * per record like 45, post 22 (30% replies, 5% quotes), follow 18, repost 8, listitem 3, block 2,
 * list 0.5 (weights, %). Likes and reposts name distinct earlier preloaded posts, follows, blocks
 * and list items distinct accounts (never the author): where a repo has more of those than there
 * are subjects, the rest are posts.
 */
import * as TID from '@atcute/tid';
import { didFor, type Account, type AccountDirectory } from './account.ts';
import { cborBlock, cidString, type Block } from './block.ts';
import * as R from './records.ts';
import { Rng } from './rng.ts';

export interface PreloadOptions {
  /** records over all preloaded repos */
  readonly records: number;
  /** accounts with a preloaded repo (default: 90% of the accounts, at most `records`) */
  readonly accounts?: number;
  /** repos of more than 100,000 records (default: one per 500,000 records) */
  readonly giants?: number;
  /** Pareto exponent of the other repos' sizes: smaller is a longer tail (default 1.2) */
  readonly tailExponent?: number;
}

export interface PreloadedRecord {
  readonly collection: string;
  readonly rkey: string;
  readonly record: unknown;
}

export const GIANT_MIN = 100_001;
const GIANT_SPAN = 50_000;
const TAIL_MAX = 99_999;
const YEAR_US = 365 * 24 * 3600 * 1_000_000;

/** The size of each preloaded repo, account index order. */
export const preloadSizes = (seed: string, accounts: number, options: PreloadOptions): Int32Array => {
  const records = options.records;
  const n = Math.min(accounts, records, options.accounts ?? Math.max(1, Math.floor(accounts * 0.9)));
  const giants = options.giants ?? Math.floor(records / 500_000);
  const alpha = options.tailExponent ?? 1.2;
  if (!Number.isInteger(records) || records < 0) throw new RangeError(`preload.records must be an integer >= 0, got ${records}`);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`preload.accounts must be an integer >= 0, got ${options.accounts}`);
  if (!Number.isInteger(giants) || giants < 0 || giants > n) throw new RangeError(`preload.giants must be an integer in 0..${n}, got ${giants}`);
  if (!(alpha > 0)) throw new RangeError(`preload.tailExponent must be > 0, got ${alpha}`);
  const sizes = new Int32Array(n);
  if (n === 0) return sizes;
  const rng = Rng.derive(seed, 'preload/sizes');
  const isGiant = new Uint8Array(n);
  for (let placed = 0; placed < giants; ) {
    const i = rng.int(n);
    if (isGiant[i] === 1) continue;
    isGiant[i] = 1;
    sizes[i] = GIANT_MIN + rng.int(GIANT_SPAN);
    placed++;
  }
  const left = records - sizes.reduce((a, b) => a + b, 0);
  const others = n - giants;
  if (left < others || left > others * TAIL_MAX) {
    throw new RangeError(`preload: ${records} records do not fit ${giants} giants and ${others} other repos of 1..${TAIL_MAX} records`);
  }
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (isGiant[i] === 1) continue;
    weights[i] = (1 - rng.float()) ** (-1 / alpha);
    total += weights[i]!;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (isGiant[i] === 1) continue;
    sizes[i] = Math.min(TAIL_MAX, Math.max(1, Math.floor((weights[i]! * left) / total)));
    sum += sizes[i]!;
  }
  // rounding and the caps leave a difference: spread it one record at a time over the others
  let diff = left - sum;
  for (let i = rng.int(n); diff !== 0; i = (i + 1) % n) {
    if (isGiant[i] === 1) continue;
    if (diff > 0 && sizes[i]! < TAIL_MAX) {
      sizes[i]!++;
      diff--;
    } else if (diff < 0 && sizes[i]! > 1) {
      sizes[i]!--;
      diff++;
    }
  }
  return sizes;
};

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** The k-th of `n` distinct values of 0..n-1, in a seeded order (an affine walk, stride coprime to n). */
class Walk {
  readonly #n: number;
  readonly #offset: number;
  readonly #stride: number;

  constructor(rng: Rng, n: number) {
    this.#n = n;
    this.#offset = n === 0 ? 0 : rng.int(n);
    let stride = n <= 1 ? 1 : 1 + rng.int(n - 1);
    while (n > 1 && gcd(stride, n) !== 1) stride = (stride % (n - 1)) + 1;
    this.#stride = stride;
  }

  at(k: number): number {
    return (this.#offset + k * this.#stride) % this.#n;
  }
}

const MIX = { like: 45, post: 22, follow: 18, repost: 8, listitem: 3, block: 2, list: 0.5 } as const;

export interface PreloadResult {
  /** records per preloaded repo, account index order */
  readonly sizes: Int32Array;
  readonly records: number;
  readonly ms: number;
}

/**
 * Builds the preloaded repos into `directory`'s accounts; `each` sees every account's records once
 * its repo is built (for the ground truth and the workload), or is skipped when null.
 */
export const preloadRepos = (
  directory: AccountDirectory,
  epochMs: number,
  options: PreloadOptions,
  each: ((account: Account, records: readonly PreloadedRecord[]) => void) | null,
): PreloadResult => {
  const started = performance.now();
  const seed = directory.seed;
  const sizes = preloadSizes(seed, directory.size, options);
  const rng = Rng.derive(seed, 'preload/records');
  const step = Math.max(1, Math.floor(YEAR_US / (options.records + directory.size + 1)));
  let us = epochMs * 1000 - YEAR_US;
  const dids: (string | undefined)[] = new Array(directory.size);
  const didOf = (index: number): string => (dids[index] ??= didFor(seed, index));
  // every preloaded post so far: what likes, reposts, replies and quotes can name
  const postUris: string[] = [];
  const postCids: string[] = [];
  const postRoots: number[] = [];

  for (let index = 0; index < sizes.length; index++) {
    const account = directory.at(index);
    const size = sizes[index]!;
    const clockId = account.clockId;
    const byCollection = new Map<string, { rkeys: string[]; blocks: Block[] }>();
    const kept: PreloadedRecord[] | null = each === null ? null : [];
    let time = '';
    const tick = (): string => {
      us += step;
      time = new Date(Math.floor(us / 1000)).toISOString();
      return TID.create(us, clockId);
    };
    const put = (collection: string, rkey: string, record: Record<string, unknown>): Block => {
      let c = byCollection.get(collection);
      if (c === undefined) byCollection.set(collection, (c = { rkeys: [], blocks: [] }));
      const block = cborBlock(record);
      c.rkeys.push(rkey);
      c.blocks.push(block);
      kept?.push({ collection, rkey, record });
      return block;
    };
    const post = (): void => {
      const rkey = tick();
      const uri = `at://${account.did}/${R.COLLECTIONS.post}/${rkey}`;
      let reply: R.PostContext['reply'] = null;
      let root = postUris.length;
      if (postUris.length > 0 && rng.chance(0.3)) {
        const parent = rng.int(postUris.length);
        root = postRoots[parent]!;
        reply = { root: { uri: postUris[root]!, cid: postCids[root]! }, parent: { uri: postUris[parent]!, cid: postCids[parent]! } };
      }
      let quote: R.StrongRef | null = null;
      if (postUris.length > 0 && rng.chance(0.05)) {
        const q = rng.int(postUris.length);
        quote = { uri: postUris[q]!, cid: postCids[q]! };
      }
      const mentioned = index > 0 && rng.chance(0.2) ? directory.at(rng.int(index)) : null;
      const record = R.post(rng, { createdAt: time, mention: mentioned === null ? null : { did: mentioned.did, handle: mentioned.handle }, reply, quote });
      const block = put(R.COLLECTIONS.post, rkey, record);
      postUris.push(uri);
      postCids.push(cidString(block.cid));
      postRoots.push(root);
    };

    let left = size;
    if (size >= 2 || rng.chance(0.7)) {
      tick();
      put(R.COLLECTIONS.profile, 'self', R.profile(rng, account.name, time));
      left--;
    }
    const postsBefore = postUris.length;
    const likeWalk = new Walk(rng, postsBefore);
    const repostWalk = new Walk(rng, postsBefore);
    const followWalk = new Walk(rng, directory.size);
    const blockWalk = new Walk(rng, directory.size);
    const itemWalk = new Walk(rng, directory.size);
    let likes = 0;
    let reposts = 0;
    let follows = 0;
    let blocks = 0;
    let items = 0;
    let listUri: string | null = null;
    /** the next distinct account of `walk` after `k` (skipping the author), or -1 once all are used */
    const subject = (walk: Walk, k: number): [number, number] => {
      while (k < directory.size) {
        const s = walk.at(k++);
        if (s !== index) return [s, k];
      }
      return [-1, k];
    };
    for (; left > 0; left--) {
      const kind = rng.weighted(MIX);
      if (kind === 'like' && likes < postsBefore) {
        const p = likeWalk.at(likes++);
        put(R.COLLECTIONS.like, tick(), R.like({ uri: postUris[p]!, cid: postCids[p]! }, time));
      } else if (kind === 'repost' && reposts < postsBefore) {
        const p = repostWalk.at(reposts++);
        put(R.COLLECTIONS.repost, tick(), R.repost({ uri: postUris[p]!, cid: postCids[p]! }, time));
      } else if (kind === 'follow' || kind === 'block' || kind === 'listitem') {
        if (kind === 'listitem' && listUri === null) {
          const rkey = tick();
          put(R.COLLECTIONS.list, rkey, R.list(rng, 'app.bsky.graph.defs#curatelist', time));
          listUri = `at://${account.did}/${R.COLLECTIONS.list}/${rkey}`;
          continue;
        }
        const walk = kind === 'follow' ? followWalk : kind === 'block' ? blockWalk : itemWalk;
        const [s, next] = subject(walk, kind === 'follow' ? follows : kind === 'block' ? blocks : items);
        if (kind === 'follow') follows = next;
        else if (kind === 'block') blocks = next;
        else items = next;
        if (s < 0) {
          post();
          continue;
        }
        const rkey = tick();
        if (kind === 'follow') put(R.COLLECTIONS.follow, rkey, R.follow(didOf(s), time));
        else if (kind === 'block') put(R.COLLECTIONS.block, rkey, R.block(didOf(s), time));
        else put(R.COLLECTIONS.listitem, rkey, R.listitem(didOf(s), listUri!, time));
      } else if (kind === 'list') {
        const rkey = tick();
        put(R.COLLECTIONS.list, rkey, R.list(rng, rng.chance(0.7) ? 'app.bsky.graph.defs#curatelist' : 'app.bsky.graph.defs#modlist', time));
        listUri ??= `at://${account.did}/${R.COLLECTIONS.list}/${rkey}`;
      } else {
        post();
      }
    }

    const paths: string[] = [];
    const blocksInOrder: Block[] = [];
    for (const collection of [...byCollection.keys()].sort()) {
      const c = byCollection.get(collection)!;
      for (let i = 0; i < c.rkeys.length; i++) {
        paths.push(`${collection}/${c.rkeys[i]}`);
        blocksInOrder.push(c.blocks[i]!);
      }
    }
    us += step;
    account.repo.preload(paths, blocksInOrder, TID.create(us, clockId), account.key);
    each?.(account, kept!);
  }
  return { sizes, records: options.records, ms: performance.now() - started };
};
