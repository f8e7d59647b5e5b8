-- 018: the events look-up index is updated directly, without a pending list.
--
-- A GIN index with fastupdate (PostgreSQL's default) puts new entries in a pending list that
-- is merged into the index only by VACUUM or when it reaches gin_pending_list_limit (4 MB:
-- about 9,000 placed stories, three days of news at 2,740 a day; autovacuum's insert trigger
-- comes only after 20% of the table). Every search scans the whole pending list, and the
-- candidate look-up of the events assignment is such a search, once per new story: at 1M
-- placed stories it took 65 ms (median) with 3,000 pending entries against 1.6 ms with none
-- (docs/events.md, bench/events_speed.py). Updated directly, an insert costs a few index
-- descents (one per key, about 11) and every look-up stays at the second figure.

ALTER INDEX news.event_stories_keys_idx SET (fastupdate = off);
-- what is pending now goes into the index (later inserts bypass the list)
SELECT gin_clean_pending_list('news.event_stories_keys_idx'::regclass);
