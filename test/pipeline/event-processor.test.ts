import { describe, expect, test } from 'bun:test';
import * as CBOR from '@atcute/cbor';
import { toBytes } from '@atcute/cbor';
import { decodeFrame } from '../../src/firehose/frame-decoder.ts';
import { SigningKeyCache, type KeyResolver } from '../../src/firehose/signing-keys.ts';
import { InlineVerifier } from '../../src/firehose/verifier.ts';
import { DidResolutionError } from '../../src/identity/did-resolver.ts';
import { EventProcessor, type SequencedFrame } from '../../src/pipeline/event-processor.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { buildCommit, DID, frameOf, k256Signer, post } from '../firehose/fixtures.ts';
import { simulatorRun } from '../firehose/sim-frames.ts';

const signer = k256Signer(5);
const attacker = k256Signer(6);

function processorWith(resolve: KeyResolver['resolve'] = async () => ({ signingKey: signer.multikey })) {
  const stats = new IngestStats();
  const keys = new SigningKeyCache({ resolve, invalidate: () => {} });
  return { stats, processor: new EventProcessor({ verifier: new InlineVerifier(keys), stats }) };
}

const frame = (bytes: Uint8Array) => decodeFrame(bytes) as SequencedFrame;
const commit = (seq: number, rev: string, options: Parameters<typeof buildCommit>[0] = {}) => frame(buildCommit({ seq, rev, signer, ...options }).frame);

describe('EventProcessor', () => {
  test('a verified commit becomes rows; an unknown collection is counted and dropped', async () => {
    const { processor, stats } = processorWith();
    const event = await processor.process(
      commit(1, '3kaaaaaaaaa22', {
        records: [
          { collection: 'app.bsky.feed.post', rkey: '3kaaaaaaaaa22', record: post('hi') },
          { collection: 'com.example.thing', rkey: 'x', record: { $type: 'com.example.thing' } },
        ],
      }),
    );
    expect(event.kind).toBe('commit');
    if (event.kind !== 'commit') return;
    expect(event.ops.map((op) => [op.action, op.table, op.rkey])).toEqual([['create', 'posts', '3kaaaaaaaaa22']]);
    expect(Object.fromEntries(stats.unknownCollections)).toEqual({ 'com.example.thing': 1 });
  });

  test('an invalid record is counted and turns into a delete of its path', async () => {
    const { processor, stats } = processorWith();
    const event = await processor.process(
      commit(1, '3kaaaaaaaaa22', { records: [{ collection: 'app.bsky.feed.like', rkey: '3kaaaaaaaaa22', record: { $type: 'app.bsky.feed.like', createdAt: 'x' } }] }),
    );
    expect(event.kind === 'commit' && event.ops.map((op) => [op.action, op.row])).toEqual([['delete', null]]);
    expect(Object.fromEntries(stats.invalidByCollection)).toEqual({ 'app.bsky.feed.like': 1 });
  });

  test('a forged commit is rejected and cannot fence off the real ones (revision guard)', async () => {
    const { processor, stats } = processorWith();
    expect((await processor.process(commit(1, '3kbbbbbbbbb22'))).kind).toBe('commit');
    expect((await processor.process(commit(2, '3kzzzzzzzzz22', { signer: attacker }))).kind).toBe('skipped');
    expect((await processor.process(commit(3, '3kccccccccc22'))).kind).toBe('commit');
    expect((await processor.process(commit(4, '3kbbbbbbbbb22'))).kind).toBe('skipped');
    expect(Object.fromEntries(stats.rejectedByReason)).toEqual({ 'bad-signature': 1, 'stale-rev': 1 });

    const sync = frame(frameOf({ op: 1, t: '#sync' }, { seq: 5, did: DID, blocks: toBytes(new Uint8Array()), rev: '3kaaaaaaaaa22', time: '2024-05-01T12:00:00.000Z' }));
    expect((await processor.process(sync)).kind).toBe('sync');
    expect((await processor.process(commit(6, '3kbbbbbbbbb22'))).kind).toBe('commit');
  });

  test('a key that cannot be fetched now is indexed and counted unverified; one that cannot exist is rejected', async () => {
    const down = processorWith(() => Promise.reject(new DidResolutionError('timeout', DID, 'timed out')));
    expect((await down.processor.process(commit(1, '3kaaaaaaaaa22'))).kind).toBe('commit');
    expect(down.stats.unverifiedCommits).toBe(1);

    const gone = processorWith(() => Promise.reject(new DidResolutionError('tombstoned', DID, 'gone', { status: 410 })));
    expect((await gone.processor.process(commit(1, '3kaaaaaaaaa22'))).kind).toBe('skipped');
    expect(Object.fromEntries(gone.stats.rejectedByReason)).toEqual({ 'key-invalid': 1 });
  });

  test('a key prefetch is asked once per repo, and only for commits', async () => {
    const asked: string[] = [];
    const verifier = new InlineVerifier(new SigningKeyCache({ resolve: async () => ({ signingKey: signer.multikey }), invalidate: () => {} }));
    verifier.prefetch = (did) => void asked.push(did);
    const processor = new EventProcessor({ verifier, stats: new IngestStats() });
    const other = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa';
    processor.prefetch(commit(1, '3kaaaaaaaaa22'));
    processor.prefetch(commit(2, '3kaaaaaaaaa23'));
    processor.prefetch(commit(3, '3kaaaaaaaaa22', { did: other }));
    processor.prefetch(frame(frameOf({ op: 1, t: '#account' }, { seq: 4, did: 'did:web:example.com', time: '2024-05-01T12:00:00.000Z', active: true })));
    expect(asked).toEqual([DID, other]);
  });

  test('account events map to statuses', async () => {
    const { processor } = processorWith();
    const account = (seq: number, body: Record<string, unknown>) =>
      frame(frameOf({ op: 1, t: '#account' }, { seq, did: DID, time: '2024-05-01T12:00:00.000Z', ...body }));
    expect(await processor.process(account(1, { active: true }))).toMatchObject({ kind: 'account', status: null });
    expect(await processor.process(account(2, { active: false, status: 'takendown' }))).toMatchObject({ status: 'takendown' });
    expect(await processor.process(account(3, { active: false, status: 'something-new' }))).toMatchObject({ status: 'deactivated' });
  });
});

describe('EventProcessor: the Sync 1.1 proof', () => {
  // simulator commits carry prevData and every update's and delete's prev, like a current PDS
  const { network, frames } = simulatorRun({ seed: 'proof', accounts: 20, commits: 400 });
  const keys = async (did: string) => ({ signingKey: network.directory.byDid(did)!.key.didKey });
  const split = (bytes: Uint8Array) => {
    const [header, rest] = CBOR.decodeFirst(bytes);
    return { header, body: CBOR.decodeFirst(rest)[0] as Record<string, unknown> };
  };
  const withOps = (bytes: Uint8Array, change: (body: Record<string, unknown>) => void) => {
    const { header, body } = split(bytes);
    change(body);
    return frameOf(header, body);
  };
  /** a commit with an update or a delete among its ops */
  const rich = frames.find((bytes) => {
    const ops = split(bytes).body.ops as { action: string }[] | undefined;
    return ops !== undefined && ops.some((op) => op.action !== 'create');
  })!;

  test('every simulator commit proves: ops and tree agree, none unproven', async () => {
    const { processor, stats } = processorWith(keys);
    for (const bytes of frames) await processor.process(frame(bytes));
    expect(Object.fromEntries(stats.rejectedByReason)).toEqual({});
    expect(stats.unprovenCommits).toBe(0);
  });

  test.each([
    ['an op left out', (body: Record<string, unknown>) => (body.ops as unknown[]).pop(), 'proof-prev-data-mismatch'],
    ['another prevData', (body: Record<string, unknown>) => (body.prevData = body.commit), 'proof-prev-data-mismatch'],
    ['a delete made up', (body: Record<string, unknown>) => (body.ops as unknown[]).push({ action: 'delete', path: 'app.bsky.feed.like/3kzzzzzzzzz22', cid: null, prev: body.commit }), 'proof-prev-data-mismatch'],
  ])('%s: rejected, and nothing is indexed', async (_name, change, reason) => {
    const { processor, stats } = processorWith(keys);
    const event = await processor.process(frame(withOps(rich, change)));
    expect(event.kind).toBe('skipped');
    expect(Object.fromEntries(stats.rejectedByReason)).toEqual({ [reason]: 1 });
  });

  test('a commit that does not follow the one before it, and a tooBig one, mark the repo for a resync', async () => {
    const byRepo = new Map<string, Uint8Array[]>();
    for (const bytes of frames) {
      const repo = split(bytes).body.repo as string | undefined;
      if (repo) byRepo.set(repo, [...(byRepo.get(repo) ?? []), bytes]);
    }
    const [did, chain] = [...byRepo].find(([, commits]) => commits.length >= 4)!;
    const { processor } = processorWith(keys);
    expect((await processor.process(frame(chain[0]!))).resync).toBeUndefined();
    expect((await processor.process(frame(chain[1]!))).resync).toBeUndefined();
    // chain[2] is missed
    expect((await processor.process(frame(chain[3]!))).resync).toEqual({ did, reason: 'rev-gap' });
    const tooBig = await processor.process(frame(withOps(chain[3]!, (body) => ((body.tooBig = true), (body.seq = 1_000_000)))));
    expect(tooBig).toMatchObject({ kind: 'skipped', resync: { did, reason: 'too-big' } });
  });

  test('a commit without prevData (before Sync 1.1) is checked forwards and counted unproven', async () => {
    const { processor, stats } = processorWith(keys);
    const event = await processor.process(frame(withOps(rich, (body) => delete body.prevData)));
    expect(event.kind).toBe('commit');
    expect(stats.unprovenCommits).toBe(1);
  });
});
