/**
 * The resync worker: drains `repo_resync` (repos whose index may have missed commits, sql/00008
 * and 00009) by importing each repo whole, with the backfill's machinery (backfill/repo-import.ts):
 * its PDS resolved now, `com.atproto.sync.getRepo` streamed through the guarded client, the
 * signed commit checked with the firehose's verifier and policy, the whole tree walked before
 * anything is written, then the difference written with the firehose's batched writer (no cursor
 * moves), the repo's live commits held meanwhile and applied after it when they are newer. The
 * index then holds exactly what the repo holds, counters included.
 *
 * One repo at a time, off the ingestion path. A row is removed only if no batch marked the repo
 * again after the import began (`marked_at`). Outcomes are counted by reason, never thrown: a
 * repo the PDS says is gone or deactivated is dropped (its #account events carry its status);
 * 'moved-on' (the repo wrote more during its import than could be held) is fetched again 10 s
 * later; 'rate-limited' waits for its host; any other failure backs off (1 minute doubling to 6
 * hours) with the reason in `last_error`.
 */
import type { Database } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { ImportFailure, type ImportFailureReason, type RepoImporter } from '../backfill/repo-import.ts';
import { sleepUnlessAborted } from '../lib/sleep-unless-aborted.ts';

export type ResyncOutcome = 'resynced' | 'repo-gone' | ImportFailureReason;

export interface RepoResyncOptions {
  readonly db: Database;
  readonly importer: RepoImporter;
  readonly log: Logger;
  /** wait between looks at an empty queue (default 5 s) */
  readonly idleMs?: number;
}

export interface RepoResyncFigures {
  readonly outcomes: ReadonlyMap<ResyncOutcome, number>;
  /** records written or deleted by resyncs */
  readonly recordsChanged: number;
  readonly unverified: number;
}

const BACKOFF_MS = 60_000;
const MAX_BACKOFF_MS = 6 * 60 * 60_000;
const MOVED_ON_DELAY_MS = 10_000;
const RATE_LIMITED_DELAY_MS = 30_000;

interface Due {
  readonly actorId: number;
  readonly did: string;
  /** as PostgreSQL prints it: a Date would lose its microseconds */
  readonly markedAt: string;
  readonly attempts: number;
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
    const imported = await this.#options.importer.import(repo.did, this.#stopping.signal);
    this.#recordsChanged += imported.changed;
    if (imported.unverified) this.#unverified++;
    return imported.outcome === 'imported' ? 'resynced' : 'repo-gone';
  }

  async #settle(repo: Due, result: ResyncOutcome | unknown): Promise<void> {
    const outcome: ResyncOutcome = result instanceof ImportFailure ? result.reason : typeof result === 'string' ? (result as ResyncOutcome) : 'write-failed';
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
    const { db, log } = this.#options;
    if (outcome === 'resynced' || outcome === 'repo-gone') {
      // compared as text: postgres.js would send a timestamp parameter through a Date (milliseconds)
      await db.run((sql) => sql`delete from repo_resync where actor_id = ${repo.actorId} and marked_at::text = ${repo.markedAt}`);
      return;
    }
    const message = result instanceof Error ? result.message : outcome;
    const notTheRepos = outcome === 'moved-on' || outcome === 'rate-limited';
    if (!notTheRepos) log.warn('repo resync failed', { did: repo.did, outcome, error: message, attempts: repo.attempts + 1 });
    // moved on or rate-limited: fetch again soon, it is not the repo's fault (but not at once: a
    // busy repo would have its PDS asked for it in a loop)
    const delayMs =
      outcome === 'moved-on' ? MOVED_ON_DELAY_MS : outcome === 'rate-limited' ? RATE_LIMITED_DELAY_MS : Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(repo.attempts, 20));
    await db.run(
      (sql) => sql`
        update repo_resync set attempts = attempts + 1, last_error = ${message.slice(0, 500)},
          not_before = now() + ${delayMs} * interval '1 millisecond'
        where actor_id = ${repo.actorId}`,
    );
  }
}
