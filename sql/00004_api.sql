-- 00004: indexes for the XRPC read path.
--
-- Feeds and lists are ordered newest first by a record's sort time, the earlier of its createdAt
-- and when it was indexed (a backdated record sorts at its claimed time, a future-dated one at
-- arrival), with (author, rkey) as tie-breakers so cursors are stable. Each index below serves
-- one page query as an index range scan, newest first, that stops after `limit` rows.

-- getAuthorFeed (posts and reposts of one author), getTimeline (per followed author, merged)
create index posts_author_sort on posts (author_id, (least(created_at, indexed_at)) desc, rkey desc);
create index reposts_author_sort on reposts (author_id, (least(created_at, indexed_at)) desc, rkey desc);
-- getActorLikes
create index likes_author_sort on likes (author_id, (least(created_at, indexed_at)) desc, rkey desc);
-- getLikes / getRepostedBy: one post's likes and reposts, newest first
create index likes_subject_sort on likes (subject_actor_id, subject_rkey, (least(created_at, indexed_at)) desc, author_id desc, rkey desc);
create index reposts_subject_sort on reposts (subject_actor_id, subject_rkey, (least(created_at, indexed_at)) desc, author_id desc, rkey desc);
-- getQuotes
create index posts_quote_sort on posts (quote_actor_id, quote_rkey, (least(created_at, indexed_at)) desc, author_id desc, rkey desc)
  where quote_actor_id is not null;
-- getPostThread: the whole thread under a root in one scan
create index posts_reply_root on posts (reply_root_actor_id, reply_root_rkey) where reply_root_actor_id is not null;
-- getFollows / getFollowers / getBlocks, and the viewer's relationships (author, subject) pairs
create index follows_author_sort on follows (author_id, (least(created_at, indexed_at)) desc, rkey desc);
create index follows_author_subject on follows (author_id, subject_actor_id);
create index follows_subject_sort on follows (subject_actor_id, (least(created_at, indexed_at)) desc, author_id desc, rkey desc);
create index blocks_author_sort on blocks (author_id, (least(created_at, indexed_at)) desc, rkey desc);
create index blocks_author_subject on blocks (author_id, subject_actor_id);
-- getList: items of one list, newest first
create index list_items_list_sort on list_items (ref_actor_id, ref_rkey, indexed_at desc, author_id desc, rkey desc);
-- list blocks subscribed to a list (blockingByList)
create index list_blocks_list on list_blocks (ref_actor_id, ref_rkey);

-- searchPosts: full text over the post text; 'simple' because posts come in every language
create index posts_text_search on posts using gin (to_tsvector('simple'::regconfig, text));
-- searchActors: display name and description; handles are matched by prefix on actors.handle
-- (its "C" collation lets the existing unique btree serve `like 'prefix%'`)
create index profiles_text_search on profiles using gin (
  to_tsvector('simple'::regconfig, coalesce(record->>'displayName', '') || ' ' || coalesce(record->>'description', ''))
) where rkey = 'self';

-- The subject indexes of 00002 are prefixes of the *_subject_sort indexes above: every query they
-- served, those serve; dropping them saves a btree write per like, repost and follow.
drop index likes_subject;
drop index reposts_subject;
drop index follows_subject;
