/**
 * A TCP proxy in front of a PostgreSQL server (given by its connection URL) that can play "the
 * server went away": `down()` closes every connection through it, and closes each new one at once
 * until `up()`. The fault suite's proxy (fault-proxy.ts) in its `refuse` mode, with the server's
 * URL pointed at it.
 */
import { startFaultProxy } from './fault-proxy.ts';

export interface TcpProxy {
  /** The URL it was started with, pointing at the proxy instead. */
  readonly url: string;
  /** Closes every open connection, and every new one until `up()`. */
  down(): void;
  up(): void;
  stop(): void;
}

export function startTcpProxy(databaseUrl: string): TcpProxy {
  const target = new URL(databaseUrl);
  const proxy = startFaultProxy(Number(target.port || 5432), target.hostname);
  const throughProxy = new URL(databaseUrl);
  throughProxy.hostname = '127.0.0.1';
  throughProxy.port = String(proxy.port);
  return {
    url: throughProxy.href,
    down: () => proxy.setMode('refuse'),
    up: () => proxy.setMode('up'),
    stop: () => proxy.stop(),
  };
}
