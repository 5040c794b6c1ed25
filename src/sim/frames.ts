/**
 * com.atproto.sync.subscribeRepos frames as they go on the wire.
 *
 * Owns: the body shapes the simulator emits and their encoding.
 * Promises: a frame is one binary WebSocket message: the DAG-CBOR header (`{op: 1, t: '#commit'}` etc.,
 * or `{op: -1}` for errors) immediately followed by the DAG-CBOR body; CIDs are encoded as CID links
 * (tag 42), `blocks` as a byte string holding a CAR v1.
 */
import type { CidLink } from '@atcute/cid';
import { encode, encodeAfter } from './cbor.ts';

export interface CommitOpBody {
  action: 'create' | 'update' | 'delete';
  path: string;
  cid: CidLink | null;
  prev?: CidLink;
}

export interface CommitBody {
  seq: number;
  rebase: false;
  tooBig: boolean;
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
  '#commit': encode({ op: 1, t: '#commit' }),
  '#identity': encode({ op: 1, t: '#identity' }),
  '#account': encode({ op: 1, t: '#account' }),
  '#sync': encode({ op: 1, t: '#sync' }),
  '#info': encode({ op: 1, t: '#info' }),
};
const ERROR_HEADER = encode({ op: -1 });

// header and body are encoded into one array (bare Uint8Arrays, like `blocks`, are CBOR byte strings)
export const commitFrame = (body: CommitBody): Uint8Array<ArrayBuffer> => encodeAfter(HEADERS['#commit'], body);

export const identityFrame = (body: IdentityBody): Uint8Array<ArrayBuffer> => encodeAfter(HEADERS['#identity'], body);

export const accountFrame = (body: AccountBody): Uint8Array<ArrayBuffer> => encodeAfter(HEADERS['#account'], body);

export const syncFrame = (body: SyncBody): Uint8Array<ArrayBuffer> => encodeAfter(HEADERS['#sync'], body);

export const infoFrame = (body: InfoBody): Uint8Array<ArrayBuffer> => encodeAfter(HEADERS['#info'], body);

export const errorFrame = (error: string, message?: string): Uint8Array<ArrayBuffer> =>
  encodeAfter(ERROR_HEADER, message === undefined ? { error } : { error, message });
