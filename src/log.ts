/**
 * Logging: one line per event on stderr, `time level message key=value ...`.
 *
 * Fields are bounded (long strings are cut) so a hostile record or error text can never flood the
 * log. The level comes from config; `createLogger` is called once in `main.ts` and passed down.
 */
import type { LogLevel } from './config.ts';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const MAX_FIELD_CHARS = 300;

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit = (at: LogLevel, message: string, fields?: LogFields): void => {
    if (RANK[at] < RANK[level]) return;
    let line = `${new Date().toISOString()} ${at.toUpperCase()} ${message}`;
    if (fields) for (const [key, value] of Object.entries(fields)) line += ` ${key}=${formatValue(value)}`;
    write(`${line}\n`);
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

/** A logger that drops everything: for tests that do not assert on logs. */
export const silentLogger: Logger = createLogger('error', () => {});

function formatValue(value: unknown): string {
  let text: string;
  if (value instanceof Error) {
    const cause = value.cause === undefined ? '' : describeCause(value.cause);
    text = cause && !value.message.includes(cause) ? `${value.message} (cause: ${cause})` : value.message;
  }
  else if (typeof value === 'string') text = value;
  else text = JSON.stringify(value) ?? String(value);
  if (text.length > MAX_FIELD_CHARS) text = `${text.slice(0, MAX_FIELD_CHARS)}...`;
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
