/**
 * A backfill in a process of its own, for kill-resume.test.ts to kill: the harness's Backfill over
 * BACKFILL_DATABASE_URL (migrated by the test) and the simulator at BACKFILL_SIM_URL, asked for
 * every repo of the network, running until it is killed. Says "requested" on stdout once the
 * request is queued.
 */
import { Database } from '../../src/db/database.ts';
import { startTestBackfill } from './harness.ts';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`kill-child: ${name} is not set`);
  return value;
};

const db = new Database({ url: env('BACKFILL_DATABASE_URL'), poolSize: 4 });
const run = await startTestBackfill({
  db,
  simUrl: env('BACKFILL_SIM_URL'),
  allowPrivateHosts: env('BACKFILL_ALLOW').split(','),
  hostRate: Number(env('BACKFILL_HOST_RATE')),
  concurrency: 4,
});
await run.backfill.request({ all: true });
console.log('requested');
// until killed
setInterval(() => undefined, 1 << 30);
