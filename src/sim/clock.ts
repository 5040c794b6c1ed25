/**
 * The simulator's own clock, so that output depends on the seed and never on wall time.
 *
 * Owns: simulated microseconds since the Unix epoch.
 * Promises: strictly increasing; every `tid()` is unique across the whole simulation (so revs and
 * record keys never collide, in one repo or across repos); `iso()` is a valid atproto datetime.
 */
import * as TID from '@atcute/tid';

export const DEFAULT_EPOCH_MS = Date.UTC(2025, 0, 1);

export class SimClock {
  #us: number;

  constructor(epochMs: number = DEFAULT_EPOCH_MS) {
    this.#us = epochMs * 1000;
  }

  get micros(): number {
    return this.#us;
  }

  advance(micros: number): void {
    this.#us += Math.max(1, Math.floor(micros));
  }

  /** A fresh TID (advances the clock by 1 µs). */
  tid(clockId: number): string {
    this.#us += 1;
    return TID.create(this.#us, clockId & 1023);
  }

  iso(): string {
    return new Date(Math.floor(this.#us / 1000)).toISOString();
  }
}
