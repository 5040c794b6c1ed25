/**
 * A TCP proxy on 127.0.0.1 that plays the ways a peer fails, for the fault suite (and, through
 * tcp-proxy.ts, the pipeline and end-to-end tests): in front of the relay (it stalls, it closes),
 * the PLC directory and the PDS (unreachable), or PostgreSQL (it goes away, it restarts elsewhere).
 *
 * Modes: `up` forwards; `refuse` closes every open connection, and accepts and closes each new one
 * at once (a port nobody listens on, as far as a client can tell); `blackhole` silences every open
 * connection and accepts new ones that never get an answer (packets dropped: the client waits for
 * its own timeout); leaving it closes the silenced ones. `freeze()` stops both directions of every open
 * connection without closing it (reading is paused, so the peer feels TCP back-pressure and
 * nothing piles up here) until `thaw()`; connections opened after it flow. `cut()` closes every
 * open connection. `retarget(port)` sends new connections to another port.
 * Promises: loopback only; bytes are forwarded in order, a partial write kept until the socket
 * drains; `stop()` closes everything.
 */
import type { Socket } from 'bun';

export type ProxyMode = 'up' | 'refuse' | 'blackhole';

export interface FaultProxy {
  readonly port: number;
  /** `http://127.0.0.1:port` */
  readonly url: string;
  /** connections accepted so far */
  readonly accepted: number;
  setMode(mode: ProxyMode): void;
  freeze(): void;
  thaw(): void;
  /** closes the connections frozen by `freeze()` (and only those) */
  cutFrozen(): void;
  cut(): void;
  retarget(port: number): void;
  stop(): void;
}

interface Side {
  peer: Socket<Side> | null;
  pending: Uint8Array[];
  early: Uint8Array[];
  frozen: boolean;
  /** held open without a peer (blackhole) */
  held: boolean;
}

const newSide = (): Side => ({ peer: null, pending: [], early: [], frozen: false, held: false });

export function startFaultProxy(targetPort: number, targetHost = '127.0.0.1'): FaultProxy {
  let target = targetPort;
  let mode: ProxyMode = 'up';
  let accepted = 0;
  const open = new Set<Socket<Side>>();

  const flush = (socket: Socket<Side>): void => {
    const pending = socket.data.pending;
    while (pending.length > 0) {
      const bytes = pending[0]!;
      const written = socket.write(bytes);
      if (written < bytes.byteLength) {
        pending[0] = bytes.subarray(Math.max(0, written));
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
    if (socket.data.held) return; // a blackholed connection: what it sends goes nowhere
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
  const setFrozen = (socket: Socket<Side>, frozen: boolean): void => {
    if (socket.data.frozen === frozen) return;
    socket.data.frozen = frozen;
    if (frozen) socket.pause();
    else socket.resume();
  };

  const server = Bun.listen<Side>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(client) {
        client.data = newSide();
        accepted++;
        if (mode === 'refuse') {
          client.end();
          return;
        }
        open.add(client);
        if (mode === 'blackhole') {
          client.data.held = true;
          client.pause();
          return;
        }
        Bun.connect<Side>({
          hostname: targetHost,
          port: target,
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
              open.delete(client);
              client.end();
            },
          },
        }).catch(() => {
          open.delete(client);
          client.end();
        });
      },
      data: forward,
      drain: flush,
      close: closeBoth,
      error: closeBoth,
    },
  });

  const port = server.port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    setMode(next) {
      if (next === 'refuse') this.cut();
      if (next === 'blackhole') {
        // connections already open go silent too (kept-alive HTTP connections included)
        for (const socket of open) {
          socket.data.held = true;
          setFrozen(socket, true);
        }
      }
      if (mode === 'blackhole' && next !== 'blackhole') {
        // the held connections learn it now: closed, as a router that comes back resets them
        for (const socket of [...open]) if (socket.data.held) {
          open.delete(socket);
          socket.end();
        }
      }
      mode = next;
    },
    freeze() {
      for (const socket of open) setFrozen(socket, true);
    },
    thaw() {
      for (const socket of open) setFrozen(socket, false);
    },
    cutFrozen() {
      for (const socket of [...open]) if (socket.data.frozen) {
        open.delete(socket);
        socket.end();
      }
    },
    cut() {
      for (const socket of [...open]) socket.end();
      open.clear();
    },
    retarget(next) {
      target = next;
    },
    stop() {
      this.cut();
      server.stop(true);
    },
  };
}
