import { describe, expect, test } from 'bun:test';
import { parseCli, parseFaults, parseKeyForms } from '../../src/sim/cli.ts';

describe('cli arguments', () => {
  test('defaults, with SIM_PORT', () => {
    const { options, expect: file } = parseCli([], { SIM_PORT: '9999' });
    expect(options.port).toBe(9999);
    expect(options.commits).toBe(100000);
    expect(options.seed).toBe('1');
    expect(file).toBeNull();
  });

  test('every flag', () => {
    const { options, expect: file } = parseCli(
      ['--port', '0', '--seed', 'x', '--accounts', '20000', '--commits', '200000', '--rate', '500', '--new-share', '1',
        '--faults', 'malformed=0.01,badSignature=0.02', '--identity-share', '0.01', '--account-share', '0.001', '--sync-share', '0',
        '--retain', '1000', '--pregenerate', '--expect', '/tmp/x.json'],
      { SIM_PORT: '9999' },
    );
    expect(options).toMatchObject({ port: 0, seed: 'x', accounts: 20000, commits: 200000, rate: 500, newAccountShare: 1, identityShare: 0.01, accountShare: 0.001, syncShare: 0, retain: 1000, pregenerate: true });
    expect(options.faults).toEqual({ malformed: 0.01, badSignature: 0.02 });
    expect(options.groundTruth).toBe(true);
    expect(file).toBe('/tmp/x.json');
  });

  test('--hosts, --host-fault and --preload-*', () => {
    const { options } = parseCli(
      ['--hosts', '12', '--host-fault', '3=garbage,4=trickle', '--host-fault', '5=rate-limited', '--rate-limit-every', '4',
        '--preload-records', '1000000', '--preload-accounts', '9000', '--preload-giants', '2', '--preload-tail', '1.5'],
      {},
    );
    expect(options).toMatchObject({ hosts: 12, rateLimitEvery: 4, hostFaults: { 3: 'garbage', 4: 'trickle', 5: 'rate-limited' } });
    expect(options.preload).toEqual({ records: 1_000_000, accounts: 9000, giants: 2, tailExponent: 1.5 });
    expect(parseCli([], {}).options.hosts).toBeUndefined();
    expect(parseCli([], {}).options.preload).toBeUndefined();
    for (const bad of [['--host-fault', '3=bogus'], ['--host-fault', 'x=garbage'], ['--host-fault', '3'], ['--hosts', 'many'], ['--preload-giants', '2'], ['--directory-only', '--hosts', '3']]) {
      expect(() => parseCli(bad, {})).toThrow(RangeError);
    }
  });

  test('the ground truth is kept only for --expect', () => {
    expect(parseCli([], {}).options.groundTruth).toBe(false);
  });

  test('--directory-only and --pds-url', () => {
    const parsed = parseCli(['--directory-only', '--accounts', '20', '--pds-url', 'http://127.0.0.1:9'], {});
    expect(parsed.directoryOnly).toBe(true);
    expect(parsed.options).toMatchObject({ accounts: 20, pdsUrl: 'http://127.0.0.1:9' });
    expect(parseCli([], {}).directoryOnly).toBe(false);
    expect(() => parseCli(['--directory-only', '--expect', '/tmp/x.json'], {})).toThrow(RangeError);
    expect(parseCli(['--directory-only', '--export-from', 'http://127.0.0.1:8'], {}).options.exportFrom).toBe('http://127.0.0.1:8');
    expect(() => parseCli(['--export-from', 'http://127.0.0.1:8'], {})).toThrow(/--directory-only/);
  });

  test.each(['bogus=0.1', 'malformed', 'malformed=', 'malformed=abc', 'malformed=0.1=2', '=0.1'])('rejects fault spec %p', (spec) => {
    expect(() => parseFaults(spec)).toThrow(RangeError);
  });

  test('accepts an empty fault list and stray commas', () => {
    expect(parseFaults('')).toEqual({});
    expect(parseFaults('duplicate=0.5,,replay=0')).toEqual({ duplicate: 0.5, replay: 0 });
  });

  test('--key-forms: shares per form, unknown forms refused', () => {
    expect(parseCli(['--key-forms', 'p256=0.1,legacy-uncompressed=0.2'], {}).options.keyForms).toEqual({ p256: 0.1, 'legacy-uncompressed': 0.2 });
    expect(() => parseKeyForms('ed25519=0.1')).toThrow(/key forms: multikey, legacy-uncompressed/);
  });

  test.each([[['--port', 'abc']], [['--commits', '']], [['--unknown']], [['positional']]])('rejects %j', (argv) => {
    expect(() => parseCli(argv, {})).toThrow();
  });
});

test('bun run simulate answers --help with exit 0 and a bad flag with the usage and exit 2', () => {
  const cli = `${import.meta.dir}/../../src/sim/cli.ts`;
  const help = Bun.spawnSync([process.execPath, cli, '--help'], { stdout: 'pipe', stderr: 'pipe' });
  expect([help.exitCode, help.stdout.toString().includes('usage')]).toEqual([0, true]);
  const bad = Bun.spawnSync([process.execPath, cli, '--no-such-flag'], { stdout: 'pipe', stderr: 'pipe' });
  expect([bad.exitCode, bad.stderr.toString().includes('usage')]).toEqual([2, true]);
});
