/**
 * The read API under load (`bun run bench -- --scenario api-load [--records N] [--clients N]`):
 * CLIENTS concurrent clients on the heaviest views while the live firehose runs.
 *
 * The network and Aqueduct are the backfill scenario's (bench/backfill.ts: --records preloaded
 * records, default 200,000, on 20 hosts, 450 live commits/s), backfilled first so the views have
 * something to show. Then, for LOAD_SECONDS, every client asks one request after another, each a
 * random pick of getPostThread (the posts with the most replies), getAuthorFeed and getFollowers
 * (the accounts with the most followers), getProfile, getLikes and searchPosts. RATE_LIMIT is off
 * (every client is this machine). Reported: requests, by status, p50/p99 latency overall and per
 * method, and the live firehose's lag meanwhile (commit time minus release time). The clients run
 * in this process, on the same 2 cores as Aqueduct, PostgreSQL and the simulator.
 */
import { cpus } from 'node:os';
import { percentile } from '../src/lib/percentile.ts';
import { backfilled, liveLagMs, startBackfillingNetwork } from './backfill.ts';
import { cpuSeconds, postgresPids, round } from './proc.ts';

const LOAD_SECONDS = 30;

export async function runApiLoadBench(cleanups: Array<() => Promise<unknown>>, options: { records: number; clients: number; keepData: boolean }) {
  const network = await startBackfillingNetwork(cleanups, { records: options.records, keepData: options.keepData, env: { RATE_LIMIT: '0' } });
  const { sql, url, aqueduct, serverPid, pacingStartedAt } = network;
  await backfilled(url, aqueduct);

  const threads = (await sql<{ uri: string }[]>`
    select 'at://' || a.did || '/app.bsky.feed.post/' || p.rkey as uri from post_counts c
    join posts p on p.author_id = c.actor_id and p.rkey = c.rkey join actors a on a.id = p.author_id
    order by c.reply_count desc, c.like_count desc limit 200`).map((row) => row.uri);
  const actors = (await sql<{ did: string }[]>`
    select a.did from actor_counts c join actors a on a.id = c.actor_id order by c.followers_count desc limit 200`).map((row) => row.did);
  if (threads.length === 0 || actors.length === 0) throw new Error('nothing was backfilled to ask for');
  const words = ['the', 'post', 'today', 'hello', 'love', 'new'];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
  const requests: Array<[string, () => string]> = [
    ['getPostThread', () => `app.bsky.feed.getPostThread?uri=${encodeURIComponent(pick(threads))}&depth=6`],
    ['getAuthorFeed', () => `app.bsky.feed.getAuthorFeed?actor=${pick(actors)}&limit=50`],
    ['getFollowers', () => `app.bsky.graph.getFollowers?actor=${pick(actors)}&limit=100`],
    ['getProfile', () => `app.bsky.actor.getProfile?actor=${pick(actors)}`],
    ['getLikes', () => `app.bsky.feed.getLikes?uri=${encodeURIComponent(pick(threads))}&limit=100`],
    ['searchPosts', () => `app.bsky.feed.searchPosts?q=${pick(words)}&limit=25`],
  ];

  const latencies = new Map<string, number[]>(requests.map(([name]) => [name, []]));
  const statuses = new Map<number, number>();
  const lags: number[] = [];
  const cpuStart = { aqueduct: await cpuSeconds([aqueduct.pid]), postgres: await cpuSeconds(await postgresPids(serverPid)) };
  const until = performance.now() + LOAD_SECONDS * 1000;
  const lagSampler = (async () => {
    while (performance.now() < until) {
      const lag = await liveLagMs(sql, pacingStartedAt);
      if (lag !== null) lags.push(lag);
      await Bun.sleep(250);
    }
  })();
  const client = async () => {
    while (performance.now() < until) {
      const [name, path] = pick(requests);
      const sent = performance.now();
      const status = await fetch(`${url}/xrpc/${path()}`).then(
        async (response) => (await response.arrayBuffer(), response.status),
        () => 0,
      );
      latencies.get(name)!.push(performance.now() - sent);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all([lagSampler, ...Array.from({ length: options.clients }, client)]);
  const cpuEnd = { aqueduct: await cpuSeconds([aqueduct.pid]), postgres: await cpuSeconds(await postgresPids(serverPid)) };

  const all = [...latencies.values()].flat();
  const serverErrors = [...statuses].filter(([status]) => status >= 500 || status === 0).reduce((n, [, count]) => n + count, 0);
  return {
    scenario: 'api-load',
    description: `${options.clients} clients for ${LOAD_SECONDS} s on the heaviest views, beside a live firehose of 450 commits/s, after backfilling ${options.records} records`,
    requests: all.length,
    requestsPerSec: Math.round(all.length / LOAD_SECONDS),
    statuses: Object.fromEntries(statuses),
    serverErrors,
    p50Ms: round(percentile(all, 0.5), 1),
    p99Ms: round(percentile(all, 0.99), 1),
    byMethod: Object.fromEntries([...latencies].map(([name, ms]) => [name, { n: ms.length, p50Ms: round(percentile(ms, 0.5), 1), p99Ms: round(percentile(ms, 0.99), 1) }])),
    liveLagP50Ms: Math.round(percentile(lags, 0.5)),
    liveLagP99Ms: Math.round(percentile(lags, 0.99)),
    cpuCoresAqueduct: round((cpuEnd.aqueduct - cpuStart.aqueduct) / LOAD_SECONDS, 2),
    cpuCoresPostgres: round((cpuEnd.postgres - cpuStart.postgres) / LOAD_SECONDS, 2),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', runtime: `bun ${Bun.version}`, postgres: (await sql<{ v: string }[]>`select current_setting('server_version') as v`)[0]?.v ?? 'unknown' },
    date: new Date().toISOString(),
  };
}
