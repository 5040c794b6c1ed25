/**
 * The simulated network's state machine: accounts, repos, the relay outbox and the ground truth.
 *
 * Owns: turning the workload's plans into real events: signed commits with CAR slices, identity,
 * account and sync events, and the faulty frames; assigning seqs; appending frames to the log;
 * feeding accepted events to the ground truth.
 * Promises: seqs start at 1 and increase by one per event that has a seq (by more after a seqGap
 * fault); frames are appended in seq
 * order (duplicates, replays and garbage excepted, by design); one `step()` = one commit plus the
 * events the workload planned around it; a forged or malformed commit never changes a repo or the
 * ground truth. The ground truth is kept only when asked for (it holds every live record). No I/O
 * here: the server owns sockets and timers.
 */
import { AccountDirectory, type Account } from './account.ts';
import { encodeCar, link } from './block.ts';
import { SimClock } from './clock.ts';
import { EventLog } from './event-log.ts';
import {
  accountFrame,
  commitFrame,
  identityFrame,
  infoFrame,
  syncFrame,
  type CommitOpBody,
} from './frames.ts';
import { GroundTruthBuilder, type GroundTruth, type TruthOp } from './ground-truth.ts';
import { simKey, type KeyFormShares, type SimKey } from './keys.ts';
import type { RepoOp } from './repo.ts';
import { Rng } from './rng.ts';
import { FAULT_KINDS, Workload, type CommitFault, type FaultKind, type FaultRates, type Planned } from './workload.ts';
import { assignHosts, importableDespite, type HostFault } from './hosts.ts';
import { preloadRepos, type PreloadOptions, type PreloadResult } from './preload.ts';

export interface NetworkOptions {
  readonly seed: string;
  readonly accounts: number;
  readonly newAccountShare: number;
  readonly faults: FaultRates;
  readonly identityShare: number;
  readonly accountShare: number;
  readonly syncShare: number;
  /** frames kept for cursor replay */
  readonly retain: number;
  /** simulated start time */
  readonly epochMs: number;
  /** keep the ground truth */
  readonly groundTruth: boolean;
  /** share of accounts per signing-key form */
  readonly keyForms: KeyFormShares;
  /** PDS hosts the accounts are spread over (hosts.ts; default 1) */
  readonly hosts?: number;
  /** hostile hosts by index: their preloaded repos cannot be imported, so the truth leaves them out */
  readonly hostFaults?: Readonly<Record<number, HostFault>>;
  /** repos that exist before the simulation (preload.ts; default none) */
  readonly preload?: PreloadOptions | null;
}

export interface NetworkStats {
  commits: number;
  acceptedCommits: number;
  /** commits whose author had never committed before */
  newAccountCommits: number;
  ops: number;
  identity: number;
  account: number;
  sync: number;
  frames: number;
  faults: Record<FaultKind, number>;
}

export class Network {
  readonly options: NetworkOptions;
  readonly directory: AccountDirectory;
  readonly log: EventLog;
  readonly stats: NetworkStats;
  /** Account indexes in the order of their first commits (a forged one included). */
  readonly newAccounts: number[] = [];
  /** Host index of each account (all 0 with one host). */
  readonly hostOf: Uint16Array;
  /** Highest seq of an event about each host's accounts (0: none yet). */
  readonly hostSeq: Float64Array;
  /** The preloaded repos (null without `preload`). */
  readonly preloaded: PreloadResult | null;
  readonly #clock: SimClock;
  readonly #workload: Workload;
  readonly #truth: GroundTruthBuilder | null;
  readonly #attackerKey: SimKey;
  readonly #faultRng: Rng;
  #seq = 0;
  #lastSeqFrame: Uint8Array | null = null;

  constructor(options: NetworkOptions) {
    this.options = options;
    this.directory = new AccountDirectory(options.seed, options.accounts, options.keyForms);
    this.log = new EventLog(options.retain);
    this.#truth = options.groundTruth ? new GroundTruthBuilder() : null;
    this.#clock = new SimClock(options.epochMs);
    this.#workload = new Workload(Rng.derive(options.seed, 'workload'), this.directory, this.#clock, options);
    const hosts = options.hosts ?? 1;
    this.hostOf = assignHosts(options.seed, options.accounts, hosts);
    this.hostSeq = new Float64Array(hosts);
    this.#faultRng = Rng.derive(options.seed, 'faults');
    this.#attackerKey = simKey('multikey', new TextEncoder().encode(`aqueduct-sim/attacker/${options.seed}`));
    this.stats = {
      commits: 0,
      acceptedCommits: 0,
      newAccountCommits: 0,
      ops: 0,
      identity: 0,
      account: 0,
      sync: 0,
      frames: 0,
      faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    };
    const preload = options.preload ?? null;
    this.preloaded =
      preload === null || preload.records === 0
        ? null
        : preloadRepos(this.directory, options.epochMs, preload, (account, records) => {
            const hasProfile = records.some((r) => r.collection === 'app.bsky.actor.profile');
            this.#workload.adopt(account, hasProfile);
            if (this.#truth === null || !importableDespite(options.hostFaults?.[this.hostOf[account.index]!])) return;
            this.#truth.applyRepo(account.did, account.handle, records.map((r) => ({ action: 'create', collection: r.collection, rkey: r.rkey, record: r.record })));
          });
  }

  get lastSeq(): number {
    return this.#seq;
  }

  groundTruth(): GroundTruth {
    if (this.#truth === null) throw new Error('simulator: started without a ground truth (groundTruth: false)');
    return this.#truth.result();
  }

  /** Generates one commit and whatever the workload planned around it. */
  step(): void {
    for (const plan of this.#workload.step()) this.#execute(plan);
  }

  #append(frame: Uint8Array, seq: number | null, account?: Account): void {
    this.log.append(frame, seq);
    this.stats.frames++;
    if (account !== undefined && seq !== null) this.hostSeq[this.hostOf[account.index]!] = seq;
    if (seq !== null) {
      this.#lastSeqFrame = frame;
      this.#truth?.noteSeq(seq);
    }
  }

  #execute(plan: Planned): void {
    switch (plan.kind) {
      case 'commit':
        return this.#commit(plan.account, plan.ops, plan.fault, plan.firstCommit);
      case 'identity': {
        const handle = this.directory.rename(plan.account);
        const seq = ++this.#seq;
        this.#append(identityFrame({ seq, did: plan.account.did, time: this.#clock.iso(), handle }), seq, plan.account);
        this.#truth?.applyIdentity(plan.account.did, handle);
        this.stats.identity++;
        return;
      }
      case 'account': {
        const { account, status } = plan;
        account.status = status;
        const seq = ++this.#seq;
        const time = this.#clock.iso();
        this.#append(
          accountFrame(status === 'active' ? { seq, did: account.did, time, active: true } : { seq, did: account.did, time, active: false, status }),
          seq,
          account,
        );
        this.#truth?.applyAccount(account.did, status === 'active' ? undefined : status);
        this.stats.account++;
        return;
      }
      case 'sync': {
        const head = plan.account.repo.head;
        const rev = plan.account.repo.rev;
        if (head === null || rev === null) return;
        const seq = ++this.#seq;
        this.#append(syncFrame({ seq, did: plan.account.did, blocks: encodeCar(head.cid, [head]), rev, time: this.#clock.iso() }), seq, plan.account);
        this.stats.sync++;
        return;
      }
      case 'garbage':
        this.#append(plan.bytes, null);
        this.stats.faults.malformed++;
        return;
      case 'truncated': {
        const last = this.#lastSeqFrame;
        if (last === null || last.length < 2) return;
        this.#append(last.slice(0, 1 + this.#faultRng.int(last.length - 1)), null);
        this.stats.faults.malformed++;
        return;
      }
      case 'duplicate':
        if (this.#lastSeqFrame === null) return;
        this.#append(this.#lastSeqFrame, null);
        this.stats.faults.duplicate++;
        return;
      case 'replay': {
        const position = this.log.end - plan.back;
        const frame = position >= this.log.start ? this.log.at(position) : undefined;
        if (frame === undefined) return;
        this.#append(frame, null);
        this.stats.faults.replay++;
        return;
      }
      case 'seqGap':
        // the next event's seq jumps: numbers are never reused, and none of them names an event
        this.#seq += plan.skip;
        this.stats.faults.seqGap++;
        return;
      case 'outdatedCursor':
        this.#append(infoFrame({ name: 'OutdatedCursor', message: 'simulated: events may have been missed' }), null);
        this.stats.faults.outdatedCursor++;
        return;
    }
  }

  #commit(account: Account, ops: readonly RepoOp[], fault: CommitFault | null, firstCommit: boolean): void {
    const forged = fault === 'badSignature' || fault === 'badCar';
    const rev = this.#clock.tid(account.clockId);
    const written = account.repo.write(ops, rev, fault === 'badSignature' ? this.#attackerKey : account.key, !forged);
    let blocks = written.car;
    if (fault === 'badCar') {
      // keep the CAR header, then garble the block section
      blocks = written.car.slice();
      const from = Math.min(blocks.length - 1, 60);
      for (let i = from; i < blocks.length; i++) blocks[i] = this.#faultRng.int(256);
    }
    const opBodies: CommitOpBody[] = written.ops.map((op) => {
      const body: CommitOpBody = { action: op.action, path: op.path, cid: op.cid === null ? null : link(op.cid) };
      if (op.prev !== null) body.prev = link(op.prev);
      return body;
    });
    // a dropped commit still changes the repo and the truth: only the frame never leaves
    if (fault !== 'dropCommit') {
      const seq = ++this.#seq;
      this.#append(
        commitFrame({
          seq,
          rebase: false,
          tooBig: fault === 'tooBig',
          repo: account.did,
          commit: link(written.commit.cid),
          rev: written.rev,
          since: written.since,
          blocks,
          ops: opBodies,
          blobs: [],
          prevData: link(written.prevData),
          time: this.#clock.iso(),
        }),
        seq,
        account,
      );
    }
    this.stats.commits++;
    this.stats.ops += ops.length;
    if (firstCommit) this.newAccounts.push(account.index);
    if (fault === 'badCar') this.stats.faults.malformed++;
    else if (fault !== null) this.stats.faults[fault]++;
    if (forged) return;
    this.stats.acceptedCommits++;
    if (firstCommit) {
      this.stats.newAccountCommits++;
      // the DID document's handle, as an indexer resolving identities would learn it
      this.#truth?.applyIdentity(account.did, account.handle);
    }
    if (this.#truth === null) return;
    const truthOps: TruthOp[] = ops.map((op) => ({ action: op.action, collection: op.collection, rkey: op.rkey, record: op.record ?? null }));
    this.#truth.applyCommit(account.did, truthOps);
  }
}
