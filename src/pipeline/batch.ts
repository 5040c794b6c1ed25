/**
 * Collapsing a run of events into one batch: the final state of every record it touches.
 *
 * Events are folded in firehose order, so for each (table, author, rkey) the last operation
 * wins: a create then a delete in one batch leaves nothing, a delete then a create leaves the new
 * record. A key touched by anything but a single create is marked `replace`: the writer first
 * deletes whatever the database holds for it, then inserts the final row, so aggregates follow
 * exactly what was removed and added. A deleted account turns into "remove everything of this
 * author" and wipes the changes of that author folded before it. A repo found to need a resync
 * keeps the first reason the batch saw.
 */
import type { Row, Table } from './collections.ts';
import type { AccountStatus, IndexEvent, ResyncReason } from './events.ts';

export interface RecordChange {
  readonly did: string;
  readonly rkey: string;
  readonly collection: string;
  cid: string | null;
  /** The record to hold at the end of the batch; null = no record. */
  row: Row | null;
  /** Delete what the database holds for this key before inserting `row`. */
  replace: boolean;
}

export interface Batch {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Event time of the last event that carried one. */
  readonly lastTime: string | null;
  readonly eventCount: number;
  /** Every DID the batch needs an actor id for. */
  readonly dids: ReadonlySet<string>;
  readonly changes: ReadonlyMap<Table, ReadonlyMap<string, RecordChange>>;
  readonly accountStatus: ReadonlyMap<string, AccountStatus | null>;
  readonly deletedAccounts: ReadonlySet<string>;
  readonly identityRefresh: ReadonlySet<string>;
  /** Repos found to need a resync: the first reason and seq of each. */
  readonly resync: ReadonlyMap<string, { readonly reason: ResyncReason; readonly seq: number }>;
}

export function buildBatch(events: readonly IndexEvent[]): Batch {
  const first = events[0];
  const last = events.at(-1);
  if (!first || !last) throw new Error('a batch needs at least one event');

  const dids = new Set<string>();
  const changes = new Map<Table, Map<string, RecordChange>>();
  const accountStatus = new Map<string, AccountStatus | null>();
  const deletedAccounts = new Set<string>();
  const identityRefresh = new Set<string>();
  const resync = new Map<string, { reason: ResyncReason; seq: number }>();
  let lastTime: string | null = null;

  for (const event of events) {
    if (event.time) lastTime = event.time;
    if (event.resync && !resync.has(event.resync.did)) {
      dids.add(event.resync.did);
      resync.set(event.resync.did, { reason: event.resync.reason, seq: event.seq });
    }
    switch (event.kind) {
      case 'commit':
        dids.add(event.did);
        for (const op of event.ops) {
          let table = changes.get(op.table);
          if (!table) changes.set(op.table, (table = new Map()));
          const key = `${event.did} ${op.rkey}`;
          const existing = table.get(key);
          if (existing) {
            existing.row = op.row;
            existing.cid = op.cid;
            existing.replace = true;
          } else {
            table.set(key, { did: event.did, rkey: op.rkey, collection: op.collection, cid: op.cid, row: op.row, replace: op.action !== 'create' });
          }
          if (op.row) for (const did of referencedDids(op.row)) dids.add(did);
        }
        break;
      case 'account':
        dids.add(event.did);
        accountStatus.set(event.did, event.status);
        if (event.status === 'deleted') {
          deletedAccounts.add(event.did);
          for (const table of changes.values()) {
            for (const [key, change] of table) if (change.did === event.did) table.delete(key);
          }
        }
        break;
      case 'identity':
        dids.add(event.did);
        identityRefresh.add(event.did);
        break;
      case 'sync':
      case 'skipped':
        break;
    }
  }
  return { firstSeq: first.seq, lastSeq: last.seq, lastTime, eventCount: events.length, dids, changes, accountStatus, deletedAccounts, identityRefresh, resync };
}

export function referencedDids(row: Row): string[] {
  switch (row.table) {
    case 'posts': {
      const refs: string[] = [];
      if (row.replyRoot) refs.push(row.replyRoot.did);
      if (row.replyParent) refs.push(row.replyParent.did);
      if (row.quote) refs.push(row.quote.did);
      return refs;
    }
    case 'likes':
    case 'reposts':
      return [row.subject.did];
    case 'follows':
    case 'blocks':
      return [row.subjectDid];
    default: {
      const refs: string[] = [];
      if (row.ref) refs.push(row.ref.did);
      if (row.subjectDid) refs.push(row.subjectDid);
      return refs;
    }
  }
}
