-- 011: what the triggers of 008-010 cost, measured, brought down; and articles.updated_at
-- kept by the database, as its comment promises.
--
-- * NOTIFY news_changes: the deferred trigger runs at commit once per change row, and
--   each run read all of the transaction's change rows for their max(seq): quadratic
--   (a rebuild writing 16,000 change rows spent 60 s in COMMIT, holding the write locks).
--   The first run now notifies and remembers the seq it announced (a transaction-local
--   setting); the other rows of the same commit send nothing new. Same payloads.
-- * operator_actions.entry_id had a foreign key without an index: purging an entry
--   scanned the audit table (5,000 purged entries: 5.3 s; with the index: 47 ms).
-- * A new article cannot have entries yet (entries.article_id references it and is set
--   afterwards, which refreshes the outlets then): its insert now refreshes only the
--   story's counts, not its outlet rows (about 3 ms to 1.2 ms per insert into a
--   30-outlet story).
-- * Band rows go with their signatures per statement, not per row (a window purge or a
--   rebuild deletes thousands of signatures at once).
-- * articles.updated_at changes whenever a column a consumer sees changes (the fields
--   news.article_changed_fields names: text, title, story, relation, metadata), in one
--   BEFORE UPDATE trigger instead of by each writer (story moves did not set it).

CREATE OR REPLACE FUNCTION news.changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
BEGIN
    -- a row at or below the seq this transaction already announced sends the same payload
    IF NEW.seq <= coalesce(nullif(current_setting('newsflow.notified_seq', true), '')::bigint, -1) THEN
        RETURN NULL;
    END IF;
    last_seq := (SELECT max(seq) FROM news.changes WHERE xact_id = pg_current_xact_id());
    PERFORM set_config('newsflow.notified_seq', last_seq::text, true);  -- this transaction only
    PERFORM pg_notify('news_changes', last_seq::text);
    RETURN NULL;
END $$;

CREATE INDEX operator_actions_entry_idx ON news.operator_actions (entry_id) WHERE entry_id IS NOT NULL;

-- The counts part of news.refresh_story_outlets, on its own.
CREATE FUNCTION news.refresh_story_counts(story_ids bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF story_ids IS NULL OR cardinality(story_ids) = 0 THEN
        RETURN;
    END IF;
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

CREATE OR REPLACE FUNCTION news.refresh_story_outlets(story_ids bigint[]) RETURNS void
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
    PERFORM news.refresh_story_counts(story_ids);
END $$;

CREATE OR REPLACE FUNCTION news.articles_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN   -- statement triggers fire for 0 rows too
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id)
    SELECT nextval('news.changes_seq'), 'article', n.id, 'created', n.story_id FROM new_rows n
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = excluded.story_id;
    -- no entry can point at a row being inserted: the outlets do not change yet
    PERFORM news.refresh_story_counts(ARRAY(
        SELECT DISTINCT story_id FROM new_rows WHERE story_id IS NOT NULL));
    RETURN NULL;
END $$;

DROP TRIGGER dedup_signatures_drop_bands ON news.dedup_signatures;
CREATE OR REPLACE FUNCTION news.dedup_drop_bands() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM news.dedup_bands b
    USING old_rows o, unnest(o.bands) WITH ORDINALITY AS t(hash, n)
    WHERE b.band = t.n - 1 AND b.hash = t.hash AND b.article_id = o.article_id;
    RETURN NULL;
END $$;
CREATE TRIGGER dedup_signatures_drop_bands AFTER DELETE ON news.dedup_signatures
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION news.dedup_drop_bands();

CREATE FUNCTION news.articles_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(news.article_changed_fields(OLD, NEW)) > 0 THEN
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER articles_touch BEFORE UPDATE ON news.articles
    FOR EACH ROW EXECUTE FUNCTION news.articles_touch();
