-- 00008: repos whose index may have missed commits, waiting to be fetched whole again
-- (com.atproto.sync.getRepo). A repo lands here in the batch that found why: a #sync event, a
-- commit whose `since` is not the last revision indexed (a gap), a commit too big to carry its
-- blocks, or one whose ops and tree disagree (Sync 1.1). `reason` and `seq` are the first seen.
create table repo_resync (
  actor_id integer primary key,
  reason text not null check (reason in ('sync-event', 'rev-gap', 'too-big', 'bad-proof')),
  seq bigint not null,
  found_at timestamptz not null default now()
);
