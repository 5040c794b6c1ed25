import { describe, expect, test } from 'bun:test';
import { encode, toBytes, toCidLink } from '@atcute/cbor';
import { fromDigest } from '@atcute/cid';

import { decodeFrame, FrameError, type FrameErrorReason } from '../../src/firehose/frame-decoder.ts';
import { sha256 } from '../../src/firehose/sha256.ts';
import { buildCommit, cidString, DID, frameOf, REV, TIME } from './fixtures.ts';

const COMMIT = { op: 1, t: '#commit' };
const built = buildCommit();

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
};

const commitWith = (patch: Record<string, unknown>): Uint8Array => {
  const body: Record<string, unknown> = { ...built.body, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete body[k];
  return frameOf(COMMIT, body);
};

const opWith = (patch: Record<string, unknown>): Uint8Array => {
  const op: Record<string, unknown> = { ...(built.body.ops as Record<string, unknown>[])[0], ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete op[k];
  return commitWith({ ops: [op] });
};

const rawCid = toCidLink(fromDigest(0x55, sha256(new Uint8Array([1]))));

describe('decodeFrame: valid frames', () => {
  test('#commit', () => {
    const frame = decodeFrame(built.frame);
    if (frame.kind !== 'commit') throw new Error('expected a commit');
    const hex = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('hex') : bytes);
    const ops = frame.ops.map(({ cidBytes, ...op }) => ({ ...op, cidBytes: hex(cidBytes) }));
    expect({ ...frame, commit: frame.commit.$link, ops }).toEqual({
      kind: 'commit',
      seq: 42,
      repo: DID,
      rev: REV,
      since: null,
      commit: cidString(built.commitBlock.cid),
      blocks: (built.body.blocks as { buf: Uint8Array }).buf,
      ops: [
        { action: 'create', collection: 'app.bsky.feed.post', rkey: REV, cid: cidString(built.recordBlocks[0]!.cid), cidBytes: hex(built.recordBlocks[0]!.cid.bytes) },
      ],
      prevData: null,
      time: TIME,
      tooBig: false,
      rebase: false,
    });
  });

  test('#commit blocks is a view into the frame, not a copy', () => {
    const frame = decodeFrame(built.frame);
    if (frame.kind !== 'commit') throw new Error('expected a commit');
    expect(frame.blocks.buffer).toBe(built.frame.buffer);
  });

  test('#commit with a delete, an update with prev, since, and the long type name', () => {
    const cid = built.body.commit;
    const frame = decodeFrame(
      frameOf(
        { op: 1, t: 'com.atproto.sync.subscribeRepos#commit' },
        {
          ...built.body,
          since: '3kdgkpd4rv22b',
          ops: [
            { action: 'delete', path: 'app.bsky.feed.like/3kabc', cid: null },
            { action: 'update', path: 'app.bsky.actor.profile/self', cid, prev: cid },
            { action: 'update', path: 'app.bsky.actor.profile/self', cid, prev: null },
          ],
        },
      ),
    );
    if (frame.kind !== 'commit') throw new Error('expected a commit');
    expect(frame.since).toBe('3kdgkpd4rv22b');
    expect(frame.ops.map(({ cidBytes, ...op }) => ({ ...(op.prev ? { ...op, prev: op.prev.$link } : op), bytes: cidBytes?.length ?? null }))).toEqual([
      { action: 'delete', collection: 'app.bsky.feed.like', rkey: '3kabc', cid: null, bytes: null },
      { action: 'update', collection: 'app.bsky.actor.profile', rkey: 'self', cid: frame.commit.$link, prev: frame.commit.$link, bytes: 36 },
      { action: 'update', collection: 'app.bsky.actor.profile', rkey: 'self', cid: frame.commit.$link, prev: null, bytes: 36 },
    ]);
  });

  test('rkey keeps everything after the first slash', () => {
    const frame = decodeFrame(opWith({ path: 'com.example.thing/a:b' }));
    if (frame.kind !== 'commit') throw new Error('expected a commit');
    expect(frame.ops[0]!.rkey).toBe('a:b');
  });

  test('deprecated tooBig/rebase may be absent', () => {
    const frame = decodeFrame(commitWith({ tooBig: undefined, rebase: undefined }));
    expect(frame).toMatchObject({ kind: 'commit', tooBig: false, rebase: false });
  });

  const cases: [string, Uint8Array, unknown][] = [
    [
      '#sync',
      frameOf({ op: 1, t: '#sync' }, { seq: 7, did: DID, blocks: toBytes(new Uint8Array([1, 2])), rev: REV, time: TIME }),
      { kind: 'sync', seq: 7, did: DID, blocks: new Uint8Array([1, 2]), rev: REV, time: TIME },
    ],
    [
      '#identity with handle',
      frameOf({ op: 1, t: '#identity' }, { seq: 8, did: DID, time: TIME, handle: 'alice.test' }),
      { kind: 'identity', seq: 8, did: DID, time: TIME, handle: 'alice.test' },
    ],
    [
      '#identity without handle',
      frameOf({ op: 1, t: '#identity' }, { seq: 8, did: DID, time: TIME }),
      { kind: 'identity', seq: 8, did: DID, time: TIME },
    ],
    [
      '#account',
      frameOf({ op: 1, t: '#account' }, { seq: 9, did: DID, time: TIME, active: false, status: 'takendown' }),
      { kind: 'account', seq: 9, did: DID, time: TIME, active: false, status: 'takendown' },
    ],
    [
      '#info',
      frameOf({ op: 1, t: '#info' }, { name: 'OutdatedCursor', message: 'too old' }),
      { kind: 'info', name: 'OutdatedCursor', message: 'too old' },
    ],
    [
      'error frame',
      frameOf({ op: -1 }, { error: 'FutureCursor', message: 'cursor in the future' }),
      { kind: 'error', error: 'FutureCursor', message: 'cursor in the future' },
    ],
    [
      'unknown type with seq',
      frameOf({ op: 1, t: '#tombstone' }, { seq: 10, did: DID, time: TIME }),
      { kind: 'unknown', seq: 10, type: '#tombstone' },
    ],
    [
      'unknown type with an invalid seq',
      frameOf({ op: 1, t: '#future' }, { seq: -1 }),
      { kind: 'unknown', type: '#future' },
    ],
  ];
  test.each(cases)('%s', (_name, bytes, expected) => {
    expect(decodeFrame(bytes)).toEqual(expected as never);
  });
});

describe('decodeFrame: malformed frames', () => {
  const header = encode(COMMIT);
  const cases: [string, Uint8Array, FrameErrorReason][] = [
    ['empty input', new Uint8Array(0), 'bad-cbor'],
    ['truncated frame', built.frame.subarray(0, built.frame.length >> 1), 'bad-cbor'],
    ['truncated by one byte', built.frame.subarray(0, built.frame.length - 1), 'bad-cbor'],
    ['header without a body', header, 'bad-cbor'],
    ['garbage', new Uint8Array([0xff, 0xff, 0xff]), 'bad-cbor'],
    ['unsupported CBOR tag', concat(header, new Uint8Array([0xc1, 0x00])), 'bad-cbor'],
    // {"b": 1, "a": 2}: keys out of canonical order
    ['non-canonical map', concat(header, new Uint8Array([0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02])), 'bad-cbor'],
    ['header is an array', frameOf([1, '#commit'], built.body), 'bad-header'],
    ['header op 2', frameOf({ op: 2, t: '#commit' }, built.body), 'bad-header'],
    ['header op missing', frameOf({ t: '#commit' }, built.body), 'bad-header'],
    ['header t missing', frameOf({ op: 1 }, built.body), 'bad-header'],
    ['header t is a number', frameOf({ op: 1, t: 1 }, built.body), 'bad-header'],
    ['header t is empty', frameOf({ op: 1, t: '' }, built.body), 'bad-header'],
    ['body is an array', frameOf(COMMIT, [1, 2]), 'bad-body'],
    ['body is a string', frameOf(COMMIT, 'hello'), 'bad-body'],
    ['trailing bytes after the body', concat(built.frame, new Uint8Array([0x00])), 'bad-body'],
    ['unknown type with a non-map body', frameOf({ op: 1, t: '#future' }, 5), 'bad-body'],
    ['seq missing', commitWith({ seq: undefined }), 'bad-field'],
    ['seq negative', commitWith({ seq: -1 }), 'bad-field'],
    ['seq fractional', commitWith({ seq: 1.5 }), 'bad-field'],
    ['seq a string', commitWith({ seq: '42' }), 'bad-field'],
    ['repo missing', commitWith({ repo: undefined }), 'bad-field'],
    ['repo not a did', commitWith({ repo: 'alice.test' }), 'bad-field'],
    ['repo a number', commitWith({ repo: 1 }), 'bad-field'],
    ['commit a string', commitWith({ commit: cidString(built.commitBlock.cid) }), 'bad-field'],
    ['commit a raw-codec cid', commitWith({ commit: rawCid }), 'bad-field'],
    ['commit missing', commitWith({ commit: undefined }), 'bad-field'],
    ['rev not a TID', commitWith({ rev: 'not-a-tid' }), 'bad-field'],
    ['since a number', commitWith({ since: 5 }), 'bad-field'],
    ['blocks a string', commitWith({ blocks: 'car' }), 'bad-field'],
    ['blocks missing', commitWith({ blocks: undefined }), 'bad-field'],
    ['ops not an array', commitWith({ ops: {} }), 'bad-field'],
    ['ops missing', commitWith({ ops: undefined }), 'bad-field'],
    ['time missing', commitWith({ time: undefined }), 'bad-field'],
    ['time a number', commitWith({ time: 0 }), 'bad-field'],
    ['tooBig a string', commitWith({ tooBig: 'yes' }), 'bad-field'],
    ['rebase a number', commitWith({ rebase: 0 }), 'bad-field'],
    ['op not a map', commitWith({ ops: ['create'] }), 'bad-field'],
    ['op action unknown', opWith({ action: 'upsert' }), 'bad-field'],
    ['op path missing', opWith({ path: undefined }), 'bad-field'],
    ['op path without a slash', opWith({ path: 'app.bsky.feed.post' }), 'bad-field'],
    ['op path with an empty rkey', opWith({ path: 'app.bsky.feed.post/' }), 'bad-field'],
    ['op path with an invalid NSID', opWith({ path: 'post/3kabc' }), 'bad-field'],
    ['op path with rkey ..', opWith({ path: 'app.bsky.feed.post/..' }), 'bad-field'],
    ['op path with a bad rkey char', opWith({ path: 'app.bsky.feed.post/a b' }), 'bad-field'],
    ['create with a null cid', opWith({ cid: null }), 'bad-field'],
    ['create without cid', opWith({ cid: undefined }), 'bad-field'],
    ['delete with a cid', opWith({ action: 'delete' }), 'bad-field'],
    ['op prev a string', opWith({ prev: 'bafy' }), 'bad-field'],
    ['#identity did missing', frameOf({ op: 1, t: '#identity' }, { seq: 1, time: TIME }), 'bad-field'],
    ['#identity handle a number', frameOf({ op: 1, t: '#identity' }, { seq: 1, did: DID, time: TIME, handle: 1 }), 'bad-field'],
    ['#account active missing', frameOf({ op: 1, t: '#account' }, { seq: 1, did: DID, time: TIME }), 'bad-field'],
    ['#account status a bool', frameOf({ op: 1, t: '#account' }, { seq: 1, did: DID, time: TIME, active: false, status: true }), 'bad-field'],
    ['#sync blocks missing', frameOf({ op: 1, t: '#sync' }, { seq: 1, did: DID, rev: REV, time: TIME }), 'bad-field'],
    ['#info name missing', frameOf({ op: 1, t: '#info' }, { message: 'x' }), 'bad-field'],
    ['error frame without error', frameOf({ op: -1 }, { message: 'x' }), 'bad-field'],
  ];
  test.each(cases)('%s -> %s', (_name, bytes, reason) => {
    let caught: unknown;
    try {
      decodeFrame(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect((caught as FrameError).reason).toBe(reason);
  });
});
