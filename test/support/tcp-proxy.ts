/**
 * A TCP proxy in front of a PostgreSQL server (given by its connection URL) that can play "the
 * server went away":
 * `down()` closes every connection through it, and closes each new one at once until `up()`.
 * Real sockets both ways; bytes are forwarded in order, a partial write kept until the socket
 * drains, and what a client sends before its server side is connected waits for it.
 */
import type { Socket } from 'bun';

export interface TcpProxy {
  /** The URL it was started with, pointing at the proxy instead. */
  readonly url: string;
  /** Closes every open connection, and every new one until `up()`. */
  down(): void;
  up(): void;
  stop(): void;
}

interface Side {
  peer: Socket<Side> | null;
  /** bytes for this socket that it could not take yet */
  pending: Uint8Array[];
  /** bytes from this socket before its peer existed */
  early: Uint8Array[];
}

const newSide = (): Side => ({ peer: null, pending: [], early: [] });

export function startTcpProxy(databaseUrl: string): TcpProxy {
  const target = new URL(databaseUrl);
  const targetHost = target.hostname;
  const targetPort = Number(target.port || 5432);
  let refusing = false;
  const open = new Set<Socket<Side>>();

  const flush = (socket: Socket<Side>): void => {
    const pending = socket.data.pending;
    while (pending.length > 0) {
      const bytes = pending[0]!;
      const written = socket.write(bytes);
      if (written < bytes.byteLength) {
        pending[0] = bytes.subarray(written);
        return;
      }
      pending.shift();
    }
  };
  const send = (socket: Socket<Side>, bytes: Uint8Array): void => {
    socket.data.pending.push(bytes);
    if (socket.data.pending.length === 1) flush(socket);
  };
  const forward = (socket: Socket<Side>, bytes: Uint8Array): void => {
    const copy = new Uint8Array(bytes);
    const peer = socket.data.peer;
    if (peer) send(peer, copy);
    else socket.data.early.push(copy);
  };
  const closeBoth = (socket: Socket<Side>): void => {
    open.delete(socket);
    const peer = socket.data.peer;
    socket.data.peer = null;
    if (peer) {
      peer.data.peer = null;
      open.delete(peer);
      peer.end();
    }
  };

  const server = Bun.listen<Side>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(client) {
        client.data = newSide();
        if (refusing) {
          client.end();
          return;
        }
        open.add(client);
        Bun.connect<Side>({
          hostname: targetHost,
          port: targetPort,
          socket: {
            open(upstream) {
              upstream.data = newSide();
              if (!open.has(client)) {
                upstream.end();
                return;
              }
              open.add(upstream);
              upstream.data.peer = client;
              client.data.peer = upstream;
              for (const bytes of client.data.early.splice(0)) send(upstream, bytes);
            },
            data: forward,
            drain: flush,
            close: closeBoth,
            error: closeBoth,
            connectError: () => {
              client.end();
            },
          },
        }).catch(() => {
          client.end();
        });
      },
      data: forward,
      drain: flush,
      close: closeBoth,
      error: closeBoth,
    },
  });

  const throughProxy = new URL(databaseUrl);
  throughProxy.hostname = '127.0.0.1';
  throughProxy.port = String(server.port);
  return {
    url: throughProxy.href,
    down() {
      refusing = true;
      for (const socket of [...open]) socket.end();
      open.clear();
    },
    up() {
      refusing = false;
    },
    stop() {
      this.down();
      server.stop(true);
    },
  };
}
