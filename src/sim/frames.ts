/**
 * com.atproto.sync.subscribeRepos frames as they go on the wire.
 *
 * Owns: the body shapes the simulator emits and their encoding.
 * Promises: a frame is one binary WebSocket message: the DAG-CBOR header (`{op: 1, t: '#commit'}` etc.,
 * or `{op: -1}` for errors) immediately followed by the DAG-CBOR body; CIDs are encoded as CID links
 * (tag 42), `blocks` as a byte string holding a CAR v1.
 */
import * as CBOR from '@atcute/cbor';
import type { CidLink } from '@atcute/cid';

export interface CommitOpBody {
  action: 'create' | 'update' | 'delete';
  path: string;
  cid: CidLink | null;
  prev?: CidLink;
}

export interface CommitBody {
  seq: number;
  rebase: false;
  tooBig: false;
  repo: string;
  commit: CidLink;
  rev: string;
  since: string | null;
  blocks: Uint8Array;
  ops: CommitOpBody[];
  blobs: CidLink[];
  prevData?: CidLink;
  time: string;
}

export interface IdentityBody {
  seq: number;
  did: string;
  time: string;
  handle?: string;
}

export type AccountInactiveStatus = 'takendown' | 'suspended' | 'deleted' | 'deactivated';

export interface AccountBody {
  seq: number;
  did: string;
  time: string;
  active: boolean;
  status?: AccountInactiveStatus;
}

export interface SyncBody {
  seq: number;
  did: string;
  blocks: Uint8Array;
  rev: string;
  time: string;
}

export interface InfoBody {
  name: 'OutdatedCursor' | (string & {});
  message?: string;
}

export type MessageType = '#commit' | '#identity' | '#account' | '#sync' | '#info';

const HEADERS: Record<MessageType, Uint8Array> = {
  '#commit': CBOR.encode({ op: 1, t: '#commit' }),
  '#identity': CBOR.encode({ op: 1, t: '#identity' }),
  '#account': CBOR.encode({ op: 1, t: '#account' }),
  '#sync': CBOR.encode({ op: 1, t: '#sync' }),
  '#info': CBOR.encode({ op: 1, t: '#info' }),
};
const ERROR_HEADER = CBOR.encode({ op: -1 });

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
};

/** Byte arrays become CBOR byte strings; everything else is encoded as given. */
const withBytes = <T extends { blocks: Uint8Array }>(body: T): Omit<T, 'blocks'> & { blocks: CBOR.Bytes } => ({
  ...body,
  blocks: CBOR.toBytes(body.blocks),
});

export const commitFrame = (body: CommitBody): Uint8Array<ArrayBuffer> =>
  concat(HEADERS['#commit'], CBOR.encode(withBytes(body)));

export const identityFrame = (body: IdentityBody): Uint8Array<ArrayBuffer> =>
  concat(HEADERS['#identity'], CBOR.encode(body));

export const accountFrame = (body: AccountBody): Uint8Array<ArrayBuffer> =>
  concat(HEADERS['#account'], CBOR.encode(body));

export const syncFrame = (body: SyncBody): Uint8Array<ArrayBuffer> => concat(HEADERS['#sync'], CBOR.encode(withBytes(body)));

export const infoFrame = (body: InfoBody): Uint8Array<ArrayBuffer> => concat(HEADERS['#info'], CBOR.encode(body));

export const errorFrame = (error: string, message?: string): Uint8Array<ArrayBuffer> =>
  concat(ERROR_HEADER, CBOR.encode(message === undefined ? { error } : { error, message }));
