/**
 * address-policy: which IP addresses a request made on a stranger's behalf may connect to.
 *
 * Owns the decision alone (no socket is opened here, so tests check it for any address without
 * dialing it). Promises: an address is allowed only when it is a public unicast address; refused
 * are loopback, private (RFC 1918, unique-local fc00::/7), link-local (cloud metadata
 * 169.254.169.254 included), CGNAT 100.64/10, multicast, broadcast, unspecified, documentation
 * and benchmarking ranges, 0/8, 240/4, IPv4-mapped, -compatible and NAT64/6to4/Teredo IPv6 forms
 * of any refused IPv4 address, and anything that does not parse. Hosts written as numbers in
 * other forms (decimal `2130706433`, hex `0x7f.1`, octal `0177.0.0.1`, short `127.1`) are read
 * as the IPv4 address the resolver would make of them. An explicit allowlist of hosts
 * (ALLOW_PRIVATE_HOSTS: the simulator, tests, a private deployment) is the only way through.
 */
import { isIP } from 'node:net';

export type AddressVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOWED: AddressVerdict = { allowed: true };
const refuse = (reason: string): AddressVerdict => ({ allowed: false, reason });

/** IPv4 ranges refused, as [first address, prefix length, name]. */
const V4_REFUSED: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const v4ToNumber = (address: string): number => address.split('.').reduce((n, part) => n * 256 + Number(part), 0);

const V4_RANGES = V4_REFUSED.map(([first, bits, name]) => ({ start: v4ToNumber(first), size: 2 ** (32 - bits), name }));

function v4Verdict(value: number): AddressVerdict {
  for (const range of V4_RANGES) if (value >= range.start && value < range.start + range.size) return refuse(`${range.name} address`);
  return ALLOWED;
}

/**
 * A host name written as an IPv4 number the way inet_aton reads it: 1 to 4 parts, each decimal,
 * 0x-hex or 0-octal, the last part filling the remaining bytes. Null when it is not a number.
 */
export function parseIpv4Number(host: string): number | null {
  const parts = host.split('.');
  if (parts.length < 1 || parts.length > 4 || parts.some((part) => part === '')) return null;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else return null;
    if (!Number.isSafeInteger(value)) return null;
    values.push(value);
  }
  const last = values.pop()!;
  if (values.some((value) => value > 255)) return null;
  const lastBytes = 4 - values.length;
  if (last >= 2 ** (8 * lastBytes)) return null;
  return values.reduce((n, value) => n * 256 + value, 0) * 2 ** (8 * lastBytes) + last;
}

/** The 16 bytes of an IPv6 address (with an embedded IPv4 tail), or null. */
function v6Bytes(address: string): number[] | null {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = text.slice(lastColon + 1);
    if (isIP(v4) !== 4) return null;
    tail = v4.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const group of all) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return null;
    const value = Number.parseInt(group, 16);
    bytes.push(value >> 8, value & 255);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

const startsWith = (bytes: number[], prefix: number[], bits: number): boolean => {
  for (let bit = 0; bit < bits; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3]! & mask) !== (prefix[bit >> 3]! & mask)) return false;
  }
  return true;
};

const v4Of = (bytes: number[], at: number): number => ((bytes[at]! << 24) >>> 0) + (bytes[at + 1]! << 16) + (bytes[at + 2]! << 8) + bytes[at + 3]!;

function v6Verdict(bytes: number[]): AddressVerdict {
  const zeroPrefix = (count: number) => bytes.slice(0, count).every((byte) => byte === 0);
  if (zeroPrefix(16)) return refuse('unspecified address');
  if (zeroPrefix(15) && bytes[15] === 1) return refuse('loopback address');
  // IPv4 inside IPv6: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96
  if (zeroPrefix(10) && bytes[10] === 0xff && bytes[11] === 0xff) return v4Verdict(v4Of(bytes, 12));
  if (zeroPrefix(12)) return v4Verdict(v4Of(bytes, 12));
  if (startsWith(bytes, [0x00, 0x64, 0xff, 0x9b], 32) && bytes.slice(4, 12).every((byte) => byte === 0)) return v4Verdict(v4Of(bytes, 12));
  if (startsWith(bytes, [0x20, 0x02], 16)) return v4Verdict(v4Of(bytes, 2)); // 6to4: 2002:a.b.c.d::/48
  if (startsWith(bytes, [0x20, 0x01, 0x00, 0x00], 32)) return refuse('Teredo address');
  if (startsWith(bytes, [0x20, 0x01, 0x0d, 0xb8], 32)) return refuse('documentation address');
  if (startsWith(bytes, [0xfc], 7)) return refuse('unique-local address');
  if (startsWith(bytes, [0xfe, 0x80], 10)) return refuse('link-local address');
  if (startsWith(bytes, [0xfe, 0xc0], 10)) return refuse('site-local address');
  if (bytes[0] === 0xff) return refuse('multicast address');
  if (startsWith(bytes, [0x01, 0x00], 16) && bytes.slice(2, 8).every((byte) => byte === 0)) return refuse('discard address');
  return ALLOWED;
}

/** The verdict on a resolved address (as a resolver or the OS returns it). */
export function addressVerdict(address: string): AddressVerdict {
  const family = isIP(address);
  if (family === 4) return v4Verdict(v4ToNumber(address));
  if (family === 6) {
    const bytes = v6Bytes(address);
    return bytes ? v6Verdict(bytes) : refuse('not an IP address');
  }
  return refuse('not an IP address');
}

/**
 * The verdict on a URL's host before any lookup: an IP literal in any form is judged at once;
 * a name is allowed here and its resolved addresses are judged when the connection is made.
 * `localhost` and names under `.localhost`, `.local`, `.internal` and `.localdomain` are refused
 * by name. Hosts in `allowlist` (lower case, without port) are allowed whatever they resolve to.
 */
export function hostVerdict(host: string, allowlist: ReadonlySet<string> = new Set()): AddressVerdict {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (allowlist.has(name)) return ALLOWED;
  if (isIP(name)) return addressVerdict(name);
  const number = parseIpv4Number(name);
  if (number !== null) return v4Verdict(number);
  if (name === 'localhost' || /\.(localhost|local|internal|localdomain)$/.test(name)) return refuse('a local host name');
  return ALLOWED;
}
