-- 00005: the CIDs of a reply's root and parent, as the record names them.
-- A post view must give back its record's reply references ({uri, cid} for root and parent)
-- even when those posts were deleted or never indexed; only replies carry them (null otherwise).
alter table posts
  add column reply_root_cid text,
  add column reply_parent_cid text;
