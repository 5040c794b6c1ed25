/**
 * The resync worker: drains `repo_resync` (repos whose index may have missed commits, sql/00008
 * and 00009) by fetching each repo whole from its PDS (`com.atproto.sync.getRepo`) and making the
 * index hold exactly what the repo holds.
 *
 * One repo at a time, off the ingestion path: resolve the DID (its PDS now, not the one stored),
 * fetch the CAR through the guarded client (STRANGERS: a PDS is named by a stranger's DID
 * document) within `maxRepoBytes` and `timeoutMs`, check the signed commit (the same verifier and
 * policy as the firehose: a bad signature or unusable key fails the resync, an unavailable key
 * is counted unverified), walk the whole tree (repo-snapshot.ts), then write the difference with
 * the firehose's own batch writer (no cursor moves): every record of the repo is written as a
 * replacement, except those whose stored CID already matches, and every indexed record the repo
 * no longer holds is deleted, so counters follow exactly. Records go out in batches of
 * `OPS_PER_BATCH`; each is idempotent, so a crash part way is repaired by the next attempt.
 *
 * The firehose keeps indexing meanwhile. The fetched repo is at some revision R; when a commit
 * above R was indexed before the resync's writes landed, they may have undone it, so the repo is
 * fetched again 10 s later (`EventProcessor.settleResync`); otherwise R becomes the repo's last
 * revision. A row is removed only if no batch marked the repo again after the fetch began
 * (`marked_at`).
 *
 * Outcomes are counted by reason, never thrown: a repo the PDS says is gone or deactivated is
 * dropped (its #account events carry its status); any other failure backs off (1 minute doubling
 * to 6 hours) with the reason in `last_error`.
 */
import type { Database } from '../db/database.ts';
import { CommitReadError, readRecordBlock } from '../firehose/commit-reader.ts';
import { MstError } from '../firehose/mst-node.ts';
import { readRepoSnapshot } from '../firehose/repo-snapshot.ts';
import type { CommitVerifier } from '../firehose/verifier.ts';
import { DidResolutionError, type DidResolver } from '../identity/did-resolver.ts';
import { BodyTooLarge, readBoundedBytes } from '../identity/http-get.ts';
import type { Logger } from '../log.ts';
import { OutboundRefused, type Outbound } from '../outbound/guarded-fetch.ts';
import { ActorIds } from './actor-ids.ts';
import { buildBatch } from './batch.ts';
import { writeBatch } from './batch-writer.ts';
import { collectionOfTable, parseRecord, TABLES, tableOf, type Table } from './collections.ts';
import type { RecordOp } from './events.ts';
import { sleepUnlessAborted } from '../lib/sleep-unless-aborted.ts';

export type ResyncOutcome =
  | 'resynced'
  | 'repo-gone'
  | 'moved-on'
  | 'did-unresolvable'
  | 'no-pds'
  | 'fetch-failed'
  | 'too-large'
  | 'bad-repo'
  | 'bad-signature'
  | 'write-failed';

export interface RepoResyncOptions {
  readonly db: Database;
  readonly dids: DidResolver;
  readonly strangers: Outbound;
  /** null: VERIFY_COMMITS=false */
  readonly verifier: CommitVerifier | null;
  /** EventProcessor.settleResync */
  readonly settle: (did: string, rev: string) => boolean;
  readonly log: Logger;
  /** largest repo fetched (default 256 MiB) */
  readonly maxRepoBytes?: number;
  /** whole-fetch budget (default 120 s) */
  readonly timeoutMs?: number;
  /** wait between looks at an empty queue (default 5 s) */
  readonly idleMs?: number;
}

export interface RepoResyncFigures {
  readonly outcomes: ReadonlyMap<ResyncOutcome, number>;
  /** records written or deleted by resyncs */
  readonly recordsChanged: number;
  readonly unverified: number;
}

const OPS_PER_BATCH = 2_000;
const BACKOFF_MS = 60_000;
const MAX_BACKOFF_MS = 6 * 60 * 60_000;
const MOVED_ON_DELAY_MS = 10_000;
/** XRPC errors that say the PDS has no repo to give (RepoNotFound, RepoDeactivated, ...). */
const GONE = /^Repo(NotFound|Deactivated|Takendown|Suspended)$/;
/** tables that keep the record's CID: an unchanged record there is not written again */
const WITH_CID: ReadonlySet<Table> = new Set(TABLES.filter((table) => !['likes', 'follows', 'blocks'].includes(table)));

interface Due {
  readonly actorId: number;
  readonly did: string;
  /** as PostgreSQL prints it: a Date would lose its microseconds */
  readonly markedAt: string;
  readonly attempts: number;
}

class ResyncFailure extends Error {
  constructor(readonly outcome: ResyncOutcome, message: string) {
    super(message);
  }
}

export class RepoResync {
  readonly #options: RepoResyncOptions;
  readonly #outcomes = new Map<ResyncOutcome, number>();
  #recordsChanged = 0;
  #unverified = 0;
  readonly #stopping = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(options: RepoResyncOptions) {
    this.#options = options;
  }

  get figures(): RepoResyncFigures {
    return { outcomes: new Map(this.#outcomes), recordsChanged: this.#recordsChanged, unverified: this.#unverified };
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }

  /** Resyncs the repos due now, one after another; how many it took. */
  async drain(): Promise<number> {
    const due = await this.#options.db.run(
      (sql) => sql<Due[]>`
        select r.actor_id, a.did, r.marked_at::text as marked_at, r.attempts from repo_resync r join actors a on a.id = r.actor_id
        where r.not_before <= now() order by r.not_before, r.actor_id limit 16`,
    );
    for (const repo of due) {
      if (this.#stopping.signal.aborted) break;
      await this.#settle(repo, await this.#resync(repo).catch((error: unknown) => error));
    }
    return due.length;
  }

  async #run(): Promise<void> {
    const { log } = this.#options;
    while (!this.#stopping.signal.aborted) {
      let taken = 0;
      try {
        taken = await this.drain();
      } catch (error) {
        if (!this.#stopping.signal.aborted) log.warn('resync queue unreadable', { error });
      }
      if (taken === 0) await sleepUnlessAborted(this.#options.idleMs ?? 5_000, this.#stopping.signal);
    }
  }

  async #resync(repo: Due): Promise<ResyncOutcome> {
    const { dids, strangers } = this.#options;
    let pds: string | null;
    try {
      pds = (await dids.resolve(repo.did)).pdsEndpoint;
    } catch (error) {
      if (error instanceof DidResolutionError && (error.reason === 'not-found' || error.reason === 'tombstoned')) return 'repo-gone';
      throw new ResyncFailure('did-unresolvable', String((error as Error).message));
    }
    const base = pds === null ? null : URL.parse(pds);
    if (base === null || !(base.protocol === 'https:' || (base.protocol === 'http:' && strangers.allowsHttp(base.hostname)))) {
      throw new ResyncFailure('no-pds', `no usable PDS endpoint (${pds ?? 'none'})`);
    }
    const car = await this.#fetchRepo(new URL(`/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(repo.did)}`, base).href);
    if (car === 'gone') return 'repo-gone';

    let snapshot;
    try {
      snapshot = readRepoSnapshot(repo.did, car);
    } catch (error) {
      if (error instanceof CommitReadError || error instanceof MstError) throw new ResyncFailure('bad-repo', `${error.reason}: ${error.message}`);
      throw error;
    }
    const { commit, blocks, leaves } = snapshot;
    if (this.#options.verifier) {
      const verdict = await this.#options.verifier.verify(repo.did, commit.unsignedBytes, commit.sig);
      if (verdict === 'bad-signature' || verdict === 'key-invalid') throw new ResyncFailure('bad-signature', `commit ${commit.rev}: ${verdict}`);
      if (verdict === 'key-unavailable') this.#unverified++;
    }

    const indexed = await this.#indexedRecords(repo.actorId);
    const ops: RecordOp[] = [];
    for (const { path, cid } of leaves) {
      const slash = path.indexOf('/');
      const collection = path.slice(0, slash);
      const rkey = path.slice(slash + 1);
      const table = tableOf(collection);
      if (table === null) continue;
      const key = `${table} ${rkey}`;
      const stored = indexed.get(key);
      if (stored !== undefined) indexed.delete(key);
      if (stored !== undefined && stored !== null && stored === cid) continue;
      let parsed;
      try {
        parsed = parseRecord(collection, rkey, readRecordBlock(blocks, cid));
      } catch (error) {
        if (error instanceof CommitReadError) throw new ResyncFailure('bad-repo', `${error.reason}: ${error.message}`);
        throw error;
      }
      // an invalid record is not indexed: what was stored at its path goes (as on the firehose)
      if (parsed?.ok) ops.push({ action: 'update', collection, table, rkey, cid, row: parsed.row });
      else if (stored !== undefined) ops.push({ action: 'delete', collection, table, rkey, cid: null, row: null });
    }
    for (const key of indexed.keys()) {
      const [table, rkey] = key.split(' ') as [Table, string];
      ops.push({ action: 'delete', collection: collectionOfTable(table), table, rkey, cid: null, row: null });
    }
    // a cache of its own per repo: nothing it learnt can outlive a database that lost work
    const actorIds = new ActorIds(1_000);
    try {
      for (let from = 0; from < ops.length; from += OPS_PER_BATCH) {
        const slice = ops.slice(from, from + OPS_PER_BATCH);
        const batch = buildBatch([{ kind: 'commit', seq: 0, time: null, did: repo.did, rev: commit.rev, ops: slice }]);
        await writeBatch(this.#options.db, actorIds, null, batch);
        this.#recordsChanged += slice.length;
      }
    } catch (error) {
      throw new ResyncFailure('write-failed', String((error as Error).message));
    }
    return this.#options.settle(repo.did, commit.rev) ? 'resynced' : 'moved-on';
  }

  /** The repo's CAR, or 'gone' when its PDS says it has none to give. */
  async #fetchRepo(url: string): Promise<Uint8Array | 'gone'> {
    const maxBytes = this.#options.maxRepoBytes ?? 256 * 1024 * 1024;
    const signal = AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs ?? 120_000), this.#stopping.signal]);
    try {
      const response = await this.#options.strangers.fetch(url, { signal, redirect: 'manual', headers: { accept: 'application/vnd.ipld.car' } });
      if (response.status === 400 || response.status === 404) {
        const body = await readBoundedBytes(response, 4096).catch(() => new Uint8Array());
        const error = (safeJson(new TextDecoder().decode(body)) as { error?: unknown } | null)?.error;
        if (typeof error === 'string' && GONE.test(error)) return 'gone';
        throw new ResyncFailure('fetch-failed', `getRepo answered ${response.status} ${typeof error === 'string' ? error : ''}`.trim());
      }
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        throw new ResyncFailure('fetch-failed', `getRepo answered ${response.status}`);
      }
      return await readBoundedBytes(response, maxBytes);
    } catch (error) {
      if (error instanceof ResyncFailure) throw error;
      if (error instanceof BodyTooLarge) throw new ResyncFailure('too-large', `repo larger than ${maxBytes} bytes`);
      if (error instanceof OutboundRefused) throw new ResyncFailure('fetch-failed', `refused: ${error.message}`);
      throw new ResyncFailure('fetch-failed', signal.aborted ? 'timed out or stopped' : String((error as Error).message));
    }
  }

  /** `table rkey` -> stored CID (null where the table keeps none) of every record indexed for the actor. */
  async #indexedRecords(actorId: number): Promise<Map<string, string | null>> {
    const rows = await this.#options.db.run((sql) =>
      Promise.all(
        TABLES.map(
          (table) => sql<{ rkey: string; cid: string | null }[]>`
            select rkey, ${WITH_CID.has(table) ? sql`cid` : sql`null::text`} as cid from ${sql(table)} where author_id = ${actorId}`,
        ),
      ),
    );
    const indexed = new Map<string, string | null>();
    TABLES.forEach((table, i) => {
      for (const row of rows[i]!) indexed.set(`${table} ${row.rkey}`, row.cid);
    });
    return indexed;
  }

  async #settle(repo: Due, result: ResyncOutcome | unknown): Promise<void> {
    const outcome: ResyncOutcome = result instanceof ResyncFailure ? result.outcome : typeof result === 'string' ? (result as ResyncOutcome) : 'write-failed';
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
    const { db, log } = this.#options;
    if (outcome === 'resynced' || outcome === 'repo-gone') {
      // compared as text: postgres.js would send a timestamp parameter through a Date (milliseconds)
      await db.run((sql) => sql`delete from repo_resync where actor_id = ${repo.actorId} and marked_at::text = ${repo.markedAt}`);
      return;
    }
    const message = result instanceof Error ? result.message : outcome;
    if (outcome !== 'moved-on') log.warn('repo resync failed', { did: repo.did, outcome, error: message, attempts: repo.attempts + 1 });
    // moved on: fetch again soon, it is not the repo's fault (but not at once: a busy repo would
    // have its PDS asked for it in a loop)
    const delayMs = outcome === 'moved-on' ? MOVED_ON_DELAY_MS : Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(repo.attempts, 20));
    await db.run(
      (sql) => sql`
        update repo_resync set attempts = attempts + 1, last_error = ${message.slice(0, 500)},
          not_before = now() + ${delayMs} * interval '1 millisecond'
        where actor_id = ${repo.actorId}`,
    );
  }
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};
