/**
 * The process: read config, start Aqueduct, stop it cleanly on SIGINT/SIGTERM, and keep the
 * heap's garbage from piling up between JavaScriptCore's own full collections (the heap governor).
 *
 * Bad configuration exits with status 1 and one line naming the variable and the fix. A second
 * signal during shutdown, or a shutdown that takes longer than SHUTDOWN_LIMIT_MS, exits at once.
 */
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startAqueduct, type Aqueduct } from './aqueduct.ts';
import { HeapGovernor } from './lib/heap-governor.ts';
import { readCommandLine } from './lib/command-line.ts';

const SHUTDOWN_LIMIT_MS = 30_000;

// `aqueduct backfill ...` is `bun run backfill` in the single binary: that command, then exit
if (Bun.argv[2] === 'backfill') {
  const { backfillCommand } = await import('./backfill/cli.ts');
  await backfillCommand(Bun.argv.slice(3));
  process.exit(0);
}

readCommandLine(
  `usage: aqueduct [--help]
       aqueduct backfill [--help] ...   (the same as bun run backfill)
Aqueduct takes no other arguments: it is configured by environment variables (or a .env file in the
working folder), each one optional: DATABASE_URL, DATA_DIR, PORT, RELAY_URL, FIREHOSE_START,
FIREHOSE_ENABLED, PLC_URL, HANDLE_RESOLVER_URL, VERIFY_COMMITS, DB_POOL_SIZE, MAX_CONCURRENT_OPS,
MAX_CONCURRENT_USER_CREATIONS, LOG_LEVEL and the rest that .env.example and the README explain.`,
  {},
);

let loaded;
try {
  loaded = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`aqueduct: configuration error: ${error.message}\n`);
  process.exit(1);
}

const log = createLogger(loaded.config.logLevel);
for (const warning of loaded.warnings) log.warn(warning);

let aqueduct: Aqueduct | undefined;
let stopping = false;
/** A signal that came during start-up: acted on once started, so nothing started is left behind. */
let exitAfterStart: number | null = null;
// installed before start-up: a signal then never meets the default action (death by SIGTERM, 143)
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
try {
  aqueduct = await startAqueduct(loaded.config, log, { onFatal: () => shutdown('fatal error', 1) });
} catch (error) {
  log.error('start-up failed', { error });
  process.exit(1);
}
if (exitAfterStart !== null) stopAndExit(aqueduct, exitAfterStart);

new HeapGovernor().start();

function shutdown(signal: string, exitCode = 0): void {
  if (stopping) {
    log.warn('second signal: exiting now', { signal });
    process.exit(1);
  }
  stopping = true;
  log.info('shutting down', { signal });
  setTimeout(() => {
    log.error('shutdown took too long: exiting', { limitMs: SHUTDOWN_LIMIT_MS });
    process.exit(1);
  }, SHUTDOWN_LIMIT_MS).unref();
  if (aqueduct) stopAndExit(aqueduct, exitCode);
  else exitAfterStart = exitCode;
}

function stopAndExit(running: Aqueduct, exitCode: number): void {
  running.stop().then(
    () => {
      log.info('stopped');
      process.exit(exitCode);
    },
    (error: unknown) => {
      log.error('shutdown failed', { error });
      process.exit(1);
    },
  );
}
