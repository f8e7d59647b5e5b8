-- 019: the events rule weighs how rare a shared name is in the window (docs/events.md#the-rule).
--
-- news.event_keys already counts, per day, the placed stories carrying each name and number;
-- the rarity also needs how many stories the window holds. They are counted under the key
-- '*', and every placed story carries '*@<day>' in its keys, so that placing a story again
-- un-counts it like its names (the look-up never searches '*'). Stories waiting for a
-- rebuild are no longer counted (a rebuild compares a story with those placed before it).

-- stories an interrupted rebuild left waiting: out of the counts, their keys cleared
UPDATE news.event_keys k SET stories = k.stories - old.n
FROM (SELECT split_part(x, '@', 1) AS key, split_part(x, '@', 2)::date AS day, count(*) AS n
      FROM news.event_stories es, unnest(es.keys) x
      WHERE es.rebuild_pending AND split_part(x, '@', 2) <> ''
      GROUP BY 1, 2) old
WHERE k.key = old.key AND k.day = old.day;
UPDATE news.event_stories SET keys = '{}' WHERE rebuild_pending AND keys <> '{}';

-- placed stories: counted under '*' on their day (the UTC day of published_at, as their keys)
UPDATE news.event_stories
SET keys = keys || ('*@' || (published_at AT TIME ZONE 'UTC')::date::text)
WHERE NOT rebuild_pending;
INSERT INTO news.event_keys (key, day, stories)
SELECT '*', (published_at AT TIME ZONE 'UTC')::date, count(*) FROM news.event_stories
WHERE NOT rebuild_pending GROUP BY 2
ON CONFLICT (key, day) DO UPDATE SET stories = excluded.stories;

COMMENT ON COLUMN news.event_stories.keys IS
    'Look-up keys ''e:<entity>@<day>'', ''n:<number>@<day>'', and ''*@<day>'' (counted, never looked up); empty while a rebuild waits to place the story.';
COMMENT ON TABLE news.event_keys IS
    'Internal: placed stories per event look-up key and day (which keys are too common to look up by, how rare a name is); key ''*'': all placed stories of the day.';

-- The link score of news_api.event_stories is now the rule's probability, time-weighted
-- (0-1; docs/events.md#the-rule): the contract's minor version. Rows placed before keep the
-- former additive score until `newsflow events rebuild` places them again.
COMMENT ON COLUMN news_api.event_stories.score IS
    'Link score that put the story in its event: the rule''s probability, halved every NEWSFLOW_EVENT_HALF_LIFE_HOURS between the stories (0-1; docs/events.md). NULL for the story that founded it. Rows placed before migration 019 hold the former additive score until an events rebuild.';
CREATE OR REPLACE VIEW news_api.schema_version AS
SELECT '1.3'::text AS version, 1 AS major, 3 AS minor,
       (SELECT max(version) FROM news.schema_migrations) AS migration;
