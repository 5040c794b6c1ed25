/**
 * Turns one decoded firehose frame into an `IndexEvent`: read the CAR slice, check the commit
 * signature, parse every record. Pure CPU except for a signing-key fetch on a cache miss.
 *
 * Everything untrusted is counted and skipped here, never thrown: a bad CAR slice or signature
 * makes the commit a `skipped` event (its seq still moves the cursor); an op on an unknown
 * collection is dropped; an invalid record becomes a delete of its path (the repo no longer holds
 * the version we may have indexed) and is counted. When the signing key cannot be fetched for a reason that
 * may pass (the PLC directory is down), the commit is indexed and counted as unverified rather
 * than lost: the relay has already checked it, and ingestion must not stop with the directory.
 *
 * Key prefetch: `prefetch(frame)` is called when a frame enters the queue, long before its turn
 * to be processed, and asks the verifier to fetch the signing key of a repo not seen yet. A cold
 * cache then costs the directory's latency once, overlapped with the queue, instead of once per
 * commit in line. A repo's first commit (no `since`) says the repo is new: its key is about to
 * come in the PLC directory's export, which the verifier may wait for instead of fetching.
 *
 * The commit's proof (Sync 1.1, commit-proof.ts): with verification on, the ops must be exactly
 * what turns the tree at `prevData` into the signed tree (undone, they lead back to it); a commit
 * whose ops and tree disagree is rejected as 'proof-<reason>'. A commit without `prevData` (a
 * relay or PDS before Sync 1.1) has its ops checked against the new tree only, and is counted as
 * unproven. The proof runs while the signature check waits on the verification worker.
 *
 * Resync: a `#sync` event, a commit whose `since` is not the last revision indexed for its repo
 * (a gap: commits were missed), a `tooBig` commit and a commit that fails its proof mark the repo
 * for a whole-repo fetch (the event's `resync`; the batch writes it to `repo_resync`, and the
 * resync worker, repo-resync.ts, fetches it and settles here).
 *
 * The revision guard: a commit whose rev is not above the last rev indexed for its repo is stale
 * (a replay from another relay or an older cursor) and skipped as 'stale-rev'. The last rev is
 * recorded only after the commit verified, so a forged commit cannot fence off the real ones;
 * `#sync` resets it to the rev it announces. The guard is bounded and in memory (`RepoStateTable`,
 * shared with the prefetch record): a repo it forgot, or any replay after a restart, is still
 * harmless because every write is idempotent.
 */
import { CommitReadError, readCommit, readRecords, type ReadCommitResult } from '../firehose/commit-reader.ts';
import { CommitProofError, proveCommit, type CommitProof } from '../firehose/commit-proof.ts';
import type { Frame } from '../firehose/frame-decoder.ts';
import type { CommitVerifier } from '../firehose/verifier.ts';
import { parseRecord, tableOf } from './collections.ts';
import type { AccountStatus, IndexEvent, RecordOp } from './events.ts';
import type { IngestStats } from './ingest-stats.ts';
import { RepoStateTable } from './repo-state.ts';

export type SequencedFrame = Extract<Frame, { kind: 'commit' | 'sync' | 'identity' | 'account' }> | (Extract<Frame, { kind: 'unknown' }> & { seq: number });

export interface EventProcessorOptions {
  /** null: VERIFY_COMMITS=false. */
  readonly verifier: CommitVerifier | null;
  readonly stats: IngestStats;
}

const ACCOUNT_STATUSES: ReadonlySet<string> = new Set(['deactivated', 'takendown', 'suspended', 'deleted', 'desynchronized', 'throttled']);

const REPOS_REMEMBERED = 200_000;
const PREFETCH_TTL_MS = 10 * 60_000;

export class EventProcessor {
  readonly #verifier: CommitVerifier | null;
  readonly #stats: IngestStats;
  readonly #repos = new RepoStateTable({ capacity: REPOS_REMEMBERED, prefetchTtlMs: PREFETCH_TTL_MS });

  constructor(options: EventProcessorOptions) {
    this.#verifier = options.verifier;
    this.#stats = options.stats;
  }

  /** Asks for the signing key of `frame`'s repo ahead of time, once per repo (never waits). */
  prefetch(frame: SequencedFrame): void {
    if (!this.#verifier || frame.kind !== 'commit' || !this.#repos.claimPrefetch(frame.repo)) return;
    this.#verifier.prefetch(frame.repo, frame.since === null);
  }

  /**
   * After a whole-repo import at `rev` was written (backfill/repo-import.ts, for the backfill and
   * the resync worker): false when a commit above `rev` was indexed meanwhile (it was held and
   * applied after the import); otherwise records `rev` as the repo's last, so a replay of the
   * commits it already holds is stale.
   */
  settleResync(did: string, rev: string): boolean {
    if (this.#repos.recordedAbove(did, rev)) return false;
    this.#repos.recordRev(did, rev);
    return true;
  }

  async process(frame: SequencedFrame): Promise<IndexEvent> {
    this.#stats.event(frame.kind);
    switch (frame.kind) {
      case 'commit':
        return this.#commit(frame);
      case 'identity':
        this.#verifier?.invalidate(frame.did);
        return { kind: 'identity', seq: frame.seq, time: frame.time, did: frame.did };
      case 'account': {
        let status: AccountStatus | null = null;
        if (!frame.active) status = (frame.status && ACCOUNT_STATUSES.has(frame.status) ? frame.status : 'deactivated') as AccountStatus;
        return { kind: 'account', seq: frame.seq, time: frame.time, did: frame.did, status };
      }
      case 'sync':
        // the repo's state is now what the relay says, whatever commits led there
        this.#repos.recordRev(frame.did, frame.rev);
        return { kind: 'sync', seq: frame.seq, time: frame.time, did: frame.did, resync: { did: frame.did, reason: 'sync-event' } };
      case 'unknown':
        this.#stats.reject('unknown-event-type');
        return { kind: 'skipped', seq: frame.seq, time: null };
    }
  }

  async #commit(frame: Extract<Frame, { kind: 'commit' }>): Promise<IndexEvent> {
    const skipped: IndexEvent = { kind: 'skipped', seq: frame.seq, time: frame.time };
    // a commit that does not follow the one that arrived before it: commits in between were
    // missed. Checked before any wait, while frames are still in firehose order.
    const gap = this.#repos.arrive(frame.repo, frame.since, frame.rev);
    if (frame.tooBig) {
      // its blocks are not in the frame: only a whole-repo fetch brings what it changed
      this.#stats.reject('too-big');
      return { ...skipped, resync: { did: frame.repo, reason: 'too-big' } };
    }
    if (this.#repos.isStale(frame.repo, frame.rev)) {
      this.#stats.reject('stale-rev');
      return skipped;
    }
    let read;
    try {
      read = this.#verifier ? readCommit(frame) : { commit: null, records: readRecords(frame) };
    } catch (error) {
      if (!(error instanceof CommitReadError)) throw error;
      this.#stats.reject(error.reason);
      return skipped;
    }
    if (this.#verifier && read.commit) {
      const verdict = this.#verifier.verify(frame.repo, read.commit.unsignedBytes, read.commit.sig);
      let proof: CommitProof;
      try {
        proof = proveFrame(frame, read as ReadCommitResult);
      } catch (error) {
        if (!(error instanceof CommitProofError)) throw error;
        await verdict; // settled before the event is dropped, as every other promise is owned
        this.#stats.reject(`proof-${error.reason}`);
        return { ...skipped, resync: { did: frame.repo, reason: 'bad-proof' } };
      }
      if (proof === 'ops-only') this.#stats.unprovenCommits++;
      const outcome = await verdict;
      if (outcome === 'bad-signature' || outcome === 'key-invalid') {
        this.#stats.reject(outcome);
        return skipped;
      }
      if (outcome === 'key-unavailable') this.#stats.unverifiedCommits++;
    }
    this.#repos.recordRev(frame.repo, frame.rev);

    const ops: RecordOp[] = [];
    for (const op of frame.ops) {
      const table = tableOf(op.collection);
      if (table === null) {
        this.#stats.unknownCollection(op.collection);
        continue;
      }
      if (op.action === 'delete') {
        ops.push({ action: 'delete', collection: op.collection, table, rkey: op.rkey, cid: null, row: null });
        this.#stats.op(op.collection);
        continue;
      }
      const record = op.cid === null ? undefined : read.records.get(op.cid);
      const parsed = parseRecord(op.collection, op.rkey, record);
      if (!parsed?.ok) {
        // The repo now holds an invalid value at this path: whatever we indexed there is gone.
        this.#stats.reject('invalid-record', op.collection);
        ops.push({ action: 'delete', collection: op.collection, table, rkey: op.rkey, cid: null, row: null });
        continue;
      }
      ops.push({ action: op.action, collection: op.collection, table, rkey: op.rkey, cid: op.cid, row: parsed.row });
      this.#stats.op(op.collection);
    }
    const event: IndexEvent = { kind: 'commit', seq: frame.seq, time: frame.time, did: frame.repo, rev: frame.rev, ops };
    return gap ? { ...event, resync: { did: frame.repo, reason: 'rev-gap' } } : event;
  }
}

/** The frame's Sync 1.1 proof over its CAR slice (throws a CommitProofError). */
function proveFrame(frame: Extract<Frame, { kind: 'commit' }>, read: ReadCommitResult): CommitProof {
  return proveCommit({
    data: read.commit.data.bytes,
    prevData: frame.prevData?.bytes ?? null,
    ops: frame.ops.map((op) => ({ action: op.action, path: `${op.collection}/${op.rkey}`, cid: op.cidBytes ?? null, prev: op.prev?.bytes ?? null })),
    blocks: read.blocks,
  });
}
