/**
 * What the pipeline does for a DID the identity worker should look at: insert the actor and
 * enqueue it, in one transaction (the upsert of batch-writer.ts). Answers the actor id.
 */
import type { Database } from '../../src/db/database.ts';

export const enqueueIdentity = (db: Database, did: string, reason: 'new' | 'identity' = 'new'): Promise<number> =>
  db.begin(async (sql) => {
    const [row] = await sql<Array<{ id: number }>>`
      insert into actors (did) values (${did}) on conflict (did) do update set did = excluded.did returning id`;
    await sql`
      insert into identity_queue (actor_id, reason) values (${row!.id}, ${reason})
      on conflict (actor_id) do update set reason = excluded.reason, not_before = now()`;
    return row!.id;
  });
