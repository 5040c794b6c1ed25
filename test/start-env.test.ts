/**
 * What `bun run start` sets before the runtime starts (bench/start-env.ts): the Docker image sets
 * the same, and this Bun's allocator reads it (an option it did not know would be ignored without
 * a word, and the setting would quietly do nothing).
 */
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { startScriptEnv } from '../bench/start-env.ts';

const ROOT = join(import.meta.dir, '..');

/** `ENV NAME=value ...` instructions of a Dockerfile, continuation lines joined. */
const dockerfileEnv = (text: string): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const [instruction, ...words] = line.trim().split(/\s+/);
    if (instruction !== 'ENV') continue;
    for (const word of words) {
      const at = word.indexOf('=');
      if (at > 0) env[word.slice(0, at)] = word.slice(at + 1);
    }
  }
  return env;
};

test('the start script turns off the allocator purging holes, and the Docker image does the same', async () => {
  const env = await startScriptEnv(ROOT);
  expect(env).toEqual({ MIMALLOC_PURGE_HOLES: '0' });
  const image = dockerfileEnv(await Bun.file(join(ROOT, 'Dockerfile')).text());
  for (const [name, value] of Object.entries(env)) expect(image[name]).toBe(value);
});

test("this Bun's allocator reads MIMALLOC_PURGE_HOLES", async () => {
  const { MIMALLOC_PURGE_HOLES: _unset, ...unset } = process.env;
  const optionShown = (env: Record<string, string | undefined>): string => {
    const run = Bun.spawnSync([process.execPath, '-e', ''], { env: { ...env, MIMALLOC_VERBOSE: '1' }, stderr: 'pipe' });
    return /option 'purge_holes': (\d+)/.exec(run.stderr.toString())?.[1] ?? 'not shown';
  };
  expect(optionShown(unset)).toBe('1');
  expect(optionShown({ ...unset, ...(await startScriptEnv(ROOT)) })).toBe('0');
});
