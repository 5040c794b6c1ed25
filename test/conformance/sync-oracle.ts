/**
 * `@atproto/sync` as the oracle of our firehose reading: the same frames of a real PDS read two
 * ways, into one shape, one line per event (and one per op of a commit):
 *   - ours: the raw frames of `subscribeRepos` from cursor 0, decoded by src/firehose
 *     (frame-decoder, commit-reader) and each commit's signature checked by our signing-key cache
 *     against the PLC directory's documents;
 *   - the reference's: `@atproto/sync`'s `Firehose` (authenticated commits: it checks the
 *     signature and the records' inclusion in the signed tree), from cursor 0 too.
 * A commit that fails verification is a `rejected` line on our side, an `onError` on its side.
 */
import { IdResolver } from '@atproto/identity';
import { Firehose, type Event } from '@atproto/sync';
import { readCommit } from '../../src/firehose/commit-reader.ts';
import { decodeFrame } from '../../src/firehose/frame-decoder.ts';
import { SigningKeyCache } from '../../src/firehose/signing-keys.ts';
import { DidResolver } from '../../src/identity/did-resolver.ts';

export interface OracleRun {
  readonly lines: string[];
  readonly lastSeq: number;
}

const SUBSCRIBE = '/xrpc/com.atproto.sync.subscribeRepos';

/** Every frame the PDS holds, from cursor 0: read until it has been quiet for `quietMs`. */
export async function rawFrames(pds: string, quietMs = 1500): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const socket = new WebSocket(`${pds.replace(/^http/, 'ws')}${SUBSCRIBE}?cursor=0`);
  socket.binaryType = 'arraybuffer';
  let last = Date.now();
  socket.onmessage = (event) => {
    frames.push(new Uint8Array(event.data as ArrayBuffer));
    last = Date.now();
  };
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error('subscribeRepos did not open'));
  });
  while (Date.now() - last < quietMs) await Bun.sleep(100);
  socket.close();
  return frames;
}

/** Our reading of the frames. */
export async function ourReading(frames: readonly Uint8Array[], plcUrl: string): Promise<OracleRun> {
  const keys = new SigningKeyCache(new DidResolver({ plcUrl }));
  const lines: string[] = [];
  let lastSeq = 0;
  for (const bytes of frames) {
    const frame = decodeFrame(bytes);
    if (!('seq' in frame) || frame.seq === undefined) continue;
    lastSeq = Math.max(lastSeq, frame.seq);
    switch (frame.kind) {
      case 'commit': {
        const { commit } = readCommit(frame);
        const verdict = await keys.verifyCommit(frame.repo, commit.unsignedBytes, commit.sig);
        if (verdict !== 'ok') {
          lines.push(`${frame.seq} commit ${frame.repo} rejected`);
          break;
        }
        for (const op of frame.ops) lines.push(`${frame.seq} ${op.action} at://${frame.repo}/${op.collection}/${op.rkey} ${op.cid ?? '-'} rev ${frame.rev}`);
        break;
      }
      case 'identity':
        lines.push(`${frame.seq} identity ${frame.did}`);
        break;
      case 'account':
        lines.push(`${frame.seq} account ${frame.did} active=${frame.active} status=${frame.status ?? '-'}`);
        break;
      case 'sync':
        lines.push(`${frame.seq} sync ${frame.did} rev ${frame.rev}`);
        break;
    }
  }
  return { lines, lastSeq };
}

/** `@atproto/sync`'s reading of the same firehose, until it has passed `lastSeq`. */
export async function oracleReading(pds: string, plcUrl: string, lastSeq: number, timeoutMs = 60_000): Promise<OracleRun & { errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  let seen = 0;
  const firehose = new Firehose({
    idResolver: new IdResolver({ plcUrl, fetch: globalThis.fetch }),
    service: pds.replace(/^http/, 'ws'),
    getCursor: () => 0,
    handleEvent: (event: Event) => {
      seen = Math.max(seen, event.seq);
      switch (event.event) {
        case 'create':
        case 'update':
          lines.push(`${event.seq} ${event.event} ${event.uri.toString()} ${event.cid.toString()} rev ${event.rev}`);
          break;
        case 'delete':
          lines.push(`${event.seq} delete ${event.uri.toString()} - rev ${event.rev}`);
          break;
        case 'identity':
          lines.push(`${event.seq} identity ${event.did}`);
          break;
        case 'account':
          lines.push(`${event.seq} account ${event.did} active=${event.active} status=${event.status ?? '-'}`);
          break;
        case 'sync':
          lines.push(`${event.seq} sync ${event.did} rev ${event.rev}`);
          break;
      }
    },
    onError: (error: Error) => {
      const event = (error as Error & { event?: { seq?: number; repo?: string } }).event;
      if (event?.seq !== undefined) {
        seen = Math.max(seen, event.seq);
        errors.push(`${event.seq} commit ${event.repo} rejected: ${error.message}`);
      } else errors.push(error.message);
    },
  });
  const running = firehose.start();
  const deadline = Date.now() + timeoutMs;
  while (seen < lastSeq && Date.now() < deadline) await Bun.sleep(100);
  await firehose.destroy();
  await running.catch(() => {});
  return { lines, lastSeq: seen, errors };
}
