/**
 * The README's `bun run start` from the places people put a checkout: as root in a private folder
 * (a clone in /root, mode 0700), and as an ordinary user. The checkout is a copy of this one (its
 * files, node_modules hard-linked), so these test what a fresh clone would do.
 */
import { afterAll, expect, test } from 'bun:test';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { processesMatching, startAqueductProcess, type SpawnPlace } from './support/process.ts';

const ROOT = join(import.meta.dir, '..');
const START = [process.execPath, 'run', 'start'];
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A copy of the checkout at `target`: the files git knows (committed or not), node_modules linked. */
async function copyCheckout(target: string): Promise<void> {
  const listed = Bun.spawnSync(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, stdout: 'pipe' });
  expect(listed.exitCode).toBe(0);
  for (const file of listed.stdout.toString().split('\0').filter(Boolean)) {
    if (!(await Bun.file(join(ROOT, file)).exists())) continue; // deleted, not yet committed
    await mkdir(dirname(join(target, file)), { recursive: true });
    await Bun.write(join(target, file), Bun.file(join(ROOT, file)));
  }
  const linked = Bun.spawnSync(['cp', '-al', join(ROOT, 'node_modules'), join(target, 'node_modules')]);
  if (linked.exitCode !== 0) expect(Bun.spawnSync(['cp', '-a', join(ROOT, 'node_modules'), join(target, 'node_modules')]).exitCode).toBe(0);
}

/**
 * `bun run start` in `checkout` twice (the second reuses the data), then once after a kill -9.
 * DATA_DIR unset by default: the README's default, ./data in the checkout.
 */
async function startStopRestart(checkout: string, place: SpawnPlace, env: Record<string, string> = { DATA_DIR: '' }): Promise<void> {
  const first = await startAqueductProcess(env, START, 90_000, { cwd: checkout, ...place });
  expect((await fetch(`${first.url}/ready`)).status).toBe(200);
  expect(first.log()).toContain('creating the embedded PostgreSQL cluster');
  expect(await first.stop('SIGTERM')).toBe(0);

  const second = await startAqueductProcess(env, START, 90_000, { cwd: checkout, ...place });
  expect(second.log()).not.toContain('creating the embedded PostgreSQL cluster');
  expect((await fetch(`${second.url}/ready`)).status).toBe(200);
  // killed without a chance to clean up (its server and postmaster.pid stay behind)
  second.process.kill('SIGKILL');
  await second.process.exited;
  // bun run start runs the process as a child of its own: kill what is left of it
  for (const line of await processesMatching('src/main.ts')) {
    const pid = Number(line.trim().split(/\s+/)[0]);
    if (readlinkSync(`/proc/${pid}/cwd`) === checkout) process.kill(pid, 'SIGKILL');
  }

  const third = await startAqueductProcess(env, START, 90_000, { cwd: checkout, ...place });
  expect((await fetch(`${third.url}/ready`)).status).toBe(200);
  expect(await third.stop('SIGTERM')).toBe(0);
}

test.if(userInfo().uid === 0)('as root, from a clone in a folder only root may enter (/root)', async () => {
  const home = await mkdtemp(join(tmpdir(), 'aqueduct-root-home-'));
  dirs.push(home);
  await chmod(home, 0o700);
  const checkout = join(home, 'aqueduct');
  await copyCheckout(checkout);
  await startStopRestart(checkout, {});
}, 300_000);

test.if(userInfo().uid === 0)('as an ordinary user, from a clone in a path with spaces', async () => {
  const nobody = Bun.spawnSync(['id', '-u', 'nobody'], { stdout: 'pipe' });
  const uid = Number(nobody.stdout.toString().trim());
  const gid = Number(Bun.spawnSync(['id', '-g', 'nobody'], { stdout: 'pipe' }).stdout.toString().trim());
  const home = await mkdtemp(join(tmpdir(), 'aqueduct-user-home-'));
  dirs.push(home);
  await chmod(home, 0o755);
  const checkout = join(home, 'my projects', 'aqueduct');
  await copyCheckout(checkout);
  await chown(checkout, uid, gid);
  await startStopRestart(checkout, { uid, gid });
}, 300_000);

test.if(userInfo().uid === 0)('as root, with DATA_DIR elsewhere (another folder, as on another disk)', async () => {
  const home = await mkdtemp(join(tmpdir(), 'aqueduct-root-home-'));
  const disk = await mkdtemp(join(tmpdir(), 'aqueduct-other-disk-'));
  dirs.push(home, disk);
  await chmod(home, 0o700);
  const checkout = join(home, 'aqueduct');
  await copyCheckout(checkout);
  await startStopRestart(checkout, {}, { DATA_DIR: join(disk, 'aqueduct data') });
  expect(await Bun.file(join(checkout, 'data', 'pg-password')).exists()).toBe(false);
}, 300_000);
