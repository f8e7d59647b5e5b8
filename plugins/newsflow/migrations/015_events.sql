-- 015: events above stories, and citations. Every story belongs to exactly one event
-- (alone: its own event), assigned in the write transaction that creates or changes the
-- story (newsflow.events); the citations of every article ("Via Reuters, NBC News & Sunday
-- Times", "according to Reuters", "(AP) -") in news.article_citations (newsflow.citations).
-- The change feed gains event rows and the event columns. Design: docs/events.md.
-- Forward-only: never edit a migration that has shipped; add a new numbered file.
--
-- Existing stories get no event here: run `newsflow events rebuild` once after upgrading
-- (resumable; new stories are assigned as they are loaded).

CREATE TABLE news.events (
    id                 bigserial   PRIMARY KEY,
    label              text,                          -- a representative title: the earliest story's
    label_story_id     bigint,
    first_published_at timestamptz,
    last_published_at  timestamptz,
    story_count        integer     NOT NULL DEFAULT 0,
    outlet_count       integer     NOT NULL DEFAULT 0,
    outlets            text[]      NOT NULL DEFAULT '{}',
    languages          text[]      NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX events_last_published_idx ON news.events (last_published_at DESC, id DESC);
CREATE INDEX events_biggest_idx        ON news.events (outlet_count DESC, last_published_at DESC);
CREATE INDEX events_outlets_idx        ON news.events USING gin (outlets);

-- One row per story: its event, and the signature it was compared by (entities and numbers
-- as look-up keys under a GIN index: candidates are an index look-up, never a scan). Each key
-- carries its day, so a look-up reads only the posting lists of the window's days: a name
-- that is in every tenth story of the year costs the same as a rare one.
CREATE TABLE news.event_stories (
    story_id        bigint      PRIMARY KEY REFERENCES news.stories (id) ON DELETE CASCADE,
    event_id        bigint      REFERENCES news.events (id),  -- NULL only while a rebuild places it
    published_at    timestamptz NOT NULL,            -- window key (first seen when undated)
    language        text        NOT NULL,            -- base language ('en'); '' when unknown
    terms           text[]      NOT NULL,            -- content words of title + lede
    entities        text[]      NOT NULL,
    numbers         text[]      NOT NULL,
    keys            text[]      NOT NULL,            -- 'e:<entity>@<day>', 'n:<number>@<day>' (UTC day of published_at)
    score           real,                            -- the accepted link's score; NULL: founded the event
    linked_story_id bigint,                          -- the story that link was to
    assigned_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    rebuild_pending boolean     NOT NULL DEFAULT false  -- `newsflow events rebuild` has yet to place it
);
CREATE INDEX event_stories_pending_idx ON news.event_stories (published_at, story_id) WHERE rebuild_pending;
CREATE INDEX event_stories_event_idx ON news.event_stories (event_id);
CREATE INDEX event_stories_keys_idx  ON news.event_stories USING gin (keys);
CREATE INDEX event_stories_time_idx  ON news.event_stories (language, published_at);

-- How many placed stories carry each key on each day: a look-up skips the keys too common
-- in its window (NEWSFLOW_EVENT_KEY_MAX_STORIES), whose posting lists would make it slow and
-- whose stories share little but a famous name. Counts only grow with placements and shrink
-- when a story is placed again (a rebuild); a deleted story's keys stay counted (harmless:
-- a count too high only makes a key look commoner than it is).
CREATE TABLE news.event_keys (
    key     text    NOT NULL,                        -- 'e:<entity>' or 'n:<number>', no day
    day     date    NOT NULL,
    stories integer NOT NULL,
    PRIMARY KEY (key, day)
);

-- Attributions in an article's text, in text order.
CREATE TABLE news.article_citations (
    article_id  bigint  NOT NULL REFERENCES news.articles (id) ON DELETE CASCADE,
    position    integer NOT NULL,                    -- character offset of the name in the body
    cited_name  text    NOT NULL,                    -- as written ("Sunday Times")
    publisher   text,                                -- the matched publisher (a feed's), when known
    kind        text    NOT NULL CHECK (kind IN ('via', 'according_to', 'told', 'reports', 'dateline', 'credit')),
    PRIMARY KEY (article_id, position)
);
CREATE INDEX article_citations_publisher_idx ON news.article_citations (publisher) WHERE publisher IS NOT NULL;

-- The change feed: event rows, and the event of a story row.
ALTER TABLE news.changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE news.changes ADD CONSTRAINT changes_entity_check CHECK (entity IN ('article', 'story', 'event'));
ALTER TABLE news.changes
    ADD COLUMN event_id          bigint,    -- story: its event now; merged event: the event it went into
    ADD COLUMN previous_event_id bigint;    -- story: its event before this transaction

-- An event's label, dates, counts, outlets and languages from its stories; an event left
-- without stories is deleted. Called by newsflow.storage.events after every membership
-- change, and by the trigger below when stories are deleted.
CREATE FUNCTION news.refresh_events(event_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF event_ids IS NULL OR cardinality(event_ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE news.events e SET
        label = l.title, label_story_id = l.story_id,
        first_published_at = m.first_at, last_published_at = m.last_at,
        story_count = m.n, languages = m.languages,
        outlets = coalesce(o.outlets, '{}'), outlet_count = coalesce(cardinality(o.outlets), 0),
        updated_at = clock_timestamp()
    FROM (SELECT es.event_id, count(*) AS n, min(es.published_at) AS first_at,
                 max(es.published_at) AS last_at,
                 array_agg(DISTINCT es.language ORDER BY es.language) AS languages
          FROM news.event_stories es WHERE es.event_id = ANY (event_ids) GROUP BY es.event_id) m
    LEFT JOIN LATERAL (
        SELECT array_agg(DISTINCT so.publisher ORDER BY so.publisher) AS outlets
        FROM news.event_stories es JOIN news.story_outlets so ON so.story_id = es.story_id
        WHERE es.event_id = m.event_id) o ON true
    LEFT JOIN LATERAL (
        SELECT es.story_id, s.title FROM news.event_stories es JOIN news.stories s ON s.id = es.story_id
        WHERE es.event_id = m.event_id ORDER BY es.published_at, es.story_id LIMIT 1) l ON true
    WHERE e.id = m.event_id;
    DELETE FROM news.events e WHERE e.id = ANY (event_ids)
        AND NOT EXISTS (SELECT 1 FROM news.event_stories es WHERE es.event_id = e.id);
END $$;

-- A story deleted (re-clustering, a purge) leaves its event: the event is refreshed, or
-- deleted when it was alone.
CREATE FUNCTION news.event_stories_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM news.refresh_events(ARRAY(SELECT DISTINCT event_id FROM old_rows));
    RETURN NULL;
END $$;
CREATE TRIGGER event_stories_del AFTER DELETE ON news.event_stories
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION news.event_stories_after_delete();

-- Outlets arrive after the story (an entry points at its article once the article is
-- stored, and news.story_outlets follows): the events of those stories follow too.
CREATE FUNCTION news.story_outlets_refresh_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM news.refresh_events(ARRAY(
        SELECT DISTINCT es.event_id FROM new_rows n JOIN news.event_stories es ON es.story_id = n.story_id
        WHERE es.event_id IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER story_outlets_events AFTER INSERT ON news.story_outlets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION news.story_outlets_refresh_events();

-- The consumers' contract ------------------------------------------------------------------

CREATE OR REPLACE VIEW news_api.stories AS
SELECT s.id, s.title, s.origin_article_id, s.origin_publisher, s.origin_basis,
       s.first_published_at, s.first_seen_at, s.sort_at, s.article_count, s.outlet_count,
       s.created_at, s.updated_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'publisher', o.publisher, 'article_id', o.article_id, 'relation', o.relation,
                   'url', o.url, 'published_at', o.published_at)
                 ORDER BY o.published_at NULLS LAST, o.publisher), '[]'::jsonb)
        FROM news.story_outlets o WHERE o.story_id = s.id) AS outlets,
       (SELECT es.event_id FROM news.event_stories es WHERE es.story_id = s.id) AS event_id
FROM news.stories s;
COMMENT ON COLUMN news_api.stories.event_id IS 'The event the story belongs to (news_api.events); NULL only until it is assigned (a story older than migration 015 before `newsflow events rebuild`).';

CREATE VIEW news_api.events AS
SELECT id, label, first_published_at, last_published_at, story_count, outlet_count, outlets,
       languages, created_at, updated_at
FROM news.events;
COMMENT ON VIEW news_api.events IS
    'Events: one happening (statement, vote, crash, match, rate decision) reported by one or more '
    'stories, each story one text and its copies. Every story is in exactly one event; a story alone '
    'is its own event. Definition and measured precision: docs/events.md.';
COMMENT ON COLUMN news_api.events.id IS 'Event id; when two events merge, the older id is kept (change feed: kind merged, event_id = the one kept).';
COMMENT ON COLUMN news_api.events.label IS 'A representative title: the earliest story''s title.';
COMMENT ON COLUMN news_api.events.first_published_at IS 'Publication of the earliest story (first seen when undated).';
COMMENT ON COLUMN news_api.events.last_published_at IS 'Publication of the latest story. Indexed: latest events first.';
COMMENT ON COLUMN news_api.events.story_count IS 'Stories (distinct texts with their copies) in the event.';
COMMENT ON COLUMN news_api.events.outlet_count IS 'Distinct outlets that carried any of its stories. Indexed with last_published_at: biggest events.';
COMMENT ON COLUMN news_api.events.outlets IS 'Those outlets, sorted. GIN-indexed: WHERE outlets @> ARRAY[''NBC News''].';
COMMENT ON COLUMN news_api.events.languages IS 'Base languages of its stories (en, de, ...; empty string when unknown). Stories of different languages are never put in one event.';
COMMENT ON COLUMN news_api.events.created_at IS 'When the event was created.';
COMMENT ON COLUMN news_api.events.updated_at IS 'Last time its stories changed.';

CREATE VIEW news_api.event_stories AS
SELECT es.event_id, es.story_id, s.title, s.origin_publisher, es.published_at, s.outlet_count,
       es.language, es.score, es.linked_story_id
FROM news.event_stories es JOIN news.stories s ON s.id = es.story_id;
COMMENT ON VIEW news_api.event_stories IS 'Which stories make up each event. All coverage of an event in order: WHERE event_id = :id ORDER BY published_at.';
COMMENT ON COLUMN news_api.event_stories.event_id IS 'The event.';
COMMENT ON COLUMN news_api.event_stories.story_id IS 'The story (news_api.stories; its outlets in news_api.story_members).';
COMMENT ON COLUMN news_api.event_stories.title IS 'The story''s title.';
COMMENT ON COLUMN news_api.event_stories.origin_publisher IS 'Where the story comes from (news_api.stories.origin_publisher).';
COMMENT ON COLUMN news_api.event_stories.published_at IS 'The story''s publication (its representative''s date; first seen when undated).';
COMMENT ON COLUMN news_api.event_stories.outlet_count IS 'Outlets that carried this story.';
COMMENT ON COLUMN news_api.event_stories.language IS 'Base language of the story (en, de, ...; empty when unknown).';
COMMENT ON COLUMN news_api.event_stories.score IS 'Similarity of the link that put the story in the event (docs/events.md); NULL for the story that founded it.';
COMMENT ON COLUMN news_api.event_stories.linked_story_id IS 'The story that link was to; NULL for the founder.';

CREATE VIEW news_api.citations AS
SELECT c.article_id, a.story_id, es.event_id, c.position, c.cited_name, c.publisher AS cited_publisher,
       c.kind, a.publisher AS citing_publisher, a.sort_at,
       ARRAY(SELECT DISTINCT so.story_id FROM news.event_stories e2
             JOIN news.story_outlets so ON so.story_id = e2.story_id
             WHERE e2.event_id = es.event_id AND so.publisher = c.publisher
             ORDER BY so.story_id) AS cited_story_ids
FROM news.article_citations c
JOIN news.articles a ON a.id = c.article_id
LEFT JOIN news.event_stories es ON es.story_id = a.story_id;
COMMENT ON VIEW news_api.citations IS
    'Who cited whom: attributions in an article''s text ("(Via Reuters, NBC News & Sunday Times)", '
    '"according to Reuters", "told NBC News", "the Sunday Times reports", "(AP) -"), in text order, '
    'each linked to the cited outlet''s stories in the same event.';
COMMENT ON COLUMN news_api.citations.article_id IS 'The citing article.';
COMMENT ON COLUMN news_api.citations.story_id IS 'The citing article''s story.';
COMMENT ON COLUMN news_api.citations.event_id IS 'The citing article''s event.';
COMMENT ON COLUMN news_api.citations.position IS 'Character offset of the cited name in the article body.';
COMMENT ON COLUMN news_api.citations.cited_name IS 'The cited outlet as written ("Sunday Times").';
COMMENT ON COLUMN news_api.citations.cited_publisher IS 'The publisher newsflow knows under that name (a feed''s publisher, e.g. The Sunday Times); NULL when none matches.';
COMMENT ON COLUMN news_api.citations.kind IS 'via (a credit line), according_to, told, reports ("X reported"), dateline ("(AP) -"), credit ("X contributed to this report").';
COMMENT ON COLUMN news_api.citations.citing_publisher IS 'Publisher of the citing article.';
COMMENT ON COLUMN news_api.citations.sort_at IS 'The citing article''s sort_at (its publication, never after its fetch).';
COMMENT ON COLUMN news_api.citations.cited_story_ids IS 'Stories of the same event carried by the cited publisher (empty when it is unknown or carried none).';

CREATE OR REPLACE VIEW news_api.changes AS
SELECT seq, changed_at, entity, entity_id, kind, story_id, previous_story_id, fields,
       event_id, previous_event_id
FROM news.changes;
COMMENT ON COLUMN news_api.changes.entity IS 'article, story or event.';
COMMENT ON COLUMN news_api.changes.kind IS 'Net effect within one transaction: created, updated, deleted; stories and events also merged (deleted, members now in story_id / event_id); stories also split (lost members to another story).';
COMMENT ON COLUMN news_api.changes.fields IS 'updated: what changed. Article: body, title, story, relation, metadata. Story: title, origin, dates, members, event. Event: stories.';
COMMENT ON COLUMN news_api.changes.event_id IS 'Story: its event after the change (fields has event when it moved). Merged event: the event its stories went to.';
COMMENT ON COLUMN news_api.changes.previous_event_id IS 'Story: its event before the transaction (NULL for a new story).';

COMMENT ON TABLE news.events IS 'Internal: events (one happening, many stories). Consumers: news_api.events.';
COMMENT ON TABLE news.event_stories IS 'Internal: each story''s event and signature. Consumers: news_api.event_stories.';
COMMENT ON TABLE news.event_keys IS 'Internal: stories per event look-up key and day (which keys are too common to look up by).';
COMMENT ON TABLE news.article_citations IS 'Internal: attributions in article texts. Consumers: news_api.citations.';

-- The reader role reads the new views (default privileges cover objects this role creates;
-- granted again explicitly for a migrating role that differs from the one of 010).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_reader') THEN
        GRANT SELECT ON news_api.events, news_api.event_stories, news_api.citations,
                        news_api.stories, news_api.changes TO newsflow_reader;
    END IF;
END $$;

-- Views were added: the contract's minor version.
CREATE OR REPLACE VIEW news_api.schema_version AS
SELECT '1.2'::text AS version, 1 AS major, 2 AS minor,
       (SELECT max(version) FROM news.schema_migrations) AS migration;
