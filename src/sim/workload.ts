/**
 * The workload: decides what happens next on the simulated network.
 *
 * Owns: who writes what, the mix of collections, which records exist to be liked, replied to,
 * quoted or deleted, account lifecycle choices, and which faults to inject where.
 * Promises: deterministic for a given seed and options; every planned commit from an active account;
 * references (likes, replies, quotes, list items) point at records the workload believes live;
 * faulty commits always come from accounts that already have an accepted commit, so rejecting them
 * (or skipping their ops) never changes who counts as an actor; a rejected commit's records never
 * enter the pools, so nothing later refers to them.
 *
 * Mix of an ordinary commit (weights, %): like 48, post 14 (35% replies, ~8% quotes, media embeds,
 * facets, self-labels), follow 11, repost 9, delete 8 (like 45 / follow 25 / repost 15 / post 15),
 * block 1.5, profile create/edit 1.5, listitem 1.2, post+threadgate 0.6, list 0.4, post+postgate 0.3,
 * post edit 0.3, listblock 0.2, feed generator 0.1, starter pack (list + items + pack in one commit) 0.1,
 * labeler service 0.02. A brand-new account's first commit is a profile (60%), a follow (25%) or a post.
 */
import * as CBOR from '@atcute/cbor';
import type { Account, AccountDirectory, AccountStatus } from './account.ts';
import { cborBlock, cidString } from './block.ts';
import type { SimClock } from './clock.ts';
import { Pool, type Slotted } from './pool.ts';
import * as R from './records.ts';
import type { RepoOp } from './repo.ts';
import type { Rng } from './rng.ts';

// seqGap: the relay skips a few sequence numbers (nothing is missing); outdatedCursor: an
// `#info OutdatedCursor` frame in the middle of the stream; tooBig: a commit flagged `tooBig`
// (its changes only reach an indexer that fetches the repo); dropCommit: a commit the relay never
// sends (the repo's next commit then does not follow the last one sent: a rev gap). All four are
// drawn only when asked for, so the output of every seed without them is unchanged.
export const FAULT_KINDS = [
  'malformed',
  'badSignature',
  'unknownCollection',
  'invalidRecord',
  'duplicate',
  'replay',
  'seqGap',
  'outdatedCursor',
  'tooBig',
  'dropCommit',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultRates = Record<FaultKind, number>;

/**
 * Content faults travel inside a commit; `badCar` is the malformed variant that still carries a
 * seq; `tooBig` and `dropCommit` are real commits the relay flags or never sends.
 */
export type CommitFault = 'badSignature' | 'unknownCollection' | 'invalidRecord' | 'badCar' | 'tooBig' | 'dropCommit';

export interface WorkloadOptions {
  readonly newAccountShare: number;
  readonly faults: FaultRates;
  /** #identity (handle change) events per commit */
  readonly identityShare: number;
  /** #account (deactivate / reactivate / rarely delete) events per commit */
  readonly accountShare: number;
  /** #sync events per commit */
  readonly syncShare: number;
}

export type Planned =
  | { readonly kind: 'commit'; readonly account: Account; readonly ops: RepoOp[]; readonly fault: CommitFault | null; readonly firstCommit: boolean }
  | { readonly kind: 'identity'; readonly account: Account }
  | { readonly kind: 'account'; readonly account: Account; readonly status: AccountStatus }
  | { readonly kind: 'sync'; readonly account: Account }
  | { readonly kind: 'garbage'; readonly bytes: Uint8Array }
  | { readonly kind: 'truncated' }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'replay'; readonly back: number }
  | { readonly kind: 'seqGap'; readonly skip: number }
  | { readonly kind: 'outdatedCursor' };

interface PostEntry extends Slotted {
  /** numbers posts in creation order (edge keys name posts by it) */
  readonly serial: number;
  readonly author: Account;
  readonly rkey: string;
  readonly uri: string;
  cid: string;
  readonly root: R.StrongRef;
}

interface EdgeEntry extends Slotted {
  readonly author: Account;
  readonly collection: string;
  readonly rkey: string;
  readonly key: number;
}

interface ListEntry extends Slotted {
  readonly author: Account;
  readonly uri: string;
  readonly purpose: R.ListPurpose;
}

interface ActorEntry extends Slotted {
  readonly account: Account;
}

interface ActorState {
  profile: boolean;
  labeler: boolean;
  readonly lists: ListEntry[];
}

const ORDINARY_MIX = {
  like: 48,
  post: 14,
  follow: 11,
  repost: 9,
  delete: 8,
  block: 1.5,
  profile: 1.5,
  listitem: 1.2,
  threadgatedPost: 0.6,
  list: 0.4,
  postgatedPost: 0.3,
  postEdit: 0.3,
  listblock: 0.2,
  generator: 0.1,
  starterpack: 0.1,
  labeler: 0.02,
} as const;

const DELETE_MIX = { like: 45, follow: 25, repost: 15, post: 15 } as const;

const INVALID_KINDS: readonly R.InvalidKind[] = [
  'likeWithoutSubject',
  'postTextNumber',
  'followSubjectNotDid',
  'repostBadCid',
  'postNoCreatedAt',
];

const recordCid = (record: unknown): string => cidString(cborBlock(record).cid);

const EDGE_KINDS = { like: 0, repost: 1, follow: 2, block: 3 } as const;
/** authors (account indexes) below 2^24; subjects (post serials, account indexes) below 2^27 */
const AUTHOR_SPAN = 2 ** 24;
const SUBJECT_LIMIT = 2 ** 27;

/** One number per (kind, author, subject): a set of numbers costs far less than one of strings. */
const edgeKey = (kind: keyof typeof EDGE_KINDS, author: Account, subject: number): number => {
  if (subject >= SUBJECT_LIMIT) throw new RangeError(`simulator: edge subject ${subject} beyond ${SUBJECT_LIMIT}`);
  return (subject * 4 + EDGE_KINDS[kind]) * AUTHOR_SPAN + author.index;
};

export class Workload {
  readonly #rng: Rng;
  readonly #dir: AccountDirectory;
  readonly #clock: SimClock;
  readonly #opts: WorkloadOptions;
  /** accounts that have an accepted commit and are active */
  readonly #actors = new Pool<ActorEntry>();
  readonly #actorEntries = new Map<number, ActorEntry>();
  readonly #deactivated = new Pool<ActorEntry>();
  readonly #state = new Map<number, ActorState>();
  readonly #posts = new Pool<PostEntry>();
  readonly #likes = new Pool<EdgeEntry>();
  readonly #reposts = new Pool<EdgeEntry>();
  readonly #follows = new Pool<EdgeEntry>();
  readonly #lists = new Pool<ListEntry>();
  /** `edgeKey` of every like, repost, follow and block: no duplicates */
  readonly #edges = new Set<number>();
  #nextNew = 0;
  #posted = 0;

  constructor(rng: Rng, directory: AccountDirectory, clock: SimClock, options: WorkloadOptions) {
    this.#rng = rng;
    this.#dir = directory;
    this.#clock = clock;
    this.#opts = options;
    if (directory.size > AUTHOR_SPAN) throw new RangeError(`simulator: at most ${AUTHOR_SPAN} accounts`);
  }

  /** A preloaded account (preload.ts): an actor already, whose profile exists if `hasProfile`. */
  adopt(account: Account, hasProfile: boolean): void {
    this.#markActor(account);
    if (hasProfile) this.#stateOf(account).profile = true;
  }

  /** Accounts that have committed and are active right now. */
  get activeActors(): number {
    return this.#actors.size;
  }

  /** Everything that happens around the next commit, in emission order. */
  step(): Planned[] {
    const rng = this.#rng;
    const out: Planned[] = [];
    this.#clock.advance(rng.range(100, 1900));

    if (rng.chance(this.#opts.identityShare)) {
      const a = this.#actors.pick(rng);
      if (a !== undefined) out.push({ kind: 'identity', account: a.account });
    }
    if (rng.chance(this.#opts.accountShare)) {
      const p = this.#accountEvent();
      if (p !== null) out.push(p);
    }
    if (rng.chance(this.#opts.syncShare)) {
      const a = this.#actors.pick(rng);
      if (a !== undefined) out.push({ kind: 'sync', account: a.account });
    }

    const f = this.#opts.faults;
    const roll = rng.float();
    let fault: CommitFault | null = null;
    if (roll < f.badSignature) fault = 'badSignature';
    else if (roll < f.badSignature + f.unknownCollection) fault = 'unknownCollection';
    else if (roll < f.badSignature + f.unknownCollection + f.invalidRecord) fault = 'invalidRecord';
    const faulty = fault === null ? null : this.#faultyCommit(fault);
    let planned = faulty ?? this.#commit();
    // never a repo's first commit: a gap needs a commit before it to be seen
    if (planned.kind === 'commit' && planned.fault === null && !planned.firstCommit) {
      if (f.tooBig > 0 && rng.chance(f.tooBig)) planned = { ...planned, fault: 'tooBig' };
      else if (f.dropCommit > 0 && rng.chance(f.dropCommit)) planned = { ...planned, fault: 'dropCommit' };
    }
    out.push(planned);

    if (rng.chance(f.duplicate)) out.push({ kind: 'duplicate' });
    if (rng.chance(f.malformed)) {
      const variant = rng.weighted({ garbage: 40, truncated: 40, badCar: 20 });
      if (variant === 'garbage') out.push({ kind: 'garbage', bytes: rng.bytes(rng.range(1, 256)) });
      else if (variant === 'truncated') out.push({ kind: 'truncated' });
      else out.push(this.#faultyCommit('badCar') ?? { kind: 'truncated' });
    }
    if (rng.chance(f.replay)) out.push({ kind: 'replay', back: rng.range(2, 500) });
    if (f.seqGap > 0 && rng.chance(f.seqGap)) out.push({ kind: 'seqGap', skip: rng.range(1, 50) });
    if (f.outdatedCursor > 0 && rng.chance(f.outdatedCursor)) out.push({ kind: 'outdatedCursor' });
    return out;
  }

  // ---- authors -------------------------------------------------------------------------------

  #stateOf(account: Account): ActorState {
    let s = this.#state.get(account.index);
    if (s === undefined) {
      s = { profile: false, labeler: false, lists: [] };
      this.#state.set(account.index, s);
    }
    return s;
  }

  #markActor(account: Account): void {
    let entry = this.#actorEntries.get(account.index);
    if (entry === undefined) {
      entry = { slot: -1, account };
      this.#actorEntries.set(account.index, entry);
    }
    this.#deactivated.remove(entry);
    this.#actors.add(entry);
  }

  #takeNew(): Account | null {
    while (this.#nextNew < this.#dir.size) {
      const a = this.#dir.at(this.#nextNew++);
      if (a.status === 'active' && !this.#actorEntries.has(a.index)) return a;
    }
    return null;
  }

  /** Older actors write more (skewed towards early pool slots). */
  #pickActor(): Account | null {
    return this.#actors.pickEarly(this.#rng, 1.6)?.account ?? null;
  }

  #now(): string {
    return this.#clock.iso();
  }

  #tid(account: Account): string {
    return this.#clock.tid(account.clockId);
  }

  // ---- commits ------------------------------------------------------------------------------

  #commit(): Planned {
    const rng = this.#rng;
    let author: Account | null = null;
    let first = false;
    if (rng.chance(this.#opts.newAccountShare) || this.#actors.size === 0) {
      author = this.#takeNew();
      first = author !== null;
    }
    author ??= this.#pickActor();
    if (author === null) throw new Error('simulator: no active account left to write');
    const ops = first ? this.#firstOps(author) : this.#ordinaryOps(author);
    const account = ops.author;
    const wasActor = this.#actorEntries.has(account.index);
    this.#markActor(account);
    return { kind: 'commit', account, ops: ops.ops, fault: null, firstCommit: !wasActor };
  }

  #firstOps(author: Account): { author: Account; ops: RepoOp[] } {
    const kind = this.#rng.weighted({ profile: 60, follow: 25, post: 15 });
    if (kind === 'profile') return { author, ops: this.#profile(author) };
    if (kind === 'follow') return { author, ops: this.#follow(author) ?? this.#profile(author) };
    return { author, ops: this.#post(author, null) };
  }

  #ordinaryOps(chosen: Account): { author: Account; ops: RepoOp[] } {
    const rng = this.#rng;
    const action = rng.weighted(ORDINARY_MIX);
    const author = chosen;
    switch (action) {
      case 'like':
        return { author, ops: this.#likeOrRepost(author, 'like') ?? this.#post(author, null) };
      case 'repost':
        return { author, ops: this.#likeOrRepost(author, 'repost') ?? this.#post(author, null) };
      case 'post':
        return { author, ops: this.#post(author, null) };
      case 'threadgatedPost':
        return { author, ops: this.#post(author, 'threadgate') };
      case 'postgatedPost':
        return { author, ops: this.#post(author, 'postgate') };
      case 'follow':
        return { author, ops: this.#follow(author) ?? this.#post(author, null) };
      case 'block':
        return { author, ops: this.#block(author) ?? this.#post(author, null) };
      case 'profile':
        return { author, ops: this.#profile(author) };
      case 'delete':
        return this.#delete() ?? { author, ops: this.#post(author, null) };
      case 'postEdit':
        return this.#postEdit() ?? { author, ops: this.#post(author, null) };
      case 'list':
        return { author, ops: this.#list(author, rng.chance(0.7) ? 'app.bsky.graph.defs#curatelist' : 'app.bsky.graph.defs#modlist').ops };
      case 'listitem':
        return { author, ops: this.#listitem(author) };
      case 'listblock':
        return { author, ops: this.#listblock(author) };
      case 'generator':
        return { author, ops: [{ action: 'create', collection: R.COLLECTIONS.generator, rkey: this.#tid(author), record: R.generator(rng, this.#now()) }] };
      case 'starterpack':
        return { author, ops: this.#starterpack(author) };
      case 'labeler': {
        const s = this.#stateOf(author);
        const op: RepoOp = { action: s.labeler ? 'update' : 'create', collection: R.COLLECTIONS.labeler, rkey: 'self', record: R.labelerService(this.#now()) };
        s.labeler = true;
        return { author, ops: [op] };
      }
    }
  }

  #post(author: Account, companion: 'threadgate' | 'postgate' | null): RepoOp[] {
    const rng = this.#rng;
    const rkey = this.#tid(author);
    const uri = `at://${author.did}/${R.COLLECTIONS.post}/${rkey}`;
    let reply: R.PostContext['reply'] = null;
    if (rng.chance(0.35)) {
      const parent = this.#posts.pickSkewed(rng, 2);
      if (parent !== undefined) reply = { root: parent.root, parent: { uri: parent.uri, cid: parent.cid } };
    }
    let quote: R.StrongRef | null = null;
    if (rng.chance(0.08)) {
      const q = this.#posts.pickSkewed(rng, 2);
      if (q !== undefined) quote = { uri: q.uri, cid: q.cid };
    }
    const m = rng.chance(0.3) ? this.#actors.pick(rng)?.account : undefined;
    const record = R.post(rng, {
      createdAt: this.#now(),
      mention: m === undefined ? null : { did: m.did, handle: m.handle },
      reply,
      quote,
    });
    const cid = recordCid(record);
    this.#posts.add({ slot: -1, serial: this.#posted++, author, rkey, uri, cid, root: reply?.root ?? { uri, cid } });
    const ops: RepoOp[] = [{ action: 'create', collection: R.COLLECTIONS.post, rkey, record }];
    if (companion === 'threadgate') {
      ops.push({ action: 'create', collection: R.COLLECTIONS.threadgate, rkey, record: R.threadgate(rng, uri, this.#now()) });
    } else if (companion === 'postgate') {
      ops.push({ action: 'create', collection: R.COLLECTIONS.postgate, rkey, record: R.postgate(uri, this.#now()) });
    }
    return ops;
  }

  #likeOrRepost(author: Account, kind: 'like' | 'repost'): RepoOp[] | null {
    const rng = this.#rng;
    for (let attempt = 0; attempt < 3; attempt++) {
      const target = this.#posts.pickSkewed(rng, 3);
      if (target === undefined) return null;
      const key = edgeKey(kind, author, target.serial);
      if (this.#edges.has(key)) continue;
      this.#edges.add(key);
      const rkey = this.#tid(author);
      const subject = { uri: target.uri, cid: target.cid };
      const collection = kind === 'like' ? R.COLLECTIONS.like : R.COLLECTIONS.repost;
      const record = kind === 'like' ? R.like(subject, this.#now()) : R.repost(subject, this.#now());
      (kind === 'like' ? this.#likes : this.#reposts).add({ slot: -1, author, collection, rkey, key });
      return [{ action: 'create', collection, rkey, record }];
    }
    return null;
  }

  /** Someone to follow or block: usually an actor, sometimes any account (popular ones first). */
  #pickSubject(author: Account): Account | null {
    const rng = this.#rng;
    for (let attempt = 0; attempt < 3; attempt++) {
      const candidate = rng.chance(0.7)
        ? this.#actors.pickEarly(rng, 2)?.account
        : this.#dir.at(rng.skewed(this.#dir.size, 2));
      if (candidate !== undefined && candidate !== author && candidate.status !== 'deleted') return candidate;
    }
    return null;
  }

  #follow(author: Account): RepoOp[] | null {
    for (let attempt = 0; attempt < 3; attempt++) {
      const subject = this.#pickSubject(author);
      if (subject === null) return null;
      const key = edgeKey('follow', author, subject.index);
      if (this.#edges.has(key)) continue;
      this.#edges.add(key);
      const rkey = this.#tid(author);
      this.#follows.add({ slot: -1, author, collection: R.COLLECTIONS.follow, rkey, key });
      return [{ action: 'create', collection: R.COLLECTIONS.follow, rkey, record: R.follow(subject.did, this.#now()) }];
    }
    return null;
  }

  #block(author: Account): RepoOp[] | null {
    const subject = this.#pickSubject(author);
    if (subject === null) return null;
    const key = edgeKey('block', author, subject.index);
    if (this.#edges.has(key)) return null;
    this.#edges.add(key);
    return [{ action: 'create', collection: R.COLLECTIONS.block, rkey: this.#tid(author), record: R.block(subject.did, this.#now()) }];
  }

  #profile(author: Account): RepoOp[] {
    const s = this.#stateOf(author);
    const op: RepoOp = {
      action: s.profile ? 'update' : 'create',
      collection: R.COLLECTIONS.profile,
      rkey: 'self',
      record: R.profile(this.#rng, author.name, this.#now()),
    };
    s.profile = true;
    return [op];
  }

  #delete(): { author: Account; ops: RepoOp[] } | null {
    const rng = this.#rng;
    const kind = rng.weighted(DELETE_MIX);
    if (kind === 'post') {
      const p = this.#posts.pick(rng);
      if (p === undefined || p.author.status !== 'active') return null;
      this.#posts.remove(p);
      return { author: p.author, ops: [{ action: 'delete', collection: R.COLLECTIONS.post, rkey: p.rkey }] };
    }
    const pool = kind === 'like' ? this.#likes : kind === 'repost' ? this.#reposts : this.#follows;
    const e = pool.pick(rng);
    if (e === undefined || e.author.status !== 'active') return null;
    pool.remove(e);
    this.#edges.delete(e.key);
    return { author: e.author, ops: [{ action: 'delete', collection: e.collection, rkey: e.rkey }] };
  }

  #postEdit(): { author: Account; ops: RepoOp[] } | null {
    const p = this.#posts.pick(this.#rng);
    if (p === undefined || p.author.status !== 'active') return null;
    // the current value lives in the repo; decoding it back keeps the workload's memory small
    const stored = p.author.repo.getRecord(R.COLLECTIONS.post, p.rkey);
    const previous: unknown = stored === undefined ? undefined : CBOR.decode(stored.bytes);
    if (typeof previous !== 'object' || previous === null) return null;
    const record = R.editedPost(this.#rng, { ...previous });
    p.cid = recordCid(record);
    return { author: p.author, ops: [{ action: 'update', collection: R.COLLECTIONS.post, rkey: p.rkey, record }] };
  }

  #list(author: Account, purpose: R.ListPurpose): { list: ListEntry; ops: RepoOp[] } {
    const rkey = this.#tid(author);
    const list: ListEntry = { slot: -1, author, uri: `at://${author.did}/${R.COLLECTIONS.list}/${rkey}`, purpose };
    this.#lists.add(list);
    this.#stateOf(author).lists.push(list);
    return { list, ops: [{ action: 'create', collection: R.COLLECTIONS.list, rkey, record: R.list(this.#rng, purpose, this.#now()) }] };
  }

  #listitem(author: Account): RepoOp[] {
    const own = this.#stateOf(author).lists;
    if (own.length === 0) return this.#list(author, 'app.bsky.graph.defs#curatelist').ops;
    const list = this.#rng.pick(own);
    const subject = this.#pickSubject(author) ?? author;
    return [{ action: 'create', collection: R.COLLECTIONS.listitem, rkey: this.#tid(author), record: R.listitem(subject.did, list.uri, this.#now()) }];
  }

  #listblock(author: Account): RepoOp[] {
    const target = this.#lists.pick(this.#rng);
    if (target === undefined || target.purpose !== 'app.bsky.graph.defs#modlist' || target.author === author) {
      return this.#list(author, 'app.bsky.graph.defs#modlist').ops;
    }
    return [{ action: 'create', collection: R.COLLECTIONS.listblock, rkey: this.#tid(author), record: R.listblock(target.uri, this.#now()) }];
  }

  #starterpack(author: Account): RepoOp[] {
    const { list, ops } = this.#list(author, 'app.bsky.graph.defs#curatelist');
    const n = this.#rng.range(1, 3);
    for (let i = 0; i < n; i++) {
      const subject = this.#pickSubject(author) ?? author;
      ops.push({ action: 'create', collection: R.COLLECTIONS.listitem, rkey: this.#tid(author), record: R.listitem(subject.did, list.uri, this.#now()) });
    }
    ops.push({ action: 'create', collection: R.COLLECTIONS.starterpack, rkey: this.#tid(author), record: R.starterpack(this.#rng, list.uri, this.#now()) });
    return ops;
  }

  // ---- faults and lifecycle -------------------------------------------------------------------

  /** A commit whose content is faulty; null when no actor exists yet to send it. */
  #faultyCommit(fault: CommitFault): Planned | null {
    const rng = this.#rng;
    const author = this.#actors.pick(rng)?.account;
    if (author === undefined) return null;
    const now = this.#now();
    const rkey = this.#tid(author);
    const target = this.#posts.pick(rng);
    const subject: R.StrongRef = target === undefined
      ? { uri: `at://${author.did}/${R.COLLECTIONS.post}/${rkey}`, cid: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' }
      : { uri: target.uri, cid: target.cid };
    let op: RepoOp;
    if (fault === 'unknownCollection') {
      op = { action: 'create', collection: R.UNKNOWN_COLLECTION, rkey, record: R.unknownThing(rng, now) };
    } else if (fault === 'invalidRecord') {
      const bad = R.invalid(rng, rng.pick(INVALID_KINDS), subject, now);
      op = { action: 'create', collection: bad.collection, rkey, record: bad.record };
    } else {
      op = { action: 'create', collection: R.COLLECTIONS.like, rkey, record: R.like(subject, now) };
    }
    return { kind: 'commit', account: author, ops: [op], fault, firstCommit: false };
  }

  #accountEvent(): Planned | null {
    const rng = this.#rng;
    if (this.#deactivated.size > 0 && rng.chance(0.5)) {
      const e = this.#deactivated.pick(rng)!;
      this.#deactivated.remove(e);
      this.#actors.add(e);
      return { kind: 'account', account: e.account, status: 'active' };
    }
    // keep at least one writer
    if (this.#actors.size < 2) return null;
    const e = this.#actors.pick(rng)!;
    this.#actors.remove(e);
    if (rng.chance(0.05)) return { kind: 'account', account: e.account, status: 'deleted' };
    this.#deactivated.add(e);
    return { kind: 'account', account: e.account, status: 'deactivated' };
  }
}
