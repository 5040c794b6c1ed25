/**
 * What the decode stage hands the pipeline: firehose events already decoded, verified and with
 * every record parsed into its row. Rejected input never gets here; it is counted upstream and
 * represented by a `skipped` event, so its sequence number still moves the cursor.
 */
import type { Row, Table } from './collections.ts';

export interface RecordOp {
  readonly action: 'create' | 'update' | 'delete';
  readonly collection: string;
  readonly table: Table;
  readonly rkey: string;
  readonly cid: string | null;
  /** The parsed record for create/update; null for delete. */
  readonly row: Row | null;
}

export type AccountStatus = 'deactivated' | 'takendown' | 'suspended' | 'deleted' | 'desynchronized' | 'throttled';

/**
 * Why a repo's index may have missed commits and must be fetched whole again (sql/00008):
 * the relay said so (`#sync`), a commit does not follow the last revision indexed, a commit too
 * big to carry its blocks, or a commit whose ops and tree disagree.
 */
export type ResyncReason = 'sync-event' | 'rev-gap' | 'too-big' | 'bad-proof';

interface Sequenced {
  readonly seq: number;
  /** The relay's event time (ISO 8601), used for lag. */
  readonly time: string | null;
  /** Set when this event shows the repo needs a resync. */
  readonly resync?: { readonly did: string; readonly reason: ResyncReason };
}

export type IndexEvent =
  | (Sequenced & { readonly kind: 'commit'; readonly did: string; readonly rev: string; readonly ops: readonly RecordOp[] })
  | (Sequenced & { readonly kind: 'account'; readonly did: string; readonly status: AccountStatus | null })
  | (Sequenced & { readonly kind: 'identity'; readonly did: string })
  | (Sequenced & { readonly kind: 'sync'; readonly did: string })
  | (Sequenced & { readonly kind: 'skipped' });
