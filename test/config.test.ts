import { describe, expect, test } from 'bun:test';
import { ConfigError, DEFAULTS, loadConfig, redactPassword } from '../src/config.ts';

describe('loadConfig', () => {
  test('defaults follow the design and the operations guide', () => {
    const { config, warnings } = loadConfig({});
    expect(config).toEqual({
      databaseUrl: null,
      dataDir: './data',
      postgresBinDir: null,
      durableCommits: false,
      port: 5000,
      host: '0.0.0.0',
      rateLimit: 3000,
      trustProxy: [],
      adminToken: null,
      relayUrl: 'wss://bsky.network',
      firehoseStart: { kind: 'live' },
      firehoseEnabled: true,
      plcUrl: 'https://plc.directory',
      plcFollowExport: true,
      handleResolverUrl: null,
      allowPrivateHosts: [],
      verifyCommits: true,
      dbPoolSize: 32,
      maxConcurrentOps: 256,
      // the guide's default of 50 exceeds the default pool of 32: clamped, silently, because the
      // operator did not ask for 50
      maxConcurrentUserCreations: 32,
      identityRefreshHours: 24,
      plcRateLimit: 10,
      imageUrlTemplate: 'https://cdn.bsky.app/img/{kind}/plain/{did}/{cid}@jpeg',
      videoUrlTemplate: 'https://video.bsky.app/watch/{did}/{cid}/{file}',
      appviewHostname: 'localhost',
      appviewDid: 'did:web:localhost',
      logLevel: 'info',
      backfill: 'none',
      backfillConcurrency: 32,
      backfillHostConcurrency: 4,
      backfillHostRate: 3,
      backfillBigHostRate: 10,
      backfillHostRates: new Map(),
    });
    expect(warnings).toEqual([]);
    expect(Object.isFrozen(config)).toBe(true);
    expect(DEFAULTS.MAX_CONCURRENT_USER_CREATIONS).toBe(50);
  });

  test('reads every variable', () => {
    const { config } = loadConfig({
      DATABASE_URL: 'postgres://u:p@db.example:5432/appview',
      DATA_DIR: '/var/lib/aqueduct',
      PORT: '8080',
      RELAY_URL: 'ws://127.0.0.1:2470/',
      FIREHOSE_START: '0',
      FIREHOSE_ENABLED: 'false',
      PLC_URL: 'http://127.0.0.1:2470',
      HANDLE_RESOLVER_URL: 'http://127.0.0.1:2470',
      VERIFY_COMMITS: 'off',
      DURABLE_COMMITS: 'true',
      ALLOW_PRIVATE_HOSTS: '127.0.0.1, LOCALHOST,[::1],pds.internal',
      DB_POOL_SIZE: '8',
      MAX_CONCURRENT_OPS: '50',
      MAX_CONCURRENT_USER_CREATIONS: '5',
      LOG_LEVEL: 'DEBUG',
      BACKFILL: 'all',
      BACKFILL_CONCURRENCY: '4',
      BACKFILL_HOST_RATE: '2',
      BACKFILL_BIG_HOST_RATE: '20',
      BACKFILL_HOST_RATES: 'pds.example.com=5, Other.example:8443=1',
    });
    expect(config.databaseUrl).toBe('postgres://u:p@db.example:5432/appview');
    expect(config.relayUrl).toBe('ws://127.0.0.1:2470');
    expect(config.firehoseStart).toEqual({ kind: 'seq', seq: 0 });
    expect(config.firehoseEnabled).toBe(false);
    expect(config.verifyCommits).toBe(false);
    expect(config.durableCommits).toBe(true);
    expect(config.allowPrivateHosts).toEqual(['127.0.0.1', 'localhost', '::1', 'pds.internal']);
    expect([config.dbPoolSize, config.maxConcurrentOps, config.maxConcurrentUserCreations]).toEqual([8, 50, 5]);
    expect(config.logLevel).toBe('debug');
    expect(config.port).toBe(8080);
    expect([config.backfill, config.backfillConcurrency, config.backfillHostRate, config.backfillBigHostRate]).toEqual(['all', 4, 2, 20]);
    expect(config.backfillHostRates).toEqual(new Map([['pds.example.com', 5], ['other.example:8443', 1]]));
  });

  test('an explicit MAX_CONCURRENT_USER_CREATIONS above DB_POOL_SIZE is clamped with a warning', () => {
    const { config, warnings } = loadConfig({ DB_POOL_SIZE: '10', MAX_CONCURRENT_USER_CREATIONS: '40' });
    expect(config.maxConcurrentUserCreations).toBe(10);
    expect(warnings).toEqual(['MAX_CONCURRENT_USER_CREATIONS=40 is larger than DB_POOL_SIZE=10: clamped to 10']);
  });

  const bad: Array<[string, string, string]> = [
    ['DB_POOL_SIZE', 'abc', 'whole number from 1 to'],
    ['DB_POOL_SIZE', '0', 'whole number from 1 to'],
    ['DB_POOL_SIZE', '-4', 'whole number from 1 to'],
    ['DB_POOL_SIZE', '2.5', 'whole number from 1 to'],
    ['PORT', '70000', 'whole number from 0 to 65535'],
    ['HOST', 'my.host.example', 'IP address to listen on'],
    ['ADMIN_TOKEN', 'short', 'at least 16 characters'],
    ['PORT', '80a', 'whole number from 0 to 65535'],
    ['MAX_CONCURRENT_OPS', '0', 'whole number from 1 to'],
    ['MAX_CONCURRENT_USER_CREATIONS', 'many', 'whole number from 1 to'],
    ['RELAY_URL', 'https://bsky.network', 'ws:// or wss://'],
    ['RELAY_URL', 'bsky.network', 'ws:// or wss://'],
    ['PLC_URL', 'ftp://plc.directory', 'http:// or https://'],
    ['HANDLE_RESOLVER_URL', 'not a url', 'http:// or https://'],
    ['VERIFY_COMMITS', 'maybe', 'true or false'],
    ['FIREHOSE_ENABLED', '2', 'true or false'],
    ['PLC_FOLLOW_EXPORT', 'sometimes', 'true or false'],
    ['FIREHOSE_START', 'yesterday', 'live, or a sequence number'],
    ['FIREHOSE_START', '-1', 'live, or a sequence number'],
    ['LOG_LEVEL', 'verbose', 'debug, info, warn, error'],
    ['DATABASE_URL', 'mysql://u:secret@host/db', 'postgres://'],
    ['IDENTITY_REFRESH_HOURS', '0', 'whole number from 1 to'],
    ['PLC_RATE_LIMIT', 'fast', 'whole number from 1 to'],
    ['IMAGE_URL_TEMPLATE', 'ftp://cdn.example/{did}', ''],
    ['VIDEO_URL_TEMPLATE', 'https://video.example/{did}', '{did}, {cid} and {file}'],
    ['APPVIEW_HOSTNAME', 'https://appview.example', 'host name'],
    ['APPVIEW_DID', 'appview.example', 'expected a DID'],
    ['BACKFILL', 'some', 'none, all'],
    ['BACKFILL_CONCURRENCY', '0', 'whole number from 1 to'],
    ['BACKFILL_HOST_RATES', 'pds.example.com:5', 'host=requests-per-second pairs'],
  ];
  test.each(bad)('%s=%s is refused with one line naming the variable and what is allowed', (name, value, allowed) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message.startsWith(`${name}=`)).toBe(true);
    expect(message).toContain(allowed);
    expect(message).not.toContain('\n');
    expect(message).not.toContain('secret'); // a database password never reaches a log
  });

  test('APPVIEW_DID defaults to the did:web of APPVIEW_HOSTNAME', () => {
    expect(loadConfig({ APPVIEW_HOSTNAME: 'AppView.Example.com' }).config).toMatchObject({ appviewHostname: 'appview.example.com', appviewDid: 'did:web:appview.example.com' });
    expect(loadConfig({ APPVIEW_DID: 'did:plc:abc123' }).config.appviewDid).toBe('did:plc:abc123');
  });

  test('empty values mean unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '  ' }).config).toMatchObject({ port: 5000, databaseUrl: null });
  });
});

describe('redactPassword', () => {
  test.each([
    ['postgres://aqueduct:secret@db.example:5432/appview', 'postgres://aqueduct:***@db.example:5432/appview'],
    ['postgres://aqueduct:p@ss@w0rd@db.example/appview', 'postgres://aqueduct:***@db.example/appview'],
    ['postgres://aqueduct:a/b@db.example/appview?sslmode=require&x=a@b', 'postgres://aqueduct:***@db.example/appview?sslmode=require&x=a@b'],
    ['postgres://aqueduct@db.example/appview', 'postgres://aqueduct@db.example/appview'],
    ['postgres://db.example/appview', 'postgres://db.example/appview'],
  ])('%s', (url, redacted) => {
    expect(redactPassword(url)).toBe(redacted);
  });
});
