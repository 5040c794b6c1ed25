-- 00006: searchActors matches display names, no longer the words of descriptions.
-- The reference AppView's own database search does the same (a trigram index on displayName,
-- handles by prefix). The old index held every word of every description: ~12 entries per
-- profile against ~1-3 for a name, and its upkeep was PostgreSQL's largest cost per new account
-- (bench storm, three alternating rounds: 37.1 -> 29.5 us of PostgreSQL per new account, +8.9%
-- new accounts/s; docs/performance.md, session 8).
drop index profiles_text_search;
create index profiles_name_search on profiles using gin (
  to_tsvector('simple'::regconfig, coalesce(record->>'displayName', ''))
) where rkey = 'self';
