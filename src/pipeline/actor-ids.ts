/**
 * DID -> actor id, for a whole batch at once: the bulk "user creation" of Aqueduct.
 *
 * `resolve(sql, dids)` answers from a bounded in-memory cache first, then runs one statement
 * for the rest: insert the unknown DIDs (`on conflict do nothing`) and read back the ids of those
 * that already existed. No event ever waits for its author's row: the row is created in the
 * batch that first sees the DID. Ids learnt inside a transaction enter the cache only through
 * `remember` after it commits, so a rolled-back batch cannot leave a phantom id behind.
 * The cache keeps `capacity` DIDs with CLOCK eviction (an actor looked up again stays); a DID costs
 * ~30 bytes in it (DidSlots and an Int32Array), not a string and a Map entry.
 */
import type { TransactionSql } from '../db/database.ts';
import { textArray } from '../db/pg-array.ts';
import { DidSlots, withLength } from '../lib/did-slots.ts';

export interface ResolvedActors {
  readonly ids: ReadonlyMap<string, number>;
  /** DIDs this statement created (first seen now): they go to the identity queue. */
  readonly created: readonly string[];
  /** Entries to `remember` once the transaction has committed. */
  readonly learnt: ReadonlyArray<readonly [string, number]>;
}

export class ActorIds {
  readonly #slots: DidSlots;
  #idOfSlot: Int32Array;

  constructor(capacity = 200_000) {
    this.#slots = new DidSlots(capacity);
    this.#idOfSlot = new Int32Array(this.#slots.allocated);
  }

  async resolve(sql: TransactionSql, dids: Iterable<string>): Promise<ResolvedActors> {
    const ids = new Map<string, number>();
    const unknown: string[] = [];
    for (const did of dids) {
      const slot = this.#slots.find(did);
      if (slot < 0) unknown.push(did);
      else ids.set(did, this.#idOfSlot[slot]!);
    }
    if (unknown.length === 0) return { ids, created: [], learnt: [] };

    unknown.sort();
    const rows = await sql<{ id: number; did: string; created: boolean }[]>`
      with input as (select did from unnest(${textArray(unknown)}::text[]) as t(did)),
      inserted as (
        insert into actors (did) select did from input order by did
        on conflict (did) do nothing
        returning id, did
      )
      select id, did, true as created from inserted
      union all
      select a.id, a.did, false as created from actors a join input using (did)`;
    const created: string[] = [];
    const learnt: Array<readonly [string, number]> = [];
    for (const row of rows) {
      ids.set(row.did, row.id);
      learnt.push([row.did, row.id]);
      if (row.created) created.push(row.did);
    }
    const missing = unknown.filter((did) => !ids.has(did));
    if (missing.length) {
      // Another writer inserted these after our snapshot began: read them now.
      for (const row of await sql<{ id: number; did: string }[]>`select id, did from actors where did = any(${textArray(missing)}::text[])`) {
        ids.set(row.did, row.id);
        learnt.push([row.did, row.id]);
      }
    }
    return { ids, created, learnt };
  }

  remember(entries: ReadonlyArray<readonly [string, number]>): void {
    for (const [did, id] of entries) {
      let slot = this.#slots.find(did);
      if (slot < 0) {
        slot = this.#slots.add(did);
        if (this.#slots.allocated > this.#idOfSlot.length) this.#idOfSlot = withLength(this.#idOfSlot, this.#slots.allocated);
      }
      this.#idOfSlot[slot] = id;
    }
  }
}
