/**
 * The last warnings and errors, in memory, for the dashboard.
 *
 * `RecentErrors` is a bounded ring (newest first when read): it never holds more than `capacity`
 * entries, and each entry's text is cut to a fixed length, so a hostile peer that makes us log
 * a lot (or log long text) costs a fixed amount of memory. A message repeated back to back
 * (a reconnect loop) is folded into one entry with a count. `recordingLogger` wraps a `Logger`
 * so every `warn` and `error` also lands here; the text is stored raw and escaped by the views.
 */
import type { LogFields, Logger } from '../log.ts';

export type RecentLevel = 'warn' | 'error';

export interface RecentError {
  readonly level: RecentLevel;
  readonly message: string;
  /** `key=value` pairs, as the logger prints them, cut to `MAX_DETAIL_CHARS`. */
  readonly detail: string;
  /** Wall-clock ms of the first and of the last occurrence. */
  readonly firstAt: number;
  readonly lastAt: number;
  readonly count: number;
}

const MAX_MESSAGE_CHARS = 200;
const MAX_DETAIL_CHARS = 400;
const MAX_FIELD_CHARS = 160;

export class RecentErrors {
  readonly capacity: number;
  readonly #entries: RecentError[] = [];
  readonly #now: () => number;
  #total = 0;

  constructor(capacity = 50, now: () => number = Date.now) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#now = now;
  }

  /** Warnings and errors recorded since start, folded repeats included. */
  get total(): number {
    return this.#total;
  }

  record(level: RecentLevel, message: string, fields?: LogFields): void {
    this.#total++;
    const at = this.#now();
    const text = cut(message, MAX_MESSAGE_CHARS);
    const detail = fields ? describeFields(fields) : '';
    const last = this.#entries[this.#entries.length - 1];
    if (last && last.level === level && last.message === text && last.detail === detail) {
      this.#entries[this.#entries.length - 1] = { ...last, lastAt: at, count: last.count + 1 };
      return;
    }
    this.#entries.push({ level, message: text, detail, firstAt: at, lastAt: at, count: 1 });
    if (this.#entries.length > this.capacity) this.#entries.shift();
  }

  /** Newest first, at most `limit`. */
  latest(limit = this.capacity): RecentError[] {
    return this.#entries.slice(-limit).reverse();
  }
}

/** A logger that writes through to `inner` and records every warning and error in `recent`. */
export function recordingLogger(inner: Logger, recent: RecentErrors): Logger {
  return {
    debug: (message, fields) => inner.debug(message, fields),
    info: (message, fields) => inner.info(message, fields),
    warn: (message, fields) => {
      recent.record('warn', message, fields);
      inner.warn(message, fields);
    },
    error: (message, fields) => {
      recent.record('error', message, fields);
      inner.error(message, fields);
    },
  };
}

function describeFields(fields: LogFields): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${cut(describeValue(value), MAX_FIELD_CHARS)}`);
  }
  return cut(parts.join(' '), MAX_DETAIL_CHARS);
}

function describeValue(value: unknown): string {
  if (value instanceof Error) {
    const cause = value.cause instanceof Error ? value.cause.message : value.cause === undefined ? '' : String(value.cause);
    return cause ? `${value.message} (cause: ${cause})` : value.message;
  }
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
