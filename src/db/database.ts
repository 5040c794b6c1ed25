/**
 * The database pool: postgres.js with DB_POOL_SIZE connections, timeouts, and live counters.
 *
 * Every query in Aqueduct goes through `run` (one statement or several on a free connection),
 * `begin` (a transaction) or `beginOnWriterConnection` (the batch writer's transactions). All hold
 * one slot of a semaphore sized like the pool, so the number of connections in use is known
 * exactly (`stats().active`), callers queue in order when the pool is full (`stats().waiting`),
 * and DB_POOL_SIZE is an upper bound nobody can exceed.
 *
 * The batch writer has a connection of its own, one of the DB_POOL_SIZE (the others are shared;
 * with DB_POOL_SIZE=1 two connections are opened, still one in use at a time). postgres.js
 * prepares each statement text once per connection, and until then sends it alone and waits for
 * its description before sending anything else: on connections taken in turn from the pool, a
 * batch's pipelined statements were sent one round trip at a time. On a connection of its own
 * they stay prepared, and a batch's statements go out together.
 *
 * Rows reach the code as camelCase (`postgres.camel`). int8 values are parsed as JavaScript
 * numbers: every int8 we store (sequence numbers, counters, sizes) stays far below 2^53.
 *
 * The URL may name a Unix-domain socket the way libpq does (see `postgresTarget`).
 */
import postgres from 'postgres';
import { Semaphore } from '../lib/semaphore.ts';

export type Sql = postgres.Sql<{ bigint: number }>;
export type TransactionSql = postgres.TransactionSql<{ bigint: number }>;

export interface DatabaseOptions {
  readonly url: string;
  readonly poolSize: number;
  readonly applicationName?: string;
  readonly connectTimeoutSeconds?: number;
  readonly statementTimeoutMs?: number;
}

export interface PoolStats {
  readonly size: number;
  readonly active: number;
  readonly idle: number;
  readonly waiting: number;
  /** active / size, in percent. */
  readonly utilization: number;
  readonly connectionErrors: number;
  readonly timeouts: number;
}

const CONNECTION_ERROR_CODES = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  '57P01', // admin shutdown
  '57P03', // cannot connect now
  '53300', // too many connections
]);
const STATEMENT_TIMEOUT_CODE = '57014';

/**
 * How long a closed connection waits before it connects again, after `retries` failed connects
 * in a row: 0.1 s doubling to at most 1 s. The callers (the batch writer, the identity worker)
 * already back off on their own; postgres.js's own default grows to 20 s, so a query sent after
 * an outage could wait that long for a connection that was long possible, and a shutdown with it
 * (measured: stopping the process right after a 2 s outage took 10-12 s in two of four runs).
 */
function reconnectDelaySeconds(retries: number): number {
  return Math.min(0.1 * 2 ** retries, 1);
}

/**
 * Where postgres.js connects for a connection URL, libpq's Unix-domain socket forms included: a
 * `host` query parameter (`postgres://user@localhost/db?host=/run/postgresql`) or a
 * percent-encoded folder as the host (`postgres://user@%2Frun%2Fpostgresql/db`) names the folder
 * holding the socket `.s.PGSQL.<port>`. Given such a URL as it is, postgres.js sends `host` to the
 * server as a setting (which the server refuses) or looks the folder up as a host name; so the
 * host goes in its `host` option instead. Any other URL is passed on untouched.
 */
export function postgresTarget(url: string): { url: string; host: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, host: undefined }; // postgres.js reads more than URL does (several hosts)
  }
  const hostParameter = parsed.searchParams.get('host');
  if (hostParameter !== null) {
    parsed.searchParams.delete('host');
    return { url: parsed.href, host: hostParameter };
  }
  const hostname = decodeURIComponent(parsed.hostname);
  return { url, host: hostname.startsWith('/') ? hostname : undefined };
}

/**
 * postgres.js connected to `url` through `postgresTarget`: how every connection to a URL is made
 * (the pool here, the benchmark's and the tests' own connections), so a socket URL works for all.
 */
export function connectPostgres<T extends Record<string, postgres.PostgresType>>(url: string, options: postgres.Options<T>) {
  const target = postgresTarget(url);
  return postgres(target.url, { ...options, host: target.host });
}

export class Database {
  readonly #sql: Sql;
  readonly #writerSql: Sql;
  readonly #slots: Semaphore;
  #connectionErrors = 0;
  #timeouts = 0;

  constructor(options: DatabaseOptions) {
    this.#slots = new Semaphore(options.poolSize);
    const connect = (max: number): Sql =>
      connectPostgres(options.url, {
        max,
        connect_timeout: options.connectTimeoutSeconds ?? 10,
        idle_timeout: 60,
        max_lifetime: 60 * 30,
        backoff: reconnectDelaySeconds,
        transform: postgres.camel,
        onnotice: () => {},
        connection: {
          application_name: options.applicationName ?? 'aqueduct',
          statement_timeout: options.statementTimeoutMs ?? 60_000,
        },
        types: {
          bigint: { to: 20, from: [20], serialize: (value: number) => String(value), parse: (value: string) => Number(value) },
        },
      }) as unknown as Sql;
    this.#sql = connect(Math.max(1, options.poolSize - 1));
    this.#writerSql = connect(1);
  }

  /** Runs `task` holding one pool slot; statements inside may use any free connection. */
  run<T>(task: (sql: Sql) => Promise<T>): Promise<T> {
    return this.#slots.run(() => this.#counted(() => task(this.#sql)));
  }

  /** Runs `task` in one transaction on one connection, holding one pool slot. */
  begin<T>(task: (sql: TransactionSql) => Promise<T>): Promise<T> {
    return this.#slots.run(() => this.#counted(() => this.#sql.begin((tx) => task(tx)) as Promise<T>));
  }

  /** `begin`, on the batch writer's own connection (one transaction at a time; others wait). */
  beginOnWriterConnection<T>(task: (sql: TransactionSql) => Promise<T>): Promise<T> {
    return this.#slots.run(() => this.#counted(() => this.#writerSql.begin((tx) => task(tx)) as Promise<T>));
  }

  stats(): PoolStats {
    const size = this.#slots.limit;
    const active = this.#slots.active;
    return {
      size,
      active,
      idle: size - active,
      waiting: this.#slots.waiting,
      utilization: Math.round((active / size) * 1000) / 10,
      connectionErrors: this.#connectionErrors,
      timeouts: this.#timeouts,
    };
  }

  /** Closes every connection, waiting at most `timeoutSeconds` for running queries. */
  async close(timeoutSeconds = 5): Promise<void> {
    await Promise.all([this.#sql.end({ timeout: timeoutSeconds }), this.#writerSql.end({ timeout: timeoutSeconds })]);
  }

  async #counted<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === STATEMENT_TIMEOUT_CODE) this.#timeouts++;
      else if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) this.#connectionErrors++;
      throw error;
    }
  }
}
