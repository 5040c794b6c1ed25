-- 00001: service state.
-- The firehose cursor, per relay: the watermark below which every event is committed. It is
-- written in the same transaction as the batch it covers, so it never runs ahead of the data.
create table firehose_cursor (
  relay_url text primary key,
  seq bigint not null check (seq >= 0),
  event_time timestamptz,
  updated_at timestamptz not null default now()
);
