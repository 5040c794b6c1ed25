/**
 * repo-import: one repo made to hold in the index exactly what its PDS holds, beside the live
 * firehose. Used for every repo the backfill queue names (src/backfill/backfill.ts).
 *
 * Steps: resolve the DID (its PDS now); wait for the host's turn (host-politeness.ts); hold the
 * repo's live commits (`LiveRepos.hold`: the pipeline sets them aside from here on, and what it
 * wrote before is in the database); fetch `com.atproto.sync.getRepo` through the guarded client
 * (STRANGERS: a PDS is named by a stranger's DID document) and read it as a stream
 * (firehose/repo-stream.ts: memory bounded whatever the repo's size, every block checked against
 * its CID, the MST walked to the signed root, the whole tree before anything is written, so a
repo broken anywhere is refused whole); check the commit's signature (the firehose's
 * verifier and policy: a bad signature or unusable key rejects the repo, an unavailable key is
 * counted unverified); then write the difference with the firehose's batched writer
 * (import-writer.ts): every record whose stored CID differs is written as a replacement, every
 * indexed record the repo no longer holds is deleted, so counters follow exactly; finally
 * release the live commits (those above the imported revision are applied, in order, the rest
 * dropped). A failure part way also releases them: the repo stays queued and is imported again.
 *
 * Outcomes are values or ImportFailure errors with a reason, never anything else: 'repo-gone'
 * (the DID is tombstoned, or the PDS says RepoNotFound/Deactivated/Takendown/Suspended),
 * 'rate-limited' (429/503: the host is paused, the repo waits without using a retry), and the
 * failures named in ImportOutcome.
 */
import type { Database } from '../db/database.ts';
import { CommitReadError } from '../firehose/commit-reader.ts';
import { CarIndexError } from '../firehose/car-index.ts';
import { MstError } from '../firehose/mst-node.ts';
import { readRepoStream, RepoStreamError, type RepoRecord } from '../firehose/repo-stream.ts';
import type { CommitVerifier } from '../firehose/verifier.ts';
import { DidResolutionError, type DidResolver } from '../identity/did-resolver.ts';
import { readBounded } from '../identity/http-get.ts';
import { OutboundRefused, type Outbound } from '../outbound/guarded-fetch.ts';
import { collectionOfTable, parseRecord, TABLES, tableOf, type Table } from '../pipeline/collections.ts';
import type { RecordOp } from '../pipeline/events.ts';
import type { HostPoliteness } from './host-politeness.ts';
import type { ImportWriter } from './import-writer.ts';
import { xrpcErrorName } from './xrpc-error.ts';

export type ImportFailureReason =
  | 'did-unresolvable'
  | 'no-pds'
  | 'fetch-failed'
  | 'rate-limited'
  | 'too-large'
  | 'bad-repo'
  | 'bad-signature'
  | 'write-failed'
  | 'moved-on';
export type ImportOutcome = 'imported' | 'repo-gone' | ImportFailureReason;

export class ImportFailure extends Error {
  override readonly name = 'ImportFailure';
  constructor(
    readonly reason: ImportFailureReason,
    message: string,
  ) {
    super(message);
  }
}

/** The live firehose's side of an import (the ingester's pipeline and processor). */
export interface LiveRepos {
  /** false when another import holds the repo already (the backfill and the resync worker may meet) */
  hold(did: string): Promise<boolean>;
  /** true once the commits set aside above `rev` are written; false if the repo must be fetched again */
  release(did: string, rev: string): Promise<boolean>;
}

export interface RepoImportOptions {
  readonly db: Database;
  readonly dids: DidResolver;
  readonly strangers: Outbound;
  /** null: VERIFY_COMMITS=false */
  readonly verifier: CommitVerifier | null;
  /** null: no firehose in this process */
  readonly live: LiveRepos | null;
  readonly hosts: HostPoliteness;
  readonly writer: ImportWriter;
  /** where a repo larger than memory is spilled (under DATA_DIR) */
  readonly spillDir: string;
  /** largest repo fetched (default 4 GiB) */
  readonly maxRepoBytes?: number;
  /** CAR bytes held in memory per repo before spilling (default 16 MiB) */
  readonly memoryBytes?: number;
  /** whole-fetch budget (default 10 minutes) */
  readonly timeoutMs?: number;
  /** a fetch that receives nothing for this long is given up (default 30 s) */
  readonly stallMs?: number;
}

export interface Imported {
  readonly outcome: 'imported' | 'repo-gone';
  readonly host: string | null;
  readonly rev: string | null;
  /** records the repo holds (indexed or not) */
  readonly records: number;
  /** records written or deleted */
  readonly changed: number;
  /** records not indexed: invalid for their lexicon, or a block that does not decode */
  readonly invalid: number;
  readonly carBytes: number;
  readonly unverified: boolean;
}

const OPS_PER_WRITE = 2_000;
const WALK_CHUNK = 10_000;
/** XRPC errors that say the PDS has no repo to give. */
const GONE = /^Repo(NotFound|Deactivated|Takendown|Suspended)$/;
/** tables that keep the record's CID: an unchanged record there is not written again */
const WITH_CID: ReadonlySet<Table> = new Set(TABLES.filter((table) => !['likes', 'follows', 'blocks'].includes(table)));

/** Where imports spend their time, summed over every import (ms): for the metrics and the benchmark. */
export const IMPORT_PHASES = ['resolve', 'wait', 'fetch', 'verify', 'parse', 'write', 'release'] as const;
export type ImportPhase = (typeof IMPORT_PHASES)[number];

export class RepoImporter {
  readonly #options: RepoImportOptions;
  /** ms spent per phase, over all imports: resolve the DID, wait for the host and the hold, fetch and read the CAR, verify, walk and parse, wait for writes, release */
  readonly phaseMs: Record<ImportPhase, number> = { resolve: 0, wait: 0, fetch: 0, verify: 0, parse: 0, write: 0, release: 0 };

  constructor(options: RepoImportOptions) {
    this.#options = options;
  }

  /** Imports `did`; resolves with what was done, or rejects with an ImportFailure. */
  async import(did: string, signal: AbortSignal): Promise<Imported> {
    const { dids, strangers, hosts } = this.#options;
    let pds: string | null;
    const resolving = performance.now();
    try {
      pds = (await dids.resolve(did)).pdsEndpoint;
      this.#spent('resolve', resolving);
    } catch (error) {
      if (error instanceof DidResolutionError && (error.reason === 'not-found' || error.reason === 'tombstoned')) return gone(null);
      throw new ImportFailure('did-unresolvable', String((error as Error).message));
    }
    const base = pds === null ? null : URL.parse(pds);
    if (base === null || !(base.protocol === 'https:' || (base.protocol === 'http:' && strangers.allowsHttp(base.hostname)))) {
      throw new ImportFailure('no-pds', `no usable PDS endpoint (${pds ?? 'none'})`);
    }
    const host = base.host;
    const waiting = performance.now();
    await hosts.take(host, signal);
    const live = this.#options.live;
    if (live && !(await live.hold(did))) throw new ImportFailure('moved-on', 'another import of this repo is under way: fetching again later');
    this.#spent('wait', waiting);
    let releasedAt: string | null = null;
    try {
      const result = await this.#fetchAndWrite(did, host, new URL(`/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(did)}`, base).href, signal);
      releasedAt = result.rev ?? '';
      const releasing = performance.now();
      const released = !live || (await live.release(did, releasedAt));
      this.#spent('release', releasing);
      if (!released) throw new ImportFailure('moved-on', 'the repo wrote more than could be held during its import: fetching again');
      return result;
    } finally {
      // a failed import releases everything it held (applied over what it wrote): the repo stays
      // queued and the next import settles it
      if (live && releasedAt === null) await live.release(did, '').catch(() => false);
    }
  }

  async #fetchAndWrite(did: string, host: string, url: string, signal: AbortSignal): Promise<Imported> {
    const { strangers, hosts } = this.#options;
    const stall = new AbortController();
    const fetchSignal = AbortSignal.any([signal, stall.signal, AbortSignal.timeout(this.#options.timeoutMs ?? 600_000)]);
    let response: Response;
    const fetching = performance.now();
    try {
      response = await strangers.fetch(url, { signal: fetchSignal, redirect: 'manual', headers: { accept: 'application/vnd.ipld.car' } });
    } catch (error) {
      hosts.failed(host, 'unreachable');
      if (error instanceof OutboundRefused) throw new ImportFailure('fetch-failed', `refused: ${error.message}`);
      throw new ImportFailure('fetch-failed', fetchSignal.aborted ? 'timed out or stopped' : String((error as Error).message));
    }
    hosts.observe(host, response);
    if (response.status === 429 || response.status === 503) {
      await response.body?.cancel().catch(() => undefined);
      throw new ImportFailure('rate-limited', `getRepo answered ${response.status}`);
    }
    if (response.status === 400 || response.status === 404) {
      const error = xrpcErrorName(await readBounded(response, 4096).catch(() => ''));
      if (GONE.test(error)) {
        hosts.succeeded(host);
        return gone(host);
      }
      throw new ImportFailure('fetch-failed', `getRepo answered ${response.status} ${error}`.trim());
    }
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel().catch(() => undefined);
      hosts.failed(host, `answered ${response.status}`);
      throw new ImportFailure('fetch-failed', `getRepo answered ${response.status}`);
    }
    hosts.succeeded(host);

    // a body that stops arriving is given up on after stallMs, not only at the whole budget
    const stallMs = this.#options.stallMs ?? 30_000;
    let stallTimer = setTimeout(() => stall.abort(), stallMs);
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          clearTimeout(stallTimer);
          stallTimer = setTimeout(() => stall.abort(), stallMs);
          controller.enqueue(chunk);
        },
      }),
    );
    let repo;
    try {
      repo = await readRepoStream(did, body, {
        spillDir: this.#options.spillDir,
        memoryBytes: this.#options.memoryBytes ?? 16 * 1024 * 1024,
        maxBytes: this.#options.maxRepoBytes ?? 4 * 1024 * 1024 * 1024,
        signal: fetchSignal,
      });
    } catch (error) {
      throw readFailure(error, fetchSignal);
    } finally {
      clearTimeout(stallTimer);
      this.#spent('fetch', fetching);
    }
    try {
      const { commit } = repo;
      let unverified = false;
      if (this.#options.verifier) {
        const verifying = performance.now();
        const verdict = await this.#options.verifier.verify(did, commit.unsignedBytes, commit.sig);
        this.#spent('verify', verifying);
        if (verdict === 'bad-signature' || verdict === 'key-invalid') throw new ImportFailure('bad-signature', `commit ${commit.rev}: ${verdict}`);
        unverified = verdict === 'key-unavailable';
      }
      const parsing = performance.now();
      let writeWaitMs = 0;
      // the whole tree first (paths and CIDs, nothing decoded): a repo whose tree is broken
      // anywhere is refused before anything of it is written
      try {
        for await (const chunk of repo.records(WALK_CHUNK)) void chunk;
      } catch (error) {
        throw readFailure(error, fetchSignal);
      }
      const indexed = await this.#indexedRecords(did);
      let records = 0;
      let changed = 0;
      const invalid = { count: 0 };
      const writes: Promise<void>[] = [];
      try {
        for await (const chunk of repo.records(OPS_PER_WRITE)) {
          records += chunk.length;
          const ops = diff(chunk, indexed, invalid);
          changed += ops.length;
          // one chunk in flight while the next is read: memory stays at two chunks
          const waitingForWrite = performance.now();
          await writes.shift();
          writeWaitMs += performance.now() - waitingForWrite;
          writes.push(this.#options.writer.write(did, commit.rev, ops).catch(writeFailed));
        }
      } catch (error) {
        await Promise.allSettled(writes);
        throw readFailure(error, fetchSignal);
      }
      const deletes: RecordOp[] = [];
      for (const key of indexed.keys()) {
        const [table, rkey] = key.split(' ') as [Table, string];
        deletes.push({ action: 'delete', collection: collectionOfTable(table), table, rkey, cid: null, row: null });
      }
      for (let from = 0; from < deletes.length; from += OPS_PER_WRITE) writes.push(this.#options.writer.write(did, commit.rev, deletes.slice(from, from + OPS_PER_WRITE)).catch(writeFailed));
      changed += deletes.length;
      const lastWrites = performance.now();
      this.phaseMs.parse += lastWrites - parsing - writeWaitMs;
      try {
        for (const write of writes) await write;
      } catch (error) {
        await Promise.allSettled(writes);
        throw error;
      } finally {
        this.phaseMs.write += writeWaitMs + performance.now() - lastWrites;
      }
      return { outcome: 'imported', host, rev: commit.rev, records, changed, invalid: invalid.count, carBytes: repo.carBytes, unverified };
    } finally {
      await repo.close();
    }
  }

  #spent(phase: ImportPhase, since: number): void {
    this.phaseMs[phase] += performance.now() - since;
  }

  /** `table rkey` -> stored CID (null where the table keeps none) of every record indexed for the repo. */
  async #indexedRecords(did: string): Promise<Map<string, string | null>> {
    const rows = await this.#options.db.run((sql) => {
      const parts = TABLES.map(
        (table) =>
          sql`select ${table}::text as t, rkey, ${WITH_CID.has(table) ? sql`cid` : sql`null::text`} as cid from ${sql(table)} where author_id = (select id from actors where did = ${did})`,
      );
      const union = parts.reduce((all, part) => sql`${all} union all ${part}`);
      return sql<{ t: Table; rkey: string; cid: string | null }[]>`${union}`;
    });
    const indexed = new Map<string, string | null>();
    for (const row of rows) indexed.set(`${row.t} ${row.rkey}`, row.cid);
    return indexed;
  }
}

/**
 * The ops that make the index hold this chunk of the repo; what the index holds of it is removed
 * from `indexed`. A record that is invalid, or whose block is missing or does not decode, is not
 * indexed and what was stored at its path goes (as on the firehose); counted in `invalid`.
 */
function diff(chunk: readonly RepoRecord[], indexed: Map<string, string | null>, invalid: { count: number }): RecordOp[] {
  const ops: RecordOp[] = [];
  for (const record of chunk) {
    const slash = record.path.indexOf('/');
    const collection = record.path.slice(0, slash);
    const rkey = record.path.slice(slash + 1);
    const table = tableOf(collection);
    if (table === null) continue;
    const key = `${table} ${rkey}`;
    const stored = indexed.get(key);
    if (stored !== undefined) indexed.delete(key);
    if (stored !== undefined && stored !== null && stored === record.cid) continue;
    let parsed;
    try {
      parsed = parseRecord(collection, rkey, record.value());
    } catch (error) {
      if (!(error instanceof CommitReadError)) throw error;
      parsed = null;
    }
    if (!parsed?.ok) invalid.count++;
    // a key the index does not hold is created (nothing to replace: one statement fewer; a live
    // write of the same key meanwhile is absorbed by the writer's conflict path)
    if (parsed?.ok) ops.push({ action: stored === undefined ? 'create' : 'update', collection, table, rkey, cid: record.cid, row: parsed.row });
    else if (stored !== undefined) ops.push({ action: 'delete', collection, table, rkey, cid: null, row: null });
  }
  return ops;
}

function readFailure(error: unknown, signal: AbortSignal): unknown {
  if (error instanceof ImportFailure) return error;
  if (error instanceof RepoStreamError) {
    if (error.reason === 'too-large') return new ImportFailure('too-large', error.message);
    if (error.reason === 'aborted') return new ImportFailure('fetch-failed', signal.aborted ? 'timed out, stalled or stopped' : error.message);
    return new ImportFailure('bad-repo', `${error.reason}: ${error.message}`);
  }
  if (error instanceof CommitReadError || error instanceof MstError || error instanceof CarIndexError) return new ImportFailure('bad-repo', `${error.reason}: ${error.message}`);
  if (signal.aborted) return new ImportFailure('fetch-failed', 'timed out, stalled or stopped');
  return new ImportFailure('fetch-failed', String((error as Error).message));
}

const writeFailed = (error: unknown): never => {
  throw new ImportFailure('write-failed', String((error as Error).message));
};

const gone = (host: string | null): Imported => ({ outcome: 'repo-gone', host, rev: null, records: 0, changed: 0, invalid: 0, carBytes: 0, unverified: false });
