// micro-repo-stream: records per second of the streamed getRepo reader (src/firehose/repo-stream.ts).
// Run: bun bench/micro-repo-stream.ts   (single thread; numbers are for this machine)
// One repo of 10,000 records (the simulator's, exported as getRepo does, ~1 MB), delivered as a
// ReadableStream of 64 KiB chunks; each line reads it whole (the body, the commit, every record in
// chunks of 500, each decoded with value()) 30 times after 5 warm-up rounds, in memory and with
// memoryBytes 0 (every block spilled to a file in the temp folder and read back by position).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tid } from '@atcute/tid';

import { readRecordBlock } from '../src/firehose/commit-reader.ts';
import { readRepoSnapshot } from '../src/firehose/repo-snapshot.ts';
import { readRepoStream } from '../src/firehose/repo-stream.ts';
import { SimRepo, type RepoOp } from '../src/sim/repo.ts';

const RECORDS = 10_000;
const ROUNDS = 30;
const WARMUP = 5;
const CHUNK = 64 * 1024;
const EPOCH_US = Date.UTC(2024, 0, 1) * 1000;
const COLLECTIONS = ['app.bsky.feed.like', 'app.bsky.feed.post', 'app.bsky.graph.follow', 'app.bsky.feed.repost'];

const repo = new SimRepo('did:plc:benchbenchbenchbenchbench');
const ops: RepoOp[] = [];
for (let i = 0; i < RECORDS; i++) {
  const collection = COLLECTIONS[i % COLLECTIONS.length]!;
  const record = { $type: collection, createdAt: new Date(EPOCH_US / 1000 + i * 1000).toISOString(), subject: { uri: `at://did:plc:x/app.bsky.feed.post/${i}`, cid: 'bafyreib' }, n: i };
  ops.push({ action: 'create', collection, rkey: tid(EPOCH_US + i * 1_000_000, i % 32), record });
}
repo.write(ops, tid(EPOCH_US + RECORDS * 1_000_000, 0), { sign: () => new Uint8Array(64) }, true);
const car = repo.exportCar()!;

const bodyOf = (bytes: Uint8Array): ReadableStream<Uint8Array> => {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + CHUNK));
      at += CHUNK;
    },
  });
};

const spillDir = mkdtempSync(join(tmpdir(), 'micro-repo-stream-'));

const streamed = async (memoryBytes: number | undefined, decode: boolean): Promise<number> => {
  const streamedRepo = await readRepoStream(repo.did, bodyOf(car), { spillDir, maxBytes: 1 << 30, ...(memoryBytes === undefined ? {} : { memoryBytes }) });
  let count = 0;
  for await (const batch of streamedRepo.records(500)) {
    for (const record of batch) {
      if (decode) record.value();
      count++;
    }
  }
  await streamedRepo.close();
  return count;
};

const snapshot = async (decode: boolean): Promise<number> => {
  const { blocks, leaves } = readRepoSnapshot(repo.did, new Uint8Array(await new Response(bodyOf(car)).arrayBuffer()));
  if (decode) for (const leaf of leaves) readRecordBlock(blocks, leaf.cid);
  return leaves.length;
};

const line = async (name: string, run: () => Promise<number>): Promise<void> => {
  for (let i = 0; i < WARMUP; i++) await run();
  const started = performance.now();
  let records = 0;
  for (let i = 0; i < ROUNDS; i++) records += await run();
  const seconds = (performance.now() - started) / 1000;
  console.log(`${name.padEnd(44)} ${Math.round(records / seconds).toLocaleString('en-US').padStart(10)} records/s  ${((seconds / ROUNDS) * 1000).toFixed(1).padStart(6)} ms a repo`);
};

console.log(`${RECORDS} records, CAR ${car.length.toLocaleString('en-US')} bytes, ${CHUNK / 1024} KiB chunks`);
try {
  await line('readRepoSnapshot + readRecordBlock (reference)', () => snapshot(true));
  await line('readRepoStream in memory, with value()', () => streamed(undefined, true));
  await line('readRepoStream in memory, paths and CIDs only', () => streamed(undefined, false));
  await line('readRepoStream spilled, with value()', () => streamed(0, true));
  await line('readRepoStream spilled, paths and CIDs only', () => streamed(0, false));
} finally {
  rmSync(spillDir, { recursive: true, force: true });
}
