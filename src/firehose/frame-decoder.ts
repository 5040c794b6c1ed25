// frame-decoder: one binary firehose frame (com.atproto.sync.subscribeRepos) in, one typed Frame out.
//
// Owns the wire format of a frame: a DAG-CBOR header `{op, t}` immediately followed by a DAG-CBOR
// body. Promises: pure and synchronous; every field the caller reads is type-checked here; the
// `blocks` CAR slice is a zero-copy view into the input (keep the input alive, do not mutate it),
// and so are the CIDs nothing stores as text (`commit`, `ops[].prev`: CidLinkWrappers whose base32
// `$link` is only made when read; `ops[].cid`, stored, is a string);
// malformed input throws a FrameError whose `reason` is one of a small fixed set, so the caller can
// count and skip it. Unknown message types are returned as `kind: 'unknown'` (with their seq when
// they carry a valid one) rather than thrown, so the cursor can still advance past them. DAG-CBOR is
// read by dag-cbor-decode.ts (@atcute/cbor's decoder, cheaper on repeated map keys and CIDs).
import { BytesWrapper, CidLinkWrapper } from '@atcute/cbor';

import { decodeFirst } from './dag-cbor-decode.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type FrameErrorReason = 'bad-cbor' | 'bad-header' | 'bad-body' | 'bad-field';

export class FrameError extends ReasonError<FrameErrorReason> {
  override readonly name = 'FrameError';
}

export type RepoOpAction = 'create' | 'update' | 'delete';

export interface RepoOp {
  action: RepoOpAction;
  collection: string;
  rkey: string;
  /** new record CID (base32 string) for create/update; null for delete */
  cid: string | null;
  /** the same CID as bytes (a view into the frame), set by the decoder; null for delete */
  cidBytes?: Uint8Array | null;
  /** previous record CID (binary in `.bytes`, base32 `$link` made when asked), present only when the relay sent it (sync v1.1) */
  prev?: CidLinkWrapper | null;
}

export interface CommitFrame {
  kind: 'commit';
  seq: number;
  repo: string;
  rev: string;
  since: string | null;
  /** commit block CID, binary (`.bytes`, a view into the frame bytes); its base32 `$link` is made when asked */
  commit: CidLinkWrapper;
  /** CAR slice; a view into the frame bytes */
  blocks: Uint8Array;
  ops: RepoOp[];
  /** MST root before the commit (sync v1.1); null when the relay did not send it */
  prevData: CidLinkWrapper | null;
  time: string;
  tooBig: boolean;
  rebase: boolean;
}

export interface SyncFrame {
  kind: 'sync';
  seq: number;
  did: string;
  blocks: Uint8Array;
  rev: string;
  time: string;
}

export interface IdentityFrame {
  kind: 'identity';
  seq: number;
  did: string;
  time: string;
  handle?: string;
}

export interface AccountFrame {
  kind: 'account';
  seq: number;
  did: string;
  time: string;
  active: boolean;
  status?: string;
}

export interface InfoFrame {
  kind: 'info';
  name: string;
  message?: string;
}

export interface ErrorFrame {
  kind: 'error';
  error: string;
  message?: string;
}

export interface UnknownFrame {
  kind: 'unknown';
  seq?: number;
  type: string;
}

export type Frame =
  | CommitFrame
  | SyncFrame
  | IdentityFrame
  | AccountFrame
  | InfoFrame
  | ErrorFrame
  | UnknownFrame;

type CborMap = Record<string, unknown>;

const LEXICON_PREFIX = 'com.atproto.sync.subscribeRepos#';
const CODEC_DCBOR = 0x71;
const MAX_DID_LENGTH = 2048;
// atproto DID syntax (https://atproto.com/specs/did)
const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
// TID syntax, used for `rev` and `since`
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;
// NSID syntax (https://atproto.com/specs/nsid), checked together with a 317-char bound
const NSID_RE =
  /^[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$/;
// record key syntax (https://atproto.com/specs/record-key)
const RKEY_RE = /^[a-zA-Z0-9._:~-]{1,512}$/;

const isMap = (value: unknown): value is CborMap =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

const fieldError = (field: string, expected: string): FrameError =>
  new FrameError('bad-field', `field "${field}": expected ${expected}`);

const readSeq = (body: CborMap): number => {
  const seq = body.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw fieldError('seq', 'a non-negative safe integer');
  }
  return seq;
};

const readString = (body: CborMap, field: string): string => {
  const value = body[field];
  if (typeof value !== 'string') throw fieldError(field, 'a string');
  return value;
};

const readOptionalString = (body: CborMap, field: string): string | undefined => {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw fieldError(field, 'a string');
  return value;
};

const readTime = (body: CborMap): string => {
  const value = body.time;
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw fieldError('time', 'a datetime string');
  }
  return value;
};

const readDid = (body: CborMap, field: string): string => {
  const value = body[field];
  if (typeof value !== 'string' || value.length > MAX_DID_LENGTH || !DID_RE.test(value)) {
    throw fieldError(field, 'a did');
  }
  return value;
};

const readTid = (body: CborMap, field: string): string => {
  const value = body[field];
  if (typeof value !== 'string' || !TID_RE.test(value)) throw fieldError(field, 'a TID');
  return value;
};

// Deprecated booleans (tooBig, rebase) are tolerated when absent but must be booleans when present.
const readFlag = (body: CborMap, field: string): boolean => {
  const value = body[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw fieldError(field, 'a boolean');
  return value;
};

const readBytes = (body: CborMap, field: string): Uint8Array => {
  const value = body[field];
  if (!(value instanceof BytesWrapper)) throw fieldError(field, 'bytes');
  return value.buf;
};

const cidLink = (value: unknown, field: string): CidLinkWrapper => {
  if (!(value instanceof CidLinkWrapper) || value.bytes[1] !== CODEC_DCBOR) {
    throw fieldError(field, 'a dag-cbor cid-link');
  }
  return value;
};


const readOp = (value: unknown): RepoOp => {
  if (!isMap(value)) throw fieldError('ops[]', 'a map');
  const action = value.action;
  if (action !== 'create' && action !== 'update' && action !== 'delete') {
    throw fieldError('ops[].action', 'create, update or delete');
  }
  const path = value.path;
  if (typeof path !== 'string') throw fieldError('ops[].path', 'a string');
  const slash = path.indexOf('/');
  const collection = slash === -1 ? '' : path.slice(0, slash);
  const rkey = slash === -1 ? '' : path.slice(slash + 1);
  if (collection.length > 317 || !NSID_RE.test(collection)) {
    throw fieldError('ops[].path', 'collection/rkey with a valid NSID');
  }
  if (!RKEY_RE.test(rkey) || rkey === '.' || rkey === '..') {
    throw fieldError('ops[].path', 'collection/rkey with a valid record key');
  }
  let link: CidLinkWrapper | null;
  if (action === 'delete') {
    if (value.cid !== null && value.cid !== undefined) throw fieldError('ops[].cid', 'null for a delete');
    link = null;
  } else {
    link = cidLink(value.cid, 'ops[].cid');
  }
  const op: RepoOp = { action, collection, rkey, cid: link === null ? null : link.$link, cidBytes: link === null ? null : link.bytes };
  const prev = value.prev;
  if (prev !== undefined) op.prev = prev === null ? null : cidLink(prev, 'ops[].prev');
  return op;
};

const readCommit = (body: CborMap): CommitFrame => {
  const rawOps = body.ops;
  if (!Array.isArray(rawOps)) throw fieldError('ops', 'an array');
  const ops = new Array<RepoOp>(rawOps.length);
  for (let i = 0; i < rawOps.length; i++) ops[i] = readOp(rawOps[i]);
  let since: string | null = null;
  const rawSince = body.since;
  if (rawSince !== null && rawSince !== undefined) {
    if (typeof rawSince !== 'string' || !TID_RE.test(rawSince)) throw fieldError('since', 'a TID or null');
    since = rawSince;
  }
  return {
    kind: 'commit',
    seq: readSeq(body),
    repo: readDid(body, 'repo'),
    rev: readTid(body, 'rev'),
    since,
    commit: cidLink(body.commit, 'commit'),
    blocks: readBytes(body, 'blocks'),
    ops,
    prevData: body.prevData === undefined || body.prevData === null ? null : cidLink(body.prevData, 'prevData'),
    time: readTime(body),
    tooBig: readFlag(body, 'tooBig'),
    rebase: readFlag(body, 'rebase'),
  };
};

const readBody = (type: string, body: CborMap): Frame => {
  switch (type) {
    case '#commit':
      return readCommit(body);
    case '#sync':
      return {
        kind: 'sync',
        seq: readSeq(body),
        did: readDid(body, 'did'),
        blocks: readBytes(body, 'blocks'),
        rev: readTid(body, 'rev'),
        time: readTime(body),
      };
    case '#identity': {
      const frame: IdentityFrame = {
        kind: 'identity',
        seq: readSeq(body),
        did: readDid(body, 'did'),
        time: readTime(body),
      };
      const handle = readOptionalString(body, 'handle');
      if (handle !== undefined) frame.handle = handle;
      return frame;
    }
    case '#account': {
      const active = body.active;
      if (typeof active !== 'boolean') throw fieldError('active', 'a boolean');
      const frame: AccountFrame = {
        kind: 'account',
        seq: readSeq(body),
        did: readDid(body, 'did'),
        time: readTime(body),
        active,
      };
      const status = readOptionalString(body, 'status');
      if (status !== undefined) frame.status = status;
      return frame;
    }
    case '#info': {
      const frame: InfoFrame = { kind: 'info', name: readString(body, 'name') };
      const message = readOptionalString(body, 'message');
      if (message !== undefined) frame.message = message;
      return frame;
    }
    default: {
      const frame: UnknownFrame = { kind: 'unknown', type };
      const seq = body.seq;
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) frame.seq = seq;
      return frame;
    }
  }
};

const decodeValue = (bytes: Uint8Array, what: string): [unknown, Uint8Array] => {
  try {
    return decodeFirst(bytes);
  } catch (err) {
    throw new FrameError('bad-cbor', `${what}: invalid DAG-CBOR`, { cause: err });
  }
};

/** Decodes one binary frame. Throws FrameError on malformed input. */
export const decodeFrame = (bytes: Uint8Array): Frame => {
  const [header, rest] = decodeValue(bytes, 'header');
  if (!isMap(header)) throw new FrameError('bad-header', 'header is not a map');
  const op = header.op;
  if (op !== 1 && op !== -1) throw new FrameError('bad-header', 'header op is neither 1 nor -1');

  const [body, trailing] = decodeValue(rest, 'body');
  if (trailing.length !== 0) throw new FrameError('bad-body', 'trailing bytes after body');
  if (!isMap(body)) throw new FrameError('bad-body', 'body is not a map');

  if (op === -1) {
    const frame: ErrorFrame = { kind: 'error', error: readString(body, 'error') };
    const message = readOptionalString(body, 'message');
    if (message !== undefined) frame.message = message;
    return frame;
  }

  const type = header.t;
  if (typeof type !== 'string' || type.length === 0) {
    throw new FrameError('bad-header', 'header t is not a non-empty string');
  }
  return readBody(type.startsWith(LEXICON_PREFIX) ? type.slice(LEXICON_PREFIX.length - 1) : type, body);
};
