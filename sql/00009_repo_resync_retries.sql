-- 00009: whole-repo fetches are retried, and a repo marked again while its fetch runs is fetched
-- again. `marked_at` is the last time a batch found a reason (the first reason and seq stay);
-- the resync worker (src/pipeline/repo-resync.ts) removes a row only if it was not marked after
-- the fetch began. A failed fetch backs off through `not_before`; `last_error` says why.
alter table repo_resync
  add column marked_at timestamptz not null default now(),
  add column attempts integer not null default 0,
  add column not_before timestamptz not null default now(),
  add column last_error text;
create index repo_resync_due on repo_resync (not_before);
