import { describe, expect, test } from 'bun:test';
import { toBytes } from '@atcute/cbor';
import { decodeFrame } from '../../src/firehose/frame-decoder.ts';
import { SigningKeyCache, type KeyResolver } from '../../src/firehose/signing-keys.ts';
import { InlineVerifier } from '../../src/firehose/verifier.ts';
import { DidResolutionError } from '../../src/identity/did-resolver.ts';
import { EventProcessor, type SequencedFrame } from '../../src/pipeline/event-processor.ts';
import { IngestStats } from '../../src/pipeline/ingest-stats.ts';
import { buildCommit, DID, frameOf, k256Signer, post } from '../firehose/fixtures.ts';

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
