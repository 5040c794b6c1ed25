/**
 * The guarded client as tests give it: loopback let through (the test servers listen there), or a
 * fake fetch standing in for the network, with plain http allowed.
 */
import { outbound, type FetchLike, type Outbound } from '../../src/outbound/guarded-fetch.ts';

export const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost'];

export function testStrangers(fetch?: FetchLike): Outbound {
  return fetch ? { fetch, allowsHttp: () => true } : outbound({ allowPrivateHosts: new Set(LOOPBACK_HOSTS) });
}
