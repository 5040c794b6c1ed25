import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { addressVerdict, hostVerdict, parseIpv4Number } from '../../src/outbound/address-policy.ts';

describe('addressVerdict: resolved addresses', () => {
  test.each([
    '127.0.0.1', '127.255.255.254', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
    '100.64.0.1', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1', '192.0.2.10',
    '198.18.0.1', '::', '::1', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1',
    '::ffff:7f00:1', '::ffff:10.0.0.1', '::127.0.0.1', '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::',
    '2002:c0a8:101::1', '2001:0:4136:e378::1', '2001:db8::1', 'fec0::1', 'not an ip', '1.2.3', '',
  ])('%s is refused', (address) => {
    expect(addressVerdict(address).allowed).toBe(false);
  });

  test.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.8.8', '64:ff9b::808:808'])(
    '%s is allowed',
    (address) => {
      expect(addressVerdict(address).allowed).toBe(true);
    },
  );

  test('a refusal names the range', () => {
    expect(addressVerdict('169.254.169.254')).toEqual({ allowed: false, reason: 'link-local address' });
    expect(addressVerdict('::ffff:127.0.0.1')).toEqual({ allowed: false, reason: 'loopback address' });
  });

  test('property: an IPv4 address and its IPv4-mapped IPv6 form get the same verdict', () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        expect(addressVerdict(`::ffff:${v4}`).allowed).toBe(addressVerdict(v4).allowed);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('hostVerdict: hosts as written in URLs', () => {
  test.each([
    ['2130706433', 'decimal 127.0.0.1'],
    ['0x7f000001', 'hex'],
    ['0x7f.0.0.1', 'hex first part'],
    ['0177.0.0.1', 'octal'],
    ['017700000001', 'octal whole'],
    ['127.1', 'short form'],
    ['127.0.1', 'three parts'],
    ['[::1]', 'bracketed IPv6'],
    ['[::ffff:127.0.0.1]', 'bracketed mapped IPv4'],
    ['localhost', 'localhost'],
    ['LOCALHOST.', 'localhost, upper case, trailing dot'],
    ['api.localhost', 'under .localhost'],
    ['printer.local', 'mDNS'],
    ['metadata.google.internal', '.internal'],
    ['169.254.169.254', 'cloud metadata'],
  ])('%s (%s) is refused', (host) => {
    expect(hostVerdict(host).allowed).toBe(false);
  });

  test.each(['bsky.social', 'pds.example.com', '8.8.8.8', '[2606:4700:4700::1111]', '1e100.net'])('%s is allowed before lookup', (host) => {
    expect(hostVerdict(host).allowed).toBe(true);
  });

  test('the allowlist lets named hosts through', () => {
    expect(hostVerdict('127.0.0.1', new Set(['127.0.0.1'])).allowed).toBe(true);
    expect(hostVerdict('localhost', new Set(['127.0.0.1'])).allowed).toBe(false);
  });

  test('parseIpv4Number reads what inet_aton reads', () => {
    expect(parseIpv4Number('2130706433')).toBe(0x7f000001);
    expect(parseIpv4Number('127.1')).toBe(0x7f000001);
    expect(parseIpv4Number('0x7f.1')).toBe(0x7f000001);
    expect(parseIpv4Number('1.2.3.4')).toBe(0x01020304);
    expect(parseIpv4Number('256.1.1.1')).toBeNull();
    expect(parseIpv4Number('1.2.3.4.5')).toBeNull();
    expect(parseIpv4Number('example.com')).toBeNull();
    expect(parseIpv4Number('4294967296')).toBeNull();
  });
});
