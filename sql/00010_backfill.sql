-- 00010: the backfill's durable queue (src/backfill/). Hosts come from a relay's listHosts (a
-- 'relay' row) or are named by the operator; each host's listRepos fills `backfill_repos`, one row per repo, and
-- the worker imports every queued repo with getRepo from the PDS its DID document names. A host's
-- `list_cursor` is the listRepos cursor of the next page, so an enumeration stopped part way goes
-- on from that page. A repo is 'queued' until imported ('done', with the revision imported and its
-- record count), listed as not active ('inactive': recorded, not fetched), or given up after its
-- retries ('failed'); `not_before` is its backoff, `last_error` the reason of its last failure.
create table backfill_hosts (
  host text primary key,
  kind text not null default 'pds' check (kind in ('relay', 'pds')),
  state text not null default 'listing' check (state in ('listing', 'listed', 'failed')),
  list_cursor text,
  repos integer not null default 0,
  failures integer not null default 0,
  not_before timestamptz not null default now(),
  last_error text,
  listed_at timestamptz
);

create table backfill_repos (
  did text primary key,
  host text,
  state text not null default 'queued' check (state in ('queued', 'done', 'inactive', 'failed')),
  listed_rev text,
  rev text,
  records integer,
  attempts integer not null default 0,
  not_before timestamptz not null default now(),
  last_error text,
  updated_at timestamptz not null default now()
);
-- the repos due, read host by host (a host's share of the queue at a time)
create index backfill_repos_due on backfill_repos (host, not_before) where state = 'queued';
create index backfill_repos_state on backfill_repos (state);
