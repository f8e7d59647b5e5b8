-- 010: the consumers' contract. A read-only schema `news_api` (views and functions, every
-- column commented, a version consumers can check), full-text search, a change feed in
-- commit order with corrections (revisions) and deletions (tombstones), who carried what
-- as a table maintained at load time, and the NOLOGIN role `newsflow_reader`.
-- Design and measurements: README "For consumers" and docs/consumers.md.
-- Forward-only: never edit a migration that has shipped; add a new numbered file.
--
-- On a database that already holds articles this migration rewrites news.articles (two
-- stored generated columns: to_tsvector of every article, ~0.4 ms each, under ACCESS
-- EXCLUSIVE) and builds a GIN index: minutes per 100k articles. Plan a maintenance window.
--
-- Lock order (no writer ever deadlocks): a transaction that writes articles or stories
-- takes the load lock (storage.locks.take_load_lock) first, then the changes lock
-- (news.changes_lock(), taken by every trigger below and by storage.locks.take_changes_lock).

-- Functions, new columns and tables ------------------------------------------------------

-- Text-search configuration for an article's language ('en', 'en-US', 'de_DE', ...).
-- IMMUTABLE (a CASE over regconfig constants), so it may appear in a generated column.
-- Changing this mapping later does not recompute stored vectors: a later migration
-- must rewrite them (UPDATE news.articles SET body = body) after replacing it.
CREATE FUNCTION news.ts_config(language text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE lower(split_part(replace(coalesce(language, ''), '_', '-'), '-', 1))
    WHEN 'en' THEN 'english'::regconfig     WHEN 'de' THEN 'german'::regconfig
    WHEN 'fr' THEN 'french'::regconfig      WHEN 'es' THEN 'spanish'::regconfig
    WHEN 'it' THEN 'italian'::regconfig     WHEN 'pt' THEN 'portuguese'::regconfig
    WHEN 'nl' THEN 'dutch'::regconfig       WHEN 'da' THEN 'danish'::regconfig
    WHEN 'sv' THEN 'swedish'::regconfig     WHEN 'no' THEN 'norwegian'::regconfig
    WHEN 'nb' THEN 'norwegian'::regconfig   WHEN 'nn' THEN 'norwegian'::regconfig
    WHEN 'fi' THEN 'finnish'::regconfig     WHEN 'hu' THEN 'hungarian'::regconfig
    WHEN 'ro' THEN 'romanian'::regconfig    WHEN 'ru' THEN 'russian'::regconfig
    WHEN 'tr' THEN 'turkish'::regconfig     WHEN 'el' THEN 'greek'::regconfig
    WHEN 'id' THEN 'indonesian'::regconfig  WHEN 'ga' THEN 'irish'::regconfig
    WHEN 'lt' THEN 'lithuanian'::regconfig  WHEN 'ca' THEN 'catalan'::regconfig
    WHEN 'eu' THEN 'basque'::regconfig      WHEN 'hy' THEN 'armenian'::regconfig
    WHEN 'ar' THEN 'arabic'::regconfig      WHEN 'hi' THEN 'hindi'::regconfig
    WHEN 'ne' THEN 'nepali'::regconfig      WHEN 'sr' THEN 'serbian'::regconfig
    WHEN 'ta' THEN 'tamil'::regconfig       WHEN 'yi' THEN 'yiddish'::regconfig
    ELSE 'simple'::regconfig END;

-- updated_at first (one UPDATE while the table is still narrow), then the generated
-- columns (one rewrite).
ALTER TABLE news.articles ADD COLUMN updated_at timestamptz;
UPDATE news.articles SET updated_at = created_at;

-- Title A, lead paragraph (first line of the normalised body) B, rest of the body D.
-- The body is cut at 100,000 characters: a tsvector cannot exceed 1 MB, and an error in
-- a generated column would make the article impossible to insert.
-- sort_at: never NULL, never later than the fetch (a future-dated item would otherwise
-- stay "latest" for days).
ALTER TABLE news.articles
    ALTER COLUMN updated_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN updated_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN fetched_at SET DEFAULT clock_timestamp(),
    ADD COLUMN revision integer NOT NULL DEFAULT 1,
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector(news.ts_config(language), coalesce(title, '')), 'A')
     || setweight(to_tsvector(news.ts_config(language), split_part(body, E'\n', 1)), 'B')
     || setweight(to_tsvector(news.ts_config(language),
                  substr(body, length(split_part(body, E'\n', 1)) + 2, 100000)), 'D')) STORED,
    ADD COLUMN sort_at timestamptz GENERATED ALWAYS AS (least(published_at, fetched_at)) STORED NOT NULL;

-- Keep the heap narrow: body and search_vector go to TOAST as soon as a row passes 256
-- bytes, so scans that touch many rows (search candidates, counts) read ~300 bytes per
-- row instead of kilobytes.
ALTER TABLE news.articles SET (toast_tuple_target = 256);

ALTER TABLE news.stories
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
    ALTER COLUMN updated_at SET DEFAULT clock_timestamp(),
    ADD COLUMN outlet_count  integer     NOT NULL DEFAULT 0,
    ADD COLUMN first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN sort_at timestamptz GENERATED ALWAYS AS (least(first_published_at, first_seen_at)) STORED NOT NULL;

-- Corrections: the item's own "updated" date (a change re-fetches the page), and an
-- operator's permission to load an article that was deleted (newsflow requeue --allow-deleted).
ALTER TABLE news.entries
    ADD COLUMN feed_updated_at timestamptz,
    ADD COLUMN allow_deleted   boolean NOT NULL DEFAULT false;

-- Who carried what: was a view over articles x entries x feeds (003); now a table kept
-- current by the triggers below, so reading it costs time proportional to the stories read.
DROP VIEW news.story_outlets;
CREATE TABLE news.story_outlets (
    story_id     bigint NOT NULL REFERENCES news.stories (id) ON DELETE CASCADE,
    publisher    text   NOT NULL,
    article_id   bigint NOT NULL REFERENCES news.articles (id) ON DELETE CASCADE,
    relation     text,          -- original/copy/excerpt/update, or 'identical'
    url          text,
    published_at timestamptz,
    PRIMARY KEY (story_id, publisher)
);

-- Change log. seq is strictly increasing in COMMIT order (see news.changes_lock()).
-- CACHE 1 is essential: with a per-session cache two sessions hold disjoint ranges and
-- the lock no longer orders the numbers.
CREATE SEQUENCE news.changes_seq CACHE 1;
CREATE TABLE news.changes (
    seq               bigint      PRIMARY KEY,
    changed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),  -- drawn under the changes lock
    xact_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    entity            text        NOT NULL CHECK (entity IN ('article', 'story')),
    entity_id         bigint      NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('created', 'updated', 'deleted', 'merged', 'split')),
    story_id          bigint,     -- article: its story now; merged story: the story it went into
    previous_story_id bigint,     -- article: its story before this transaction
    fields            text[],     -- updated: what changed (article: body, title, story, relation, metadata)
    UNIQUE (xact_id, entity, entity_id)   -- one row per entity per transaction (net effect)
);
ALTER SEQUENCE news.changes_seq OWNED BY news.changes.seq;

-- The previous versions of corrected articles (the article row keeps its id and holds the
-- current version; revision counts from 1).
CREATE TABLE news.article_revisions (
    article_id   bigint      NOT NULL REFERENCES news.articles (id) ON DELETE CASCADE,
    revision     integer     NOT NULL,
    title        text,
    body         text        NOT NULL,
    content_hash text        NOT NULL,
    word_count   integer     NOT NULL,
    published_at timestamptz,
    language     text,
    authors      text[]      NOT NULL DEFAULT '{}',
    body_source  text        NOT NULL,
    fetched_at   timestamptz NOT NULL,             -- when this version was loaded
    replaced_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (article_id, revision)
);

-- Deleted articles: what consumers must delete downstream, and what must not come back.
-- Written by the delete trigger; the reason comes from the session setting
-- newsflow.delete_reason (storage.tombstones.purge sets it).
CREATE TABLE news.tombstones (
    article_id    bigint      PRIMARY KEY,
    canonical_url text        NOT NULL,
    url           text        NOT NULL,
    publisher     text        NOT NULL,
    story_id      bigint,
    content_hash  text        NOT NULL,            -- a later copy with this very text is blocked too
    deleted_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    reason        text        NOT NULL,
    lifted_at     timestamptz                      -- an operator allowed it back (requeue --allow-deleted)
);
CREATE INDEX tombstones_canonical_idx ON news.tombstones (canonical_url) WHERE lifted_at IS NULL;
CREATE INDEX tombstones_hash_idx ON news.tombstones (content_hash) WHERE lifted_at IS NULL;
CREATE INDEX tombstones_deleted_idx ON news.tombstones (deleted_at);

-- Derived data for rows that already exist --------------------------------------------------

INSERT INTO news.story_outlets (story_id, publisher, article_id, relation, url, published_at)
SELECT DISTINCT ON (a.story_id, f.publisher)
       a.story_id, f.publisher, a.id,
       CASE WHEN f.publisher = a.publisher THEN a.story_relation ELSE 'identical' END,
       e.link, coalesce(e.published_at, a.published_at)
FROM news.articles a
JOIN news.entries e ON e.article_id = a.id
JOIN news.feeds f   ON f.id = e.feed_id
WHERE a.story_id IS NOT NULL
ORDER BY a.story_id, f.publisher, (f.publisher = a.publisher) DESC,
         coalesce(e.published_at, a.published_at), e.id;

UPDATE news.stories s
SET outlet_count = coalesce(o.n, 0), article_count = m.n, first_seen_at = m.first_seen
FROM (SELECT story_id, count(*) AS n, min(fetched_at) AS first_seen
      FROM news.articles WHERE story_id IS NOT NULL GROUP BY story_id) m
LEFT JOIN (SELECT story_id, count(*) AS n FROM news.story_outlets GROUP BY story_id) o
       ON o.story_id = m.story_id
WHERE s.id = m.story_id;

-- What already exists is "created" in the change feed, so a consumer starting from seq 0
-- gets everything: stories first, then articles, each in id order.
INSERT INTO news.changes (seq, entity, entity_id, kind)
SELECT nextval('news.changes_seq'), 'story', id, 'created' FROM (SELECT id FROM news.stories ORDER BY id) s;
INSERT INTO news.changes (seq, entity, entity_id, kind, story_id)
SELECT nextval('news.changes_seq'), 'article', id, 'created', story_id
FROM (SELECT id, story_id FROM news.articles ORDER BY id) a;

-- Indexes ------------------------------------------------------------------------------------

CREATE INDEX articles_search_idx         ON news.articles USING gin (search_vector);
CREATE INDEX articles_publisher_sort_idx ON news.articles (publisher, sort_at DESC);
CREATE INDEX articles_language_sort_idx  ON news.articles (language, sort_at DESC);
CREATE INDEX articles_sort_idx           ON news.articles (sort_at DESC);
-- counts per day per publisher: an index-only scan of the window
CREATE INDEX articles_published_pub_idx  ON news.articles (published_at) INCLUDE (publisher);
DROP INDEX news.articles_published_idx;   -- subsumed by the one above
-- without it the planner expects one group per row (124k instead of 1.5k at 500k
-- articles) and sorts on disk instead of hashing in memory: 97 ms -> 40 ms
CREATE STATISTICS news.articles_pub_day (ndistinct)
    ON publisher, ((published_at AT TIME ZONE 'UTC')::date) FROM news.articles;
-- entry link -> article (hash: equality only, and no 2.7 kB b-tree key limit for long URLs)
CREATE INDEX entries_link_idx            ON news.entries USING hash (link);
CREATE INDEX stories_sort_idx            ON news.stories (sort_at DESC);
CREATE INDEX stories_updated_idx         ON news.stories (updated_at);
CREATE INDEX story_outlets_article_idx   ON news.story_outlets (article_id);
-- the FKs stories -> articles had no index on the referencing side: every article DELETE
-- scanned news.stories twice (134 ms of a 138 ms delete at 311k stories)
CREATE INDEX stories_representative_idx  ON news.stories (representative_id);
CREATE INDEX stories_origin_article_idx  ON news.stories (origin_article_id);
-- merge/split detection: this transaction's article moves out of a story
CREATE INDEX changes_moves_idx           ON news.changes (xact_id, previous_story_id)
    WHERE entity = 'article' AND previous_story_id IS NOT NULL;

-- Triggers: change log, outlets and counts, tombstones, NOTIFY ----------------------------

-- Every writer of articles/stories takes this transaction-scoped advisory lock before it
-- draws a change number (and before it stamps rows with clock_timestamp()), and holds it
-- until its transaction ends. PostgreSQL's commit (xact.c, CommitTransaction) writes the
-- commit record, then removes the transaction from the proc array (it is now visible to
-- every new snapshot), and only then releases its locks. So the next writer draws its
-- first number only after the previous writer's changes are visible: numbers become
-- visible in increasing order, and a reader that has seen seq N never later finds a newly
-- committed seq < N. Aborted transactions leave gaps; gaps are never filled.
-- The key is storage.locks.CHANGES_LOCK_KEY; ingest's load lock is taken before it.
CREATE FUNCTION news.changes_lock() RETURNS void LANGUAGE sql AS
$$ SELECT pg_advisory_xact_lock(7234316872524351041) $$;

-- Net kind when an entity changes more than once in one transaction.
CREATE FUNCTION news.change_kind_merge(old_kind text, new_kind text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN array_position(ARRAY['updated','split','created','merged','deleted'], new_kind)
               > array_position(ARRAY['updated','split','created','merged','deleted'], old_kind)
            THEN new_kind ELSE old_kind END;

CREATE FUNCTION news.change_fields_merge(a text[], b text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT array_agg(DISTINCT f ORDER BY f) FROM unnest(coalesce(a, '{}') || coalesce(b, '{}')) f);

-- news.story_outlets and the counts on news.stories for a set of stories.
CREATE FUNCTION news.refresh_story_outlets(story_ids bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF story_ids IS NULL OR cardinality(story_ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM news.changes_lock();   -- one writer at a time (delete + insert of derived rows)
    DELETE FROM news.story_outlets WHERE story_id = ANY (story_ids);
    INSERT INTO news.story_outlets (story_id, publisher, article_id, relation, url, published_at)
    SELECT DISTINCT ON (a.story_id, f.publisher)
           a.story_id, f.publisher, a.id,
           CASE WHEN f.publisher = a.publisher THEN a.story_relation ELSE 'identical' END,
           e.link, coalesce(e.published_at, a.published_at)
    FROM news.articles a
    JOIN news.entries e ON e.article_id = a.id
    JOIN news.feeds f   ON f.id = e.feed_id
    WHERE a.story_id = ANY (story_ids)
    ORDER BY a.story_id, f.publisher, (f.publisher = a.publisher) DESC,
             coalesce(e.published_at, a.published_at), e.id;
    UPDATE news.stories s
    SET outlet_count = (SELECT count(*) FROM news.story_outlets o WHERE o.story_id = s.id),
        article_count = m.n,
        first_seen_at = coalesce(m.first_seen, s.first_seen_at),
        updated_at = clock_timestamp()
    FROM (SELECT sid, count(a.id) AS n, min(a.fetched_at) AS first_seen
          FROM unnest(story_ids) AS sid LEFT JOIN news.articles a ON a.story_id = sid
          GROUP BY sid) m
    WHERE s.id = m.sid;
END $$;

-- articles ------------------------------------------------------------------------------
CREATE FUNCTION news.articles_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN   -- statement triggers fire for 0 rows too
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id)
    SELECT nextval('news.changes_seq'), 'article', n.id, 'created', n.story_id FROM new_rows n
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = excluded.story_id;
    PERFORM news.refresh_story_outlets(ARRAY(
        SELECT DISTINCT story_id FROM new_rows WHERE story_id IS NOT NULL));
    RETURN NULL;
END $$;

-- What a consumer can see change. content_hash stands for the body (no wide column is
-- compared); word_count follows the body.
CREATE FUNCTION news.article_changed_fields(o news.articles, n news.articles) RETURNS text[]
    LANGUAGE sql IMMUTABLE
RETURN array_remove(ARRAY[
    CASE WHEN n.content_hash IS DISTINCT FROM o.content_hash THEN 'body' END,
    CASE WHEN n.title IS DISTINCT FROM o.title THEN 'title' END,
    CASE WHEN n.story_id IS DISTINCT FROM o.story_id THEN 'story' END,
    CASE WHEN n.story_relation IS DISTINCT FROM o.story_relation THEN 'relation' END,
    CASE WHEN (n.published_at, n.url, n.canonical_url, n.publisher, n.site_name, n.language,
               n.authors, n.image_url, n.wire_credit, n.body_source)
              IS DISTINCT FROM
              (o.published_at, o.url, o.canonical_url, o.publisher, o.site_name, o.language,
               o.authors, o.image_url, o.wire_credit, o.body_source) THEN 'metadata' END], NULL);

CREATE FUNCTION news.articles_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n_logged bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id, previous_story_id, fields)
    SELECT nextval('news.changes_seq'), 'article', c.id, 'updated', c.story_id, c.old_story_id, c.fields
    FROM (SELECT n.id, n.story_id, o.story_id AS old_story_id,
                 news.article_changed_fields(o, n) AS fields
          FROM old_rows o JOIN new_rows n ON n.id = o.id) c
    WHERE cardinality(c.fields) > 0
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = excluded.story_id,
            fields = news.change_fields_merge(changes.fields, excluded.fields);
        -- previous_story_id keeps the value of the first change: the story at transaction start
    GET DIAGNOSTICS n_logged = ROW_COUNT;
    IF n_logged > 0 THEN
        PERFORM news.refresh_story_outlets(ARRAY(
            SELECT v.s FROM old_rows o JOIN new_rows n ON n.id = o.id,
                   LATERAL (VALUES (o.story_id), (n.story_id)) v(s)
            WHERE (n.story_id, n.story_relation, n.publisher, n.published_at, n.fetched_at)
                  IS DISTINCT FROM (o.story_id, o.story_relation, o.publisher, o.published_at, o.fetched_at)
              AND v.s IS NOT NULL
            GROUP BY v.s));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION news.articles_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id, previous_story_id)
    SELECT nextval('news.changes_seq'), 'article', o.id, 'deleted', NULL, o.story_id FROM old_rows o
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = NULL;
    INSERT INTO news.tombstones (article_id, canonical_url, url, publisher, story_id, content_hash, reason)
    SELECT o.id, o.canonical_url, o.url, o.publisher, o.story_id, o.content_hash,
           coalesce(nullif(current_setting('newsflow.delete_reason', true), ''), 'deleted')
    FROM old_rows o
    ON CONFLICT (article_id) DO NOTHING;
    PERFORM news.refresh_story_outlets(ARRAY(
        SELECT DISTINCT o.story_id FROM old_rows o JOIN news.stories s ON s.id = o.story_id));
    RETURN NULL;
END $$;

CREATE TRIGGER articles_changes_ins AFTER INSERT ON news.articles
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION news.articles_after_insert();
CREATE TRIGGER articles_changes_upd AFTER UPDATE ON news.articles
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION news.articles_after_update();
CREATE TRIGGER articles_changes_del AFTER DELETE ON news.articles
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION news.articles_after_delete();

-- stories -------------------------------------------------------------------------------
CREATE FUNCTION news.stories_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind)
    SELECT nextval('news.changes_seq'), 'story', n.id, 'created' FROM new_rows n
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind);
    RETURN NULL;
END $$;

-- 'split': some of the story's members at transaction start now sit in another story.
CREATE FUNCTION news.stories_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, fields)
    SELECT nextval('news.changes_seq'), 'story', c.id,
           CASE WHEN EXISTS (SELECT 1 FROM news.changes m
                             WHERE m.xact_id = pg_current_xact_id() AND m.entity = 'article'
                               AND m.previous_story_id = c.id
                               AND m.story_id IS NOT NULL AND m.story_id <> c.id)
                THEN 'split' ELSE 'updated' END,
           c.fields
    FROM (SELECT n.id, array_remove(ARRAY[
                 CASE WHEN n.title IS DISTINCT FROM o.title THEN 'title' END,
                 CASE WHEN (n.origin_article_id, n.origin_publisher, n.origin_basis)
                           IS DISTINCT FROM (o.origin_article_id, o.origin_publisher, o.origin_basis)
                      THEN 'origin' END,
                 CASE WHEN (n.first_published_at, n.first_seen_at)
                           IS DISTINCT FROM (o.first_published_at, o.first_seen_at) THEN 'dates' END,
                 CASE WHEN (n.article_count, n.outlet_count, n.updated_at)
                           IS DISTINCT FROM (o.article_count, o.outlet_count, o.updated_at)
                      THEN 'members' END], NULL) AS fields
          FROM old_rows o JOIN new_rows n ON n.id = o.id) c
    WHERE cardinality(c.fields) > 0
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind),
            fields = news.change_fields_merge(changes.fields, excluded.fields);
    RETURN NULL;
END $$;

-- 'merged': a deleted story whose members at transaction start now sit in another story.
CREATE FUNCTION news.stories_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id)
    SELECT nextval('news.changes_seq'), 'story', o.id,
           CASE WHEN m.merged_into IS NULL THEN 'deleted' ELSE 'merged' END, m.merged_into
    FROM old_rows o
    LEFT JOIN LATERAL (SELECT min(c.story_id) AS merged_into FROM news.changes c
                       WHERE c.xact_id = pg_current_xact_id() AND c.entity = 'article'
                         AND c.previous_story_id = o.id
                         AND c.story_id IS NOT NULL AND c.story_id <> o.id) m ON true
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = excluded.story_id;
    RETURN NULL;
END $$;

CREATE TRIGGER stories_changes_ins AFTER INSERT ON news.stories
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION news.stories_after_insert();
CREATE TRIGGER stories_changes_upd AFTER UPDATE ON news.stories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION news.stories_after_update();
CREATE TRIGGER stories_changes_del AFTER DELETE ON news.stories
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION news.stories_after_delete();

-- entries and feeds only feed news.story_outlets (a new, not yet loaded entry costs one
-- empty look-up and takes no lock) ---------------------------------------------------------
CREATE FUNCTION news.entries_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM news.refresh_story_outlets(ARRAY(
            SELECT DISTINCT a.story_id FROM new_rows n JOIN news.articles a ON a.id = n.article_id
            WHERE a.story_id IS NOT NULL));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM news.refresh_story_outlets(ARRAY(
            SELECT DISTINCT a.story_id FROM old_rows o JOIN news.articles a ON a.id = o.article_id
            WHERE a.story_id IS NOT NULL));
    ELSE
        PERFORM news.refresh_story_outlets(ARRAY(
            SELECT DISTINCT a.story_id
            FROM old_rows o JOIN new_rows n ON n.id = o.id,
                 LATERAL (VALUES (o.article_id), (n.article_id)) v(article_id)
                 JOIN news.articles a ON a.id = v.article_id
            WHERE (n.article_id, n.link, n.published_at, n.feed_id)
                  IS DISTINCT FROM (o.article_id, o.link, o.published_at, o.feed_id)
              AND a.story_id IS NOT NULL));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entries_outlets_ins AFTER INSERT ON news.entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION news.entries_after_write();
CREATE TRIGGER entries_outlets_upd AFTER UPDATE ON news.entries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION news.entries_after_write();
CREATE TRIGGER entries_outlets_del AFTER DELETE ON news.entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION news.entries_after_write();

CREATE FUNCTION news.feeds_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM news.refresh_story_outlets(ARRAY(
        SELECT DISTINCT a.story_id
        FROM old_rows o JOIN new_rows n ON n.id = o.id AND n.publisher IS DISTINCT FROM o.publisher
        JOIN news.entries e ON e.feed_id = n.id
        JOIN news.articles a ON a.id = e.article_id
        WHERE a.story_id IS NOT NULL));
    RETURN NULL;
END $$;

CREATE TRIGGER feeds_outlets_upd AFTER UPDATE ON news.feeds
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION news.feeds_after_update();

-- NOTIFY news_changes, once per committing transaction, with its last seq. A deferred
-- trigger runs at commit for each of the transaction's change rows; they all send the
-- same payload, which PostgreSQL delivers once, after the commit (so the rows are
-- readable when the notification arrives).
CREATE FUNCTION news.changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('news_changes',
        (SELECT max(seq) FROM news.changes WHERE xact_id = pg_current_xact_id())::text);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER changes_notify AFTER INSERT ON news.changes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION news.changes_notify();

-- The contract: schema news_api -------------------------------------------------------------

CREATE SCHEMA news_api;
COMMENT ON SCHEMA news_api IS
    'The consumer contract of newsflow: read-only views and functions, every column commented. '
    'Within a major version columns and views are only added; news_api.schema_version tells which '
    'version you are reading. Tables in schema news are internal and may change in any release.';

-- The contract's version (changes only with a migration note in the README) and the
-- database's migration level, readable by a reader (news.schema_migrations is internal).
CREATE VIEW news_api.schema_version AS
SELECT '1.0'::text AS version, 1 AS major, 0 AS minor,
       (SELECT max(version) FROM news.schema_migrations) AS migration;
COMMENT ON VIEW news_api.schema_version IS 'Version of the news_api contract (one row).';
COMMENT ON COLUMN news_api.schema_version.version IS 'major.minor of the contract.';
COMMENT ON COLUMN news_api.schema_version.major IS 'Incremented when a column or view is removed or changes meaning.';
COMMENT ON COLUMN news_api.schema_version.minor IS 'Incremented when views, columns or functions are added.';
COMMENT ON COLUMN news_api.schema_version.migration IS 'Newest newsflow migration applied to this database (the CLI compares it with its own).';

CREATE VIEW news_api.articles AS
SELECT id, story_id, story_relation, url, canonical_url, publisher, site_name, title, body,
       published_at, sort_at, language, authors, image_url, word_count, wire_credit,
       body_source, revision, fetched_at, created_at, updated_at, search_vector
FROM news.articles;
COMMENT ON VIEW news_api.articles IS
    'One row per distinct piece of content (same canonical URL or same body = one row). '
    'An outlet that published a byte-identical copy appears in story_members, not here. '
    'Corrections update the row in place (revision + 1, previous text in article_revisions).';
COMMENT ON COLUMN news_api.articles.id IS 'Article id; stable, also across corrections.';
COMMENT ON COLUMN news_api.articles.story_id IS 'The story (syndication cluster) the article belongs to.';
COMMENT ON COLUMN news_api.articles.story_relation IS 'original (the story''s representative), copy, excerpt or update, relative to the representative.';
COMMENT ON COLUMN news_api.articles.url IS 'The entry link as it appeared in the feed that first brought the article.';
COMMENT ON COLUMN news_api.articles.canonical_url IS 'Canonical URL (unique). Look-up by any known URL: news_api.article_urls.';
COMMENT ON COLUMN news_api.articles.publisher IS 'Publisher of the feed the article was first loaded from.';
COMMENT ON COLUMN news_api.articles.site_name IS 'Site name found in the page, if any.';
COMMENT ON COLUMN news_api.articles.title IS 'Title (the feed''s, else the page''s).';
COMMENT ON COLUMN news_api.articles.body IS 'Normalised plain text: NFC, one paragraph per line.';
COMMENT ON COLUMN news_api.articles.published_at IS 'Publication time (UTC) from the feed, else the page; NULL when unknown.';
COMMENT ON COLUMN news_api.articles.sort_at IS 'Never NULL: least(published_at, fetched_at). Indexed (alone, with publisher, with language); order and page "latest" lists by it.';
COMMENT ON COLUMN news_api.articles.language IS 'Language code as detected (en, de, fr, ...); NULL when unknown. Chooses the text-search configuration.';
COMMENT ON COLUMN news_api.articles.authors IS 'Authors, possibly empty.';
COMMENT ON COLUMN news_api.articles.image_url IS 'Lead image URL, if any.';
COMMENT ON COLUMN news_api.articles.word_count IS 'Words in body.';
COMMENT ON COLUMN news_api.articles.wire_credit IS 'Wire agency credited in the text (e.g. Reuters), if any.';
COMMENT ON COLUMN news_api.articles.body_source IS 'page (extracted from the article page) or feed (the feed''s own text: the page gave none).';
COMMENT ON COLUMN news_api.articles.revision IS '1 for the text first loaded; +1 for each correction (earlier texts in news_api.article_revisions).';
COMMENT ON COLUMN news_api.articles.fetched_at IS 'When newsflow first loaded the article (UTC, clock time of the write).';
COMMENT ON COLUMN news_api.articles.created_at IS 'When the row was written (clock time, taken under the changes lock: never before a change already visible).';
COMMENT ON COLUMN news_api.articles.updated_at IS 'When the row last changed (text, title, story, relation, metadata). Prefer the change feed for "what changed since".';
COMMENT ON COLUMN news_api.articles.search_vector IS 'Full-text vector (title weight A, lead paragraph B, rest D) in the configuration of the article''s language; GIN-indexed. Prefer news_api.search().';

CREATE VIEW news_api.article_revisions AS
SELECT article_id, revision, title, body, word_count, published_at, language, authors,
       body_source, fetched_at, replaced_at
FROM news.article_revisions;
COMMENT ON VIEW news_api.article_revisions IS
    'Earlier versions of corrected articles: one row per replaced text. The current text is in news_api.articles.';
COMMENT ON COLUMN news_api.article_revisions.article_id IS 'The article (news_api.articles.id).';
COMMENT ON COLUMN news_api.article_revisions.revision IS 'The revision number this text had (articles.revision counts on from it).';
COMMENT ON COLUMN news_api.article_revisions.title IS 'Title of that version.';
COMMENT ON COLUMN news_api.article_revisions.body IS 'Normalised text of that version.';
COMMENT ON COLUMN news_api.article_revisions.word_count IS 'Words in that body.';
COMMENT ON COLUMN news_api.article_revisions.published_at IS 'Publication time that version carried.';
COMMENT ON COLUMN news_api.article_revisions.language IS 'Language of that version.';
COMMENT ON COLUMN news_api.article_revisions.authors IS 'Authors of that version.';
COMMENT ON COLUMN news_api.article_revisions.body_source IS 'page or feed.';
COMMENT ON COLUMN news_api.article_revisions.fetched_at IS 'When that version was loaded.';
COMMENT ON COLUMN news_api.article_revisions.replaced_at IS 'When a corrected text replaced it.';

CREATE VIEW news_api.tombstones AS
SELECT article_id, canonical_url, url, publisher, story_id, deleted_at, reason
FROM news.tombstones;
COMMENT ON VIEW news_api.tombstones IS
    'Deleted articles: delete them downstream. A deleted article is not loaded again from a '
    'later feed item unless an operator allows it (it then comes back under a new id).';
COMMENT ON COLUMN news_api.tombstones.article_id IS 'The deleted article''s id.';
COMMENT ON COLUMN news_api.tombstones.canonical_url IS 'Its canonical URL.';
COMMENT ON COLUMN news_api.tombstones.url IS 'Its entry link.';
COMMENT ON COLUMN news_api.tombstones.publisher IS 'Its publisher.';
COMMENT ON COLUMN news_api.tombstones.story_id IS 'The story it was in when deleted.';
COMMENT ON COLUMN news_api.tombstones.deleted_at IS 'When it was deleted.';
COMMENT ON COLUMN news_api.tombstones.reason IS 'Why (the operator''s reason).';

CREATE VIEW news_api.story_members AS
SELECT story_id, publisher, article_id, relation, url, published_at
FROM news.story_outlets;
COMMENT ON VIEW news_api.story_members IS
    'Who carried what: one row per (story, outlet), byte-identical copies included. Kept current at load time.';
COMMENT ON COLUMN news_api.story_members.story_id IS 'The story.';
COMMENT ON COLUMN news_api.story_members.publisher IS 'The outlet (publisher of the feed that carried it).';
COMMENT ON COLUMN news_api.story_members.article_id IS 'The article row holding the text this outlet published.';
COMMENT ON COLUMN news_api.story_members.relation IS 'original, copy, excerpt, update; identical = the same text as another outlet''s article (no row of its own).';
COMMENT ON COLUMN news_api.story_members.url IS 'The link in this outlet''s feed.';
COMMENT ON COLUMN news_api.story_members.published_at IS 'When this outlet published it (feed date, else article date); may be NULL.';

CREATE VIEW news_api.stories AS
SELECT s.id, s.title, s.origin_article_id, s.origin_publisher, s.origin_basis,
       s.first_published_at, s.first_seen_at, s.sort_at, s.article_count, s.outlet_count,
       s.created_at, s.updated_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'publisher', o.publisher, 'article_id', o.article_id, 'relation', o.relation,
                   'url', o.url, 'published_at', o.published_at)
                 ORDER BY o.published_at NULLS LAST, o.publisher), '[]'::jsonb)
        FROM news.story_outlets o WHERE o.story_id = s.id) AS outlets
FROM news.stories s;
COMMENT ON VIEW news_api.stories IS
    'One row per story (one text across outlets), with its outlets. Order "latest" lists by '
    'sort_at DESC; outlets is computed only when selected, for the rows returned.';
COMMENT ON COLUMN news_api.stories.id IS 'Story id; kept across re-clustering where possible (see changes kinds merged/split).';
COMMENT ON COLUMN news_api.stories.title IS 'Title of the origin article.';
COMMENT ON COLUMN news_api.stories.origin_article_id IS 'The article the story comes from (earliest, or the credited wire''s).';
COMMENT ON COLUMN news_api.stories.origin_publisher IS 'Publisher of the origin, or the credited agency''s name.';
COMMENT ON COLUMN news_api.stories.origin_basis IS 'earliest, or credit (a wire credit in the text).';
COMMENT ON COLUMN news_api.stories.first_published_at IS 'Earliest published_at among members; NULL when none is known.';
COMMENT ON COLUMN news_api.stories.first_seen_at IS 'When newsflow first loaded a member.';
COMMENT ON COLUMN news_api.stories.sort_at IS 'Never NULL: least(first_published_at, first_seen_at). Indexed; order latest lists and time windows by it.';
COMMENT ON COLUMN news_api.stories.article_count IS 'Distinct texts (article rows) in the story.';
COMMENT ON COLUMN news_api.stories.outlet_count IS 'Outlets that carried the story, identical copies included (rows in story_members).';
COMMENT ON COLUMN news_api.stories.created_at IS 'When the story was created.';
COMMENT ON COLUMN news_api.stories.updated_at IS 'Last time the story, a member or an outlet changed. Indexed ("stories changed since").';
COMMENT ON COLUMN news_api.stories.outlets IS 'JSON array of story_members rows (publisher, article_id, relation, url, published_at), earliest first.';

-- Feed URLs may carry credentials (https://user:password@host/feed): never shown here.
CREATE FUNCTION news.public_url(url text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^@/?#]*@', '\1***@');

CREATE VIEW news_api.feeds AS
SELECT id, news.public_url(url) AS url, publisher, name, enabled, language, tags,
       last_polled_at, last_status, created_at
FROM news.feeds;
COMMENT ON VIEW news_api.feeds IS 'Subscribed feeds (public columns; polling internals are not part of the contract).';
COMMENT ON COLUMN news_api.feeds.id IS 'Feed id.';
COMMENT ON COLUMN news_api.feeds.url IS 'Feed URL (after permanent redirects; credentials shown as ***).';
COMMENT ON COLUMN news_api.feeds.publisher IS 'Publisher name; the outlet in story_members.';
COMMENT ON COLUMN news_api.feeds.name IS 'Display name.';
COMMENT ON COLUMN news_api.feeds.enabled IS 'Polled at all.';
COMMENT ON COLUMN news_api.feeds.language IS 'Declared language of the feed, if any.';
COMMENT ON COLUMN news_api.feeds.tags IS 'Tags from the feeds file.';
COMMENT ON COLUMN news_api.feeds.last_polled_at IS 'Last poll (UTC).';
COMMENT ON COLUMN news_api.feeds.last_status IS 'HTTP status of the last poll; NULL when no response.';
COMMENT ON COLUMN news_api.feeds.created_at IS 'When the feed was added.';

-- Each feed's coverage as a consumer sees it (errors, queue, last new item). The operators'
-- state of a feed (failing, stale by its own rhythm, deferred...) is the console's and
-- `newsflow feeds status`'s (storage.feeds.health), not part of the contract.
CREATE VIEW news_api.feed_status AS
SELECT f.id, f.publisher, f.name, news.public_url(f.url) AS url, f.enabled, f.disabled_reason,
       f.last_status, f.consecutive_errors, f.last_error, f.last_polled_at, f.next_poll_at,
       f.effective_interval, f.guid_mode,
       count(e.id) AS entries,
       count(e.id) FILTER (WHERE e.status = 'pending') AS pending,
       count(e.id) FILTER (WHERE e.status = 'failed') AS failed,
       max(e.first_seen_at) AS last_new_entry_at
FROM news.feeds f LEFT JOIN news.entries e ON e.feed_id = f.id
GROUP BY f.id;
COMMENT ON VIEW news_api.feed_status IS 'Coverage of every feed: whether it is polled, its errors, its queue, its last new item.';
COMMENT ON COLUMN news_api.feed_status.id IS 'Feed id.';
COMMENT ON COLUMN news_api.feed_status.publisher IS 'Publisher name.';
COMMENT ON COLUMN news_api.feed_status.name IS 'Display name.';
COMMENT ON COLUMN news_api.feed_status.url IS 'Feed URL (credentials shown as ***).';
COMMENT ON COLUMN news_api.feed_status.enabled IS 'Polled at all.';
COMMENT ON COLUMN news_api.feed_status.disabled_reason IS 'Why it was disabled (410 Gone, too many failures), if it was.';
COMMENT ON COLUMN news_api.feed_status.last_status IS 'HTTP status of the last poll.';
COMMENT ON COLUMN news_api.feed_status.consecutive_errors IS 'Failed polls in a row.';
COMMENT ON COLUMN news_api.feed_status.last_error IS 'Last error or parse warning.';
COMMENT ON COLUMN news_api.feed_status.last_polled_at IS 'Last poll (UTC).';
COMMENT ON COLUMN news_api.feed_status.next_poll_at IS 'When the feed is due.';
COMMENT ON COLUMN news_api.feed_status.effective_interval IS 'Seconds between polls, after the server''s hints and adaptation.';
COMMENT ON COLUMN news_api.feed_status.guid_mode IS 'How items are identified: guid, link or link_title_date.';
COMMENT ON COLUMN news_api.feed_status.entries IS 'Items seen.';
COMMENT ON COLUMN news_api.feed_status.pending IS 'Items waiting for their page.';
COMMENT ON COLUMN news_api.feed_status.failed IS 'Items given up on.';
COMMENT ON COLUMN news_api.feed_status.last_new_entry_at IS 'When the newest item was first seen.';

CREATE VIEW news_api.changes AS
SELECT seq, changed_at, entity, entity_id, kind, story_id, previous_story_id, fields
FROM news.changes;
COMMENT ON VIEW news_api.changes IS
    'Change feed: read WHERE seq > :cursor ORDER BY seq LIMIT n, then re-read the entities. '
    'seq increases in commit order (no committed row ever appears below one already seen); '
    'gaps are normal. LISTEN news_changes: after each commit, the payload is the last seq it wrote.';
COMMENT ON COLUMN news_api.changes.seq IS 'Cursor. Strictly increasing in commit order; not gap-free.';
COMMENT ON COLUMN news_api.changes.changed_at IS 'Clock time the change was logged (under the changes lock, so it grows with seq); do not use it as a cursor.';
COMMENT ON COLUMN news_api.changes.entity IS 'article or story.';
COMMENT ON COLUMN news_api.changes.entity_id IS 'Id in news_api.articles or news_api.stories (or news_api.tombstones once deleted).';
COMMENT ON COLUMN news_api.changes.kind IS 'Net effect within one transaction: created, updated, deleted; stories also merged (deleted, members now in story_id) and split (lost members to another story).';
COMMENT ON COLUMN news_api.changes.story_id IS 'Article: its story after the change. Merged story: the story its members went to.';
COMMENT ON COLUMN news_api.changes.previous_story_id IS 'Article: its story before the transaction (differs from story_id when it moved).';
COMMENT ON COLUMN news_api.changes.fields IS 'updated: what changed. Article: body, title, story, relation, metadata. Story: title, origin, dates, members.';

-- Every URL under which an article is known: its canonical URL and the link of each feed
-- entry that carried it (a byte-identical copy resolves to the article holding its text).
-- A filter on url is pushed into both branches (two index look-ups).
CREATE VIEW news_api.article_urls AS
SELECT a.canonical_url AS url, a.id AS article_id, 'canonical'::text AS kind
FROM news.articles a
UNION ALL
SELECT e.link, e.article_id, 'entry'::text
FROM news.entries e WHERE e.article_id IS NOT NULL AND e.link IS NOT NULL;
COMMENT ON VIEW news_api.article_urls IS
    'URL -> article: canonical URLs and feed entry links. Query with WHERE url = ... (exact).';
COMMENT ON COLUMN news_api.article_urls.url IS 'A URL, exactly as stored (canonical form, or the link as it appeared in the feed).';
COMMENT ON COLUMN news_api.article_urls.article_id IS 'The article (news_api.articles.id) known under this URL.';
COMMENT ON COLUMN news_api.article_urls.kind IS 'canonical or entry.';

-- The query side (in news_api, with a SQL-standard body: parsed once, at creation, so a
-- reader without USAGE on schema news can call it): the text parsed with the
-- configuration of the language, or, with no language given, OR-ed over the
-- configurations of english, german, french and simple (a German word must be stemmed
-- the German way to match German articles).
CREATE FUNCTION news_api.search_query(q text, language text DEFAULT NULL) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN language IS NOT NULL THEN websearch_to_tsquery(news.ts_config(language), q)
    ELSE websearch_to_tsquery('english', q) || websearch_to_tsquery('german', q)
      || websearch_to_tsquery('french', q) || websearch_to_tsquery('simple', q) END;
COMMENT ON FUNCTION news_api.search_query(text, text) IS
    'The tsquery news_api.search() uses: websearch syntax, parsed with the configuration of '
    'language, or OR-ed over english, german, french and simple when language is NULL. For your '
    'own queries: WHERE search_vector @@ news_api.search_query(''...'').';

-- A composite result type (not RETURNS TABLE): its column names do not clash with the
-- parameters language/publisher, so callers can use named arguments (language => 'de').
CREATE TYPE news_api.search_hit AS (
    article_id bigint, story_id bigint, title text, publisher text, language text,
    published_at timestamptz, sort_at timestamptz, url text, rank real,
    story_title text, outlet_count integer);
COMMENT ON TYPE news_api.search_hit IS 'One result of news_api.search(): the article, its rank (ts_rank_cd, length-normalised) and its story.';

-- Ranked full-text search. Candidates come from the GIN index (a bitmap of all matches);
-- only the newest `candidates` of them (by sort_at, a cheap column of the narrow heap) are
-- ranked with ts_rank_cd, which must de-TOAST each candidate's vector. So a term that
-- matches 100k articles costs a bounded time, and a term with fewer matches is ranked
-- exactly. enable_seqscan = off: the planner does not model de-TOASTing and would otherwise
-- filter a sequential scan with @@ (2 s instead of 0.2 s for a common term at 500k).
CREATE FUNCTION news_api.search(q text, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
                                language text DEFAULT NULL, publisher text DEFAULT NULL,
                                lim integer DEFAULT 20, candidates integer DEFAULT 5000)
RETURNS SETOF news_api.search_hit
LANGUAGE plpgsql STABLE
SET jit = off
SET enable_seqscan = off
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    tsq tsquery := news_api.search_query(q, search.language);
BEGIN
    RETURN QUERY
    WITH cand AS MATERIALIZED (
        -- "+ interval '0'": not the order of articles_sort_idx, so the planner cannot walk
        -- that index and test @@ row by row (de-TOASTing 20k vectors for 5k hits).
        SELECT a.id, a.sort_at, a.language, a.search_vector FROM news_api.articles a
        WHERE a.search_vector @@ tsq
          AND (since IS NULL OR a.sort_at >= since) AND (until IS NULL OR a.sort_at < until)
          AND (search.language IS NULL OR a.language = search.language)
          AND (search.publisher IS NULL OR a.publisher = search.publisher)
        ORDER BY a.sort_at + interval '0' DESC
        LIMIT candidates),
    -- Each result is checked against the query parsed in its own language: the OR over
    -- languages finds candidates, but "zebra -city" parsed the German way ('city' is not
    -- stemmed) would let an English article that says "city" through. One parse per
    -- language; checked in rank order until `lim` pass, so few vectors are read twice.
    per_language AS (
        SELECT l.language, news_api.search_query(q, coalesce(l.language, 'simple')) AS lq
        FROM (SELECT DISTINCT c.language FROM cand c) l),
    top AS (
        SELECT r.id, r.rank, r.sort_at
        FROM (SELECT c.id, c.language, c.search_vector, c.sort_at,
                     ts_rank_cd(c.search_vector, tsq, 1) AS rank
              FROM cand c ORDER BY rank DESC, c.sort_at DESC, c.id DESC) r
        WHERE r.search_vector @@ (SELECT p.lq FROM per_language p
                                  WHERE p.language IS NOT DISTINCT FROM r.language)
        LIMIT lim)
    SELECT a.id, a.story_id, a.title, a.publisher, a.language, a.published_at, a.sort_at,
           a.url, top.rank, s.title, s.outlet_count
    FROM top JOIN news_api.articles a ON a.id = top.id
    LEFT JOIN news_api.stories s ON s.id = a.story_id
    ORDER BY top.rank DESC, top.sort_at DESC, a.id DESC;
END $$;
COMMENT ON FUNCTION news_api.search(text, timestamptz, timestamptz, text, text, integer, integer) IS
    'Ranked full-text search (websearch syntax: words, "phrases", OR, -not). language: parse '
    'with that language only and return only its articles; NULL: all languages. since/until '
    'bound sort_at. When more than `candidates` (default 5,000) articles match, only the '
    'newest that many are ranked.';

-- Internal tables: documented as such ----------------------------------------------------------
COMMENT ON SCHEMA news IS 'newsflow''s internal tables: may change in any release. Consumers read schema news_api.';
COMMENT ON TABLE news.feeds IS 'Internal: subscribed feeds and their polling state. Consumers: news_api.feeds, news_api.feed_status.';
COMMENT ON TABLE news.entries IS 'Internal: every feed item seen, and the work queue. Consumers: news_api.story_members, news_api.article_urls.';
COMMENT ON TABLE news.articles IS 'Internal: one row per distinct text. Consumers: news_api.articles.';
COMMENT ON TABLE news.stories IS 'Internal: clusters of copies of one text. Consumers: news_api.stories.';
COMMENT ON TABLE news.story_outlets IS 'Internal: who carried what, maintained by triggers at load time. Consumers: news_api.story_members.';
COMMENT ON TABLE news.changes IS 'Internal: the change log written by triggers, in commit order. Consumers: news_api.changes.';
COMMENT ON TABLE news.article_revisions IS 'Internal: earlier texts of corrected articles. Consumers: news_api.article_revisions.';
COMMENT ON TABLE news.tombstones IS 'Internal: deleted articles, and what blocks their return. Consumers: news_api.tombstones.';
COMMENT ON TABLE news.fetch_log IS 'Internal: every HTTP fetch (operators'' audit trail).';
COMMENT ON TABLE news.dedup_signatures IS 'Internal: near-duplicate index, signatures (dedup window only).';
COMMENT ON TABLE news.dedup_bands IS 'Internal: near-duplicate index, LSH bands (dedup window only).';
COMMENT ON TABLE news.hosts IS 'Internal: per-host politeness state shared by every worker.';
COMMENT ON TABLE news.feed_files IS 'Internal: feeds files already synced.';
COMMENT ON TABLE news.task_failures IS 'Internal: failed Airflow task instances.';
COMMENT ON TABLE news.schema_migrations IS 'Internal: applied migrations. Consumers: news_api.schema_version.';
COMMENT ON TABLE news.operator_actions IS 'Internal: operator actions (console, CLI, feeds file), the audit trail.';
COMMENT ON TABLE news.feed_rhythm IS 'Internal: each feed''s measured rhythm, for its stale state.';
COMMENT ON TABLE news.run_counts IS 'Internal: the counts each Airflow task returned, by run.';

-- The reader role -------------------------------------------------------------------------------
-- Roles are cluster-wide: created once, shared by every database of the cluster. A migrating
-- user that may not create roles gets a notice, not a failure: an administrator creates the
-- role later, and `newsflow db grant-reader ROLE` (run as this user) applies the grants below.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_reader') THEN
        BEGIN
            CREATE ROLE newsflow_reader NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;   -- another database's migration, at the same moment
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'newsflow: this user may not create roles, so the role newsflow_reader does not exist; '
                             'an administrator runs CREATE ROLE newsflow_reader NOLOGIN, then `newsflow db grant-reader ROLE`';
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA news_api TO newsflow_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA news_api TO newsflow_reader;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA news_api TO newsflow_reader;
    GRANT USAGE ON TYPE news_api.search_hit TO newsflow_reader;
    -- objects the migrating role creates later in news_api (a later migration)
    ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT SELECT ON TABLES TO newsflow_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT EXECUTE ON FUNCTIONS TO newsflow_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT USAGE ON TYPES TO newsflow_reader;
END $$;
