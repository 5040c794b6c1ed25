-- 00007: what the reference AppView's views show and the index did not keep.
-- A repost keeps its record's CID, which a feed's reasonRepost names. Null for reposts indexed
-- before this migration until they are written again.
alter table reposts add column cid text;
-- The profiles that name a starter pack as the way their account joined (joinedAllTimeCount,
-- joinedWeekCount of a starter pack view): few profiles carry it, so the index is small.
create index profiles_joined_via_starter_pack on profiles ((record->'joinedViaStarterPack'->>'uri'))
  where rkey = 'self' and record ? 'joinedViaStarterPack';
