/**
 * The environment `bun run start` gives the runtime before it starts: the leading `NAME=value`
 * words of package.json's start script (settings read once at process start, such as the
 * allocator's, which `.env` comes too late for). The benchmark runs the ingester with them, so it
 * measures the process operators run; the Docker image sets the same (a test checks both).
 */
import { join } from 'node:path';

const ASSIGNMENT = /^([A-Z_][A-Z0-9_]*)=(\S*)$/;

export async function startScriptEnv(root: string): Promise<Record<string, string>> {
  const manifest = (await Bun.file(join(root, 'package.json')).json()) as { scripts?: { start?: string } };
  const env: Record<string, string> = {};
  for (const word of (manifest.scripts?.start ?? '').trim().split(/\s+/)) {
    const match = ASSIGNMENT.exec(word);
    if (match === null) break;
    env[match[1]!] = match[2]!;
  }
  return env;
}
