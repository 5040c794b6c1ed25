/**
 * Runs Aqueduct as a real child process (`bun src/main.ts`, or a compiled binary) and follows its
 * log until it says where it serves.
 */
import type { Subprocess } from 'bun';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface RunningAqueduct {
  readonly process: Subprocess<'ignore', 'pipe', 'pipe'>;
  readonly url: string;
  /** Everything written to stderr so far. */
  log(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

const ROOT = join(import.meta.dir, '..', '..');

/** The environment without anything that would point a child at the developer's own setup. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key === 'DATABASE_URL' || key === 'TEST_DATABASE_URL' || key.startsWith('AQUEDUCT_')) continue;
    env[key] = value;
  }
  // the simulator and test servers listen on loopback, which strangers' URLs may not name otherwise
  return { ...env, LOG_LEVEL: 'info', FIREHOSE_ENABLED: 'false', ALLOW_PRIVATE_HOSTS: '127.0.0.1,localhost', ...extra };
}

/** Where and as whom the process runs (default: the checkout, as the test's own user). */
export interface SpawnPlace {
  readonly cwd?: string;
  readonly uid?: number;
  readonly gid?: number;
}

export function spawnAqueduct(env: Record<string, string>, command: string[] = [process.execPath, join(ROOT, 'src/main.ts')], place: SpawnPlace = {}) {
  return Bun.spawn(command, { cwd: ROOT, ...place, env: cleanEnv(env), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
}

/** Starts Aqueduct with PORT=0 and waits (up to `timeoutMs`) for its "serving" line. */
export async function startAqueductProcess(env: Record<string, string>, command?: string[], timeoutMs = 60_000, place: SpawnPlace = {}): Promise<RunningAqueduct> {
  const child = spawnAqueduct({ PORT: '0', ...env }, command, place);
  let text = '';
  const drain = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  void (async () => {
    for await (const _ of child.stdout) {
      // keep the pipe flowing
    }
  })();
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url && Date.now() < deadline && child.exitCode === null) {
    url = /Aqueduct is serving url=(\S+)/.exec(text)?.[1];
    if (!url) await Bun.sleep(20);
  }
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`Aqueduct did not start (exit ${child.exitCode}):\n${text}`);
  }
  return {
    process: child,
    url,
    log: () => text,
    stop: async (signal = 'SIGTERM') => {
      child.kill(signal);
      const code = await child.exited;
      await drain;
      return code;
    },
  };
}

/**
 * Processes whose command line mentions `needle` (e.g. a data directory), or whose working
 * directory is under it (the embedded server as root runs in its cluster folder, `-D /proc/self/cwd`).
 */
export async function processesMatching(needle: string): Promise<string[]> {
  const result = Bun.spawnSync(['ps', '-eo', 'pid,args'], { stdout: 'pipe' });
  return result.stdout
    .toString()
    .split('\n')
    .filter((line) => !line.includes('ps -eo') && (line.includes(needle) || workingDirectoryOf(line).startsWith(needle)));
}

function workingDirectoryOf(psLine: string): string {
  const pid = psLine.trim().split(/\s+/)[0];
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return '';
  }
}
