-- 00003: what the identity worker learns about each actor, and how it walks the queue.
--
-- actors.handle (from 00002) now holds only a handle verified both ways (DID document ->
-- handle -> same DID); null means unknown or invalid, and views show `handle.invalid`. What the
-- DID document claims is kept apart in claimed_handle. A handle belongs to at most one actor:
-- when two DIDs claim one handle, the one verified last (the one it resolves to now) keeps it.
alter table actors
  add column claimed_handle text collate "C",
  add column handle_verified_at timestamptz,
  add column pds_endpoint text,
  add column signing_key text,
  -- null: never resolved; ok; or why the DID has no usable document
  add column did_status text check (did_status in ('ok', 'tombstoned', 'not-found', 'bad-document', 'unsupported-did', 'unresolvable')),
  -- the last time identity work finished for this actor (success, definitive failure, or parked)
  add column identity_checked_at timestamptz,
  -- why the last attempt failed, a fixed reason; null after a success
  add column identity_error text;

create unique index actors_handle_unique on actors (handle) where handle is not null;
-- the refresh sweep walks the stalest identities first, skipping those never refreshed (dead
-- DIDs, deleted accounts) without reading them
create index actors_identity_refresh on actors (identity_checked_at nulls first)
  where (did_status is null or did_status not in ('tombstoned', 'unsupported-did')) and status is distinct from 'deleted';

-- Workers take the due rows in not_before order. A taken row is leased (not_before moves to the
-- end of the lease), so it is invisible to other takers until the lease ends; success deletes it,
-- a retry moves not_before to the end of the backoff.
create index identity_queue_not_before on identity_queue (not_before);
