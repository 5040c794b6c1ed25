/**
 * `bun run bench:compare -- --base <rev> [--scenario <name>] [--rounds N] [--commits N]
 * [--base-env KEY=VALUE ...] [--out DIR]`: the same scenario run alternately on two versions.
 *
 * A is `<rev>`, checked out in a temporary git worktree (it shares this checkout's node_modules
 * when its bun.lock is the same, else it gets its own `bun install --frozen-lockfile`), with the
 * `--base-env` variables added to its environment (so `--base HEAD --base-env MAX_CONCURRENT_OPS=80`
 * compares a setting); B is this checkout as it is on disk. Round r runs A then B when r is odd,
 * B then A when it is even, one `bun run bench` at a time: a box whose speed drifts within the
 * hour (ours did by up to 30%) then favours neither side. Each run's JSON is kept in `--out`
 * (default: a temporary folder, printed). Prints one line per run and, per side, the mean
 * commits/s and CPU per commit, and in how many rounds B was faster. Exits non-zero if a run
 * fails (its output is printed); the worktree is removed in every case.
 */
import { readCommandLine } from '../src/lib/command-line.ts';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface RunResult {
  readonly commitsPerSec: number;
  readonly cpuCoresIngester: number;
  readonly cpuCoresPostgres: number;
  readonly cpuCoresSimulator: number;
  readonly peakRssMb: number;
}

type Side = 'A' | 'B';

const ROOT = join(import.meta.dir, '..');

const USAGE = 'usage: bun run bench:compare -- --base REV [--scenario NAME] [--rounds N] [--commits N] [--base-env KEY=VALUE ...] [--out DIR]';
const values = readCommandLine(USAGE, {
  base: { type: 'string' },
  scenario: { type: 'string', default: 'flood' },
  rounds: { type: 'string', default: '2' },
  commits: { type: 'string' },
  'base-env': { type: 'string', multiple: true, default: [] },
  out: { type: 'string' },
});

const fail = (message: string): never => {
  console.error(message);
  process.exit(2);
};
const base = values.base ?? fail('--base <rev> is required: the version to compare this checkout with');
const rounds = Number(values.rounds);
if (!Number.isSafeInteger(rounds) || rounds < 1) fail(`--rounds expects a positive whole number, got ${values.rounds}`);
const baseEnv: Record<string, string> = {};
for (const pair of values['base-env']) {
  const at = pair.indexOf('=');
  if (at < 1) fail(`--base-env expects KEY=VALUE, got ${pair}`);
  baseEnv[pair.slice(0, at)] = pair.slice(at + 1);
}

const git = (args: string[], cwd = ROOT) => Bun.spawnSync(['git', ...args], { cwd, stdout: 'pipe', stderr: 'pipe' });
const revision = git(['rev-parse', '--verify', `${base}^{commit}`]);
if (revision.exitCode !== 0) fail(`--base ${base}: not a commit of this repository`);
const baseCommit = revision.stdout.toString().trim();

const work = await mkdtemp(join(tmpdir(), 'aqueduct-compare-'));
const worktree = join(work, 'base');
const out = values.out ?? join(work, 'runs');
await mkdir(out, { recursive: true });
const removeWorktree = async (): Promise<void> => {
  git(['worktree', 'remove', '--force', worktree]);
  git(['worktree', 'prune']);
  await rm(worktree, { recursive: true, force: true });
  if (!values.out) return;
  await rm(work, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void removeWorktree().finally(() => process.exit(130));
  });
}

try {
  const added = git(['worktree', 'add', '--detach', worktree, baseCommit]);
  if (added.exitCode !== 0) throw new Error(`git worktree add failed: ${added.stderr.toString().trim()}`);
  if (git(['diff', '--quiet', baseCommit, '--', 'bun.lock']).exitCode === 0) {
    await symlink(join(ROOT, 'node_modules'), join(worktree, 'node_modules'));
  } else {
    const install = Bun.spawnSync([process.execPath, 'install', '--frozen-lockfile'], { cwd: worktree, stdout: 'pipe', stderr: 'pipe' });
    if (install.exitCode !== 0) throw new Error(`bun install in the ${base} worktree failed:\n${install.stderr.toString()}`);
  }

  const named = baseCommit.startsWith(base) ? base : `${base} (${baseCommit.slice(0, 7)})`;
  console.log(`A: ${named}${values['base-env'].length ? ` with ${values['base-env'].join(' ')}` : ''}; B: this checkout`);
  console.log(`scenario ${values.scenario}${values.commits ? `, ${values.commits} commits` : ''}, ${rounds} round${rounds === 1 ? '' : 's'}; runs in ${out}`);
  const results: Record<Side, RunResult[]> = { A: [], B: [] };
  for (let round = 1; round <= rounds; round++) {
    const order: Side[] = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
    for (const side of order) {
      const result = await runBench(side, round);
      results[side].push(result);
      console.log(`round ${round} ${side}: ${result.commitsPerSec} commits/s, ingester ${result.cpuCoresIngester}, PostgreSQL ${result.cpuCoresPostgres}, simulator ${result.cpuCoresSimulator} cores, peak RSS ${result.peakRssMb} MB`);
    }
  }
  printSummary(results);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await removeWorktree();
}

async function runBench(side: Side, round: number): Promise<RunResult> {
  const json = join(out, `${values.scenario}-${side}-${round}.json`);
  const args = ['run', 'bench/run.ts', '--scenario', values.scenario!, '--json', json];
  if (values.commits) args.push('--commits', values.commits);
  const env = side === 'A' ? { ...process.env, ...baseEnv } : process.env;
  const run = Bun.spawn([process.execPath, ...args], { cwd: side === 'A' ? worktree : ROOT, env, stdout: 'pipe', stderr: 'pipe' });
  const [code, stdout, stderr] = await Promise.all([run.exited, new Response(run.stdout).text(), new Response(run.stderr).text()]);
  if (code !== 0) throw new Error(`round ${round} ${side}: bench exited with ${code}\n${stdout}${stderr}`);
  return (await Bun.file(json).json()) as RunResult;
}

function printSummary(results: Record<Side, RunResult[]>): void {
  const mean = (side: Side, pick: (result: RunResult) => number): number =>
    results[side].reduce((sum, result) => sum + pick(result), 0) / results[side].length;
  const perCommitUs = (result: RunResult, cores: number): number => (cores / result.commitsPerSec) * 1e6;
  for (const side of ['A', 'B'] as const) {
    const rate = mean(side, (result) => result.commitsPerSec);
    const ingester = mean(side, (result) => perCommitUs(result, result.cpuCoresIngester));
    const postgres = mean(side, (result) => perCommitUs(result, result.cpuCoresPostgres));
    console.log(
      `${side}: mean ${Math.round(rate)} commits/s, ingester ${ingester.toFixed(1)} us and PostgreSQL ${postgres.toFixed(1)} us per commit, peak RSS ${Math.round(mean(side, (result) => result.peakRssMb))} MB`,
    );
  }
  const change = (mean('B', (result) => result.commitsPerSec) / mean('A', (result) => result.commitsPerSec) - 1) * 100;
  const faster = results.B.filter((result, index) => result.commitsPerSec > results.A[index]!.commitsPerSec).length;
  console.log(`B against A: ${change >= 0 ? '+' : ''}${change.toFixed(1)}% commits/s, faster in ${faster} of ${rounds} rounds`);
}
