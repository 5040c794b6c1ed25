/**
 * What the benchmarks read of the processes they run, from /proc: CPU seconds (user + system,
 * children included), peak RSS (VmHWM), and which processes are the PostgreSQL server's; the
 * fresh database a run starts from, and the clean-up that runs even when the run is interrupted.
 */
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectPostgres } from '../src/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { embeddedPostgresSettings } from '../src/db/postgres-settings.ts';
import { createLogger } from '../src/log.ts';

/** The fields of /proc/N/stat after "pid (comm) ", from state on (comm may hold spaces). */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export async function cpuSeconds(pids: number[]): Promise<number> {
  const ticks = 100; // USER_HZ
  let total = 0;
  for (const pid of pids) {
    try {
      const fields = await statFields(pid);
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / ticks;
    } catch {
      // the process ended
    }
  }
  return total;
}

/**
 * The embedded server's processes (its postmaster and the backends it started), so another
 * PostgreSQL on the box is not counted; with DATABASE_URL, every PostgreSQL process on this box.
 */
export async function postgresPids(serverPid: number | null): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const counted =
        serverPid === null
          ? (await readFile(`/proc/${entry}/comm`, 'utf8')).startsWith('postgres')
          : pid === serverPid || Number((await statFields(pid))[1]) === serverPid; // its parent
      if (counted) pids.push(pid);
    } catch {
      // gone
    }
  }
  return pids;
}

export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}


/** The database to run on, and the embedded server's process (null: DATABASE_URL's server). */
export async function freshDatabase(cleanups: Array<() => Promise<unknown>>, keepData: boolean): Promise<{ url: string; serverPid: number | null }> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const name = `aqueduct_bench_${Date.now()}`;
    const admin = connectPostgres(external, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    await admin.end();
    const url = new URL(external);
    url.pathname = `/${name}`;
    cleanups.push(async () => {
      const drop = connectPostgres(external, { max: 1, onnotice: () => {} });
      await drop.unsafe(`drop database if exists ${name} with (force)`);
      await drop.end();
    });
    return { url: url.href, serverPid: null };
  }
  const dir = await mkdtemp(join(tmpdir(), 'aqueduct-bench-'));
  await chmod(dir, 0o755);
  const server: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir: dir, log: createLogger('warn'), settings: embeddedPostgresSettings(100) }); // as `bun run start` does
  cleanups.push(async () => {
    await server.stop();
    if (!keepData) await rm(dir, { recursive: true, force: true });
  });
  return { url: server.url, serverPid: server.pid };
}


/** Resolves with the process's HTTP URL (Aqueduct's banner) from its log; echoes warnings and errors. */
export function followLog(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Promise((resolve) => {
    void (async () => {
      const decoder = new TextDecoder();
      let pending = '';
      for await (const chunk of stream) {
        pending += decoder.decode(chunk, { stream: true });
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const url = /Aqueduct is serving url=(\S+)/.exec(line)?.[1];
          if (url) resolve(url);
          if (/ (WARN|ERROR) /.test(line)) console.error(line);
        }
      }
    })();
  });
}


/**
 * The run's clean-ups (last pushed, first run; a failing one does not stop the rest), run by
 * `cleanUp()` or by SIGINT/SIGTERM, which then exit 130.
 */
export function cleanUpOnSignal(): { cleanups: Array<() => Promise<unknown>>; cleanUp: () => Promise<void> } {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void cleanUp().finally(() => process.exit(130));
    });
  }
  return { cleanups, cleanUp };
}
