-- 013: the consumers' contract, second pass (issue 18): what a consumer tripped over.
--
-- * The change feed lists only what changed. A correction detaches the article from its
--   story and places it again (corrections.revise), usually back where it was; the
--   transaction's one change row merged the fields of both steps, so `story` and
--   `relation` were listed on every correction although the article had not moved. The
--   row now remembers the relation at transaction start (news.changes.previous_relation,
--   internal; previous_story_id already held the story) and the fields are the net
--   effect: `story` only when story_id differs from the story at transaction start,
--   `relation` only when the relation differs. A transaction whose net effect on an
--   article is nothing (moved out and back, nothing else) leaves no row for it.
-- * Provenance: news_api.articles gains source_feed_id, source_guid and first_seen_at
--   (the feed entry that first brought the article), and news_api.article_sources lists
--   every feed entry that carried it. Contract 1.1 (columns and a view added).
-- * search() without a language: a query of stop words matched every German and French
--   article containing an English stop word (the OR included the simple and german
--   parses, where "the" is a word). The words that are stop words in english, german or
--   french are now taken out first (news_api.search_words): stop words alone match nothing,
--   as with a language.
-- * search() plans: see the comment on news_api.search below.
-- * The operators' audit trail keeps the Airflow run an action started (the console shows
--   its state and the feed's result when it ends).
-- Design and figures: docs/consumers.md.

-- The change feed: net fields ---------------------------------------------------------------

ALTER TABLE news.changes ADD COLUMN previous_relation text;  -- article: its relation at transaction start
COMMENT ON COLUMN news.changes.previous_relation IS
    'Article: story_relation at transaction start (with previous_story_id: the net fields of a transaction).';

CREATE OR REPLACE FUNCTION news.articles_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n_logged bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM news.changes_lock();
    INSERT INTO news.changes (seq, entity, entity_id, kind, story_id, previous_story_id, previous_relation, fields)
    SELECT nextval('news.changes_seq'), 'article', c.id, 'updated', c.story_id, c.old_story_id, c.old_relation,
           c.fields
    FROM (SELECT n.id, n.story_id, o.story_id AS old_story_id, o.story_relation AS old_relation,
                 news.article_changed_fields(o, n) AS fields
          FROM old_rows o JOIN new_rows n ON n.id = o.id) c
    WHERE cardinality(c.fields) > 0
    ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
        SET kind = news.change_kind_merge(changes.kind, excluded.kind), story_id = excluded.story_id,
            fields = news.change_fields_merge(changes.fields, excluded.fields);
        -- previous_story_id and previous_relation keep the values of the first change: the
        -- state at transaction start
    GET DIAGNOSTICS n_logged = ROW_COUNT;
    IF n_logged > 0 THEN
        -- net effect: a story or relation that is back to what it was at transaction start
        -- did not change (a correction's detach-and-place-again)
        UPDATE news.changes c
        SET fields = array_remove(array_remove(c.fields,
                         CASE WHEN n.story_id IS NOT DISTINCT FROM c.previous_story_id THEN 'story' END),
                         CASE WHEN n.story_relation IS NOT DISTINCT FROM c.previous_relation THEN 'relation' END)
        FROM new_rows n
        WHERE c.xact_id = pg_current_xact_id() AND c.entity = 'article' AND c.entity_id = n.id
          AND c.kind = 'updated' AND c.fields && ARRAY['story', 'relation'];
        DELETE FROM news.changes c
        USING new_rows n
        WHERE c.xact_id = pg_current_xact_id() AND c.entity = 'article' AND c.entity_id = n.id
          AND c.kind = 'updated' AND cardinality(c.fields) = 0;
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

-- A transaction whose every change row was removed again (the net effect above) announces nothing.
CREATE OR REPLACE FUNCTION news.changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
BEGIN
    -- a row at or below the seq this transaction already announced sends the same payload
    IF NEW.seq <= coalesce(nullif(current_setting('newsflow.notified_seq', true), '')::bigint, -1) THEN
        RETURN NULL;
    END IF;
    last_seq := (SELECT max(seq) FROM news.changes WHERE xact_id = pg_current_xact_id());
    IF last_seq IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('newsflow.notified_seq', last_seq::text, true);  -- this transaction only
    PERFORM pg_notify('news_changes', last_seq::text);
    RETURN NULL;
END $$;

COMMENT ON COLUMN news_api.changes.fields IS
    'updated: what changed, net of the transaction. Article: body, title, story (it is in another '
    'story than before: previous_story_id <> story_id), relation (its relation to the story''s '
    'representative changed), metadata. Story: title, origin, dates, members.';

-- Provenance --------------------------------------------------------------------------------

-- The entry that first brought each article: one index look-up (entries_article_idx) per
-- article read, made only when one of these columns is selected.
CREATE OR REPLACE VIEW news_api.articles AS
SELECT a.id, a.story_id, a.story_relation, a.url, a.canonical_url, a.publisher, a.site_name, a.title, a.body,
       a.published_at, a.sort_at, a.language, a.authors, a.image_url, a.word_count, a.wire_credit,
       a.body_source, a.revision, a.fetched_at, a.created_at, a.updated_at, a.search_vector,
       (SELECT e.feed_id FROM news.entries e WHERE e.article_id = a.id
        ORDER BY e.first_seen_at, e.id LIMIT 1) AS source_feed_id,
       (SELECT e.guid FROM news.entries e WHERE e.article_id = a.id
        ORDER BY e.first_seen_at, e.id LIMIT 1) AS source_guid,
       (SELECT min(e.first_seen_at) FROM news.entries e WHERE e.article_id = a.id) AS first_seen_at
FROM news.articles a;
COMMENT ON COLUMN news_api.articles.source_feed_id IS
    'The feed (news_api.feeds.id) whose item first brought the article (earliest first seen); '
    'NULL when no entry points at it any more. Every feed that carried it: news_api.article_sources.';
COMMENT ON COLUMN news_api.articles.source_guid IS
    'The identity (GUID, else link) of that feed item, as newsflow keys it within the feed.';
COMMENT ON COLUMN news_api.articles.first_seen_at IS
    'When newsflow first saw a feed item carrying this article (UTC); earlier than fetched_at, '
    'which is when the page was loaded.';

CREATE VIEW news_api.article_sources AS
SELECT e.article_id, e.feed_id, f.publisher, f.name AS feed_name, e.guid, e.link, e.published_at,
       e.first_seen_at,
       row_number() OVER (PARTITION BY e.article_id ORDER BY e.first_seen_at, e.id) = 1 AS first
FROM news.entries e JOIN news.feeds f ON f.id = e.feed_id
WHERE e.article_id IS NOT NULL;
COMMENT ON VIEW news_api.article_sources IS
    'Provenance: one row per feed item that carried an article (a publisher may have several '
    'feeds; a byte-identical copy in another outlet''s feed points at the same article). '
    'Query with WHERE article_id = ... .';
COMMENT ON COLUMN news_api.article_sources.article_id IS 'The article (news_api.articles.id).';
COMMENT ON COLUMN news_api.article_sources.feed_id IS 'The feed (news_api.feeds.id).';
COMMENT ON COLUMN news_api.article_sources.publisher IS 'The feed''s publisher.';
COMMENT ON COLUMN news_api.article_sources.feed_name IS 'The feed''s display name.';
COMMENT ON COLUMN news_api.article_sources.guid IS 'The item''s identity in the feed (GUID, else link).';
COMMENT ON COLUMN news_api.article_sources.link IS 'The item''s link as it appeared in the feed.';
COMMENT ON COLUMN news_api.article_sources.published_at IS 'The item''s own date, if any (UTC).';
COMMENT ON COLUMN news_api.article_sources.first_seen_at IS 'When newsflow first saw the item (UTC).';
COMMENT ON COLUMN news_api.article_sources.first IS
    'true for the item that first brought the article (the one news_api.articles.source_feed_id names).';

CREATE OR REPLACE VIEW news_api.schema_version AS
SELECT '1.1'::text AS version, 1 AS major, 1 AS minor,
       (SELECT max(version) FROM news.schema_migrations) AS migration;

-- Search: stop words ---------------------------------------------------------------------------

-- Without a language, the words that are stop words in english, german or french are taken
-- out of the text before it is parsed (the websearch operators OR, quotes and - stay): "the"
-- is a word for the german and simple configurations, so it matched every German or French
-- article quoting English. With a language, its own stop words apply, as before.
CREATE FUNCTION news_api.search_words(q text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((
    WITH t AS (
        SELECT x.m[1] AS tok, x.n, x.m[1] ~ '^\w+$' AS word, lower(x.m[1]) = 'or' AS is_or
        FROM regexp_matches(q, '\w+|\W+', 'g') WITH ORDINALITY AS x(m, n)),
    k AS (
        SELECT t.*, t.word AND (t.is_or OR NOT (numnode(plainto_tsquery('english', t.tok)) = 0
                                                OR numnode(plainto_tsquery('german', t.tok)) = 0
                                                OR numnode(plainto_tsquery('french', t.tok)) = 0)) AS kept
        FROM t)
    -- an OR stays only between kept words (a dangling OR would be parsed as the word "or")
    SELECT string_agg(CASE
               WHEN k.word AND NOT k.kept THEN ''
               WHEN k.is_or AND NOT (
                   coalesce((SELECT NOT p.is_or FROM k p WHERE p.n < k.n AND p.kept ORDER BY p.n DESC LIMIT 1), false)
                   AND EXISTS (SELECT 1 FROM k f WHERE f.n > k.n AND f.kept AND NOT f.is_or)) THEN ''
               ELSE k.tok END, '' ORDER BY k.n)
    FROM k), '');
COMMENT ON FUNCTION news_api.search_words(text) IS
    'What a search without a language searches for: the text without the words that are stop '
    'words in english, german or french (websearch operators kept). Stop words alone match nothing; '
    'a word such as "die" or "man" needs a language to be searched.';

CREATE OR REPLACE FUNCTION news_api.search_query(q text, language text DEFAULT NULL) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN language IS NOT NULL THEN websearch_to_tsquery(news.ts_config(language), q)
    ELSE websearch_to_tsquery('english', news_api.search_words(q)) || websearch_to_tsquery('german', news_api.search_words(q))
      || websearch_to_tsquery('french', news_api.search_words(q)) || websearch_to_tsquery('simple', news_api.search_words(q)) END;
COMMENT ON FUNCTION news_api.search_query(text, text) IS
    'The tsquery news_api.search() uses: websearch syntax, parsed with the configuration of '
    'language, or, when language is NULL, OR-ed over english, german, french and simple after '
    'news_api.search_words() took out the stop words of english, german and french. Stop words '
    'alone match nothing. For your own queries: WHERE search_vector @@ news_api.search_query(''...'').';

-- search_hit's result columns
COMMENT ON COLUMN news_api.search_hit.article_id IS 'The article (news_api.articles.id).';
COMMENT ON COLUMN news_api.search_hit.story_id IS 'Its story (news_api.stories.id).';
COMMENT ON COLUMN news_api.search_hit.title IS 'The article''s title.';
COMMENT ON COLUMN news_api.search_hit.publisher IS 'The article''s publisher.';
COMMENT ON COLUMN news_api.search_hit.language IS 'The article''s language code (NULL when unknown).';
COMMENT ON COLUMN news_api.search_hit.published_at IS 'Publication time (UTC); NULL when unknown.';
COMMENT ON COLUMN news_api.search_hit.sort_at IS 'least(published_at, fetched_at): the time since/until bound.';
COMMENT ON COLUMN news_api.search_hit.url IS 'The entry link that first brought the article.';
COMMENT ON COLUMN news_api.search_hit.rank IS
    'ts_rank_cd(search_vector, query, 1): higher is better; comparable within one search only.';
COMMENT ON COLUMN news_api.search_hit.story_title IS 'The story''s title.';
COMMENT ON COLUMN news_api.search_hit.outlet_count IS 'Outlets that carried the story (news_api.stories.outlet_count).';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'newsflow_reader') THEN
        GRANT SELECT ON news_api.article_sources TO newsflow_reader;
        GRANT EXECUTE ON FUNCTION news_api.search_words(text) TO newsflow_reader;
    END IF;
END $$;

-- Operators: the Airflow run an action started ---------------------------------------------------
ALTER TABLE news.operator_actions
    ADD COLUMN dag_id     text,     -- the DAG of the run the action started, if any
    ADD COLUMN dag_run_id text;     -- that run (its state comes from Airflow's API)
-- Search: plans that do not depend on the planner's guess of selectivity -------------------------

-- At 500k articles a phrase in the last 7 days took 292-384 ms (the planner walked
-- articles_sort_idx and tested @@ row by row, reading each row's vector from TOAST), and a
-- phrase over many matches ("ISIS OR \"Islamic State\"") 402-594 ms: the GIN index cannot
-- check word positions, so every article holding both words had its vector read back (the
-- recheck) before the newest were even chosen. Now, in three steps whose cost does not
-- depend on a plan choice:
-- 1. cand: the GIN bitmap of the query with its phrases relaxed to AND ("a <-> b" -> "a & b"),
--    which the index answers exactly: no recheck, no vector read, only the narrow heap
--    (id, sort_at, language). The since/until window is a filter of that scan
--    ("+ interval '0'": not an index condition, so the planner cannot walk articles_sort_idx).
-- 2. matched: newest first, each candidate's vector is read once (the "|| ''" copies it out
--    of TOAST once, for the phrase check, the rank and the own-language check), until
--    `candidates` match the real query.
-- 3. top: ranked, checked in its own language, the best `lim`.
-- The cost is bounded by the relaxed matches (narrow rows) plus `candidates` vectors.
CREATE OR REPLACE FUNCTION news_api.search(q text, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
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
    -- without a language, each article's own-language check parses the same words
    words text := CASE WHEN search.language IS NULL THEN news_api.search_words(q) ELSE q END;
    -- phrase operators (<->, <N>) relaxed to AND: a superset the GIN index answers exactly
    -- (websearch syntax never puts a negation inside a phrase)
    coarse tsquery;
BEGIN
    IF numnode(tsq) = 0 THEN   -- stop words only: nothing matches
        RETURN;
    END IF;
    coarse := regexp_replace(tsq::text, '<(\d+|-)>', '&', 'g')::tsquery;
    RETURN QUERY
    WITH cand AS MATERIALIZED (
        SELECT a.id, a.sort_at, a.language, a.search_vector FROM news_api.articles a
        WHERE a.search_vector @@ coarse
          AND (since IS NULL OR a.sort_at + interval '0' >= since)
          AND (until IS NULL OR a.sort_at + interval '0' < until)
          AND (search.language IS NULL OR a.language = search.language)
          AND (search.publisher IS NULL OR a.publisher = search.publisher)),
    -- Each result is checked against the query parsed in its own language: the OR over
    -- languages finds candidates, but "zebra -city" parsed the German way ('city' is not
    -- stemmed) would let an English article that says "city" through.
    per_language AS MATERIALIZED (
        SELECT l.language, news_api.search_query(words, coalesce(l.language, 'simple')) AS lq
        FROM (SELECT DISTINCT c.language FROM cand c) l),
    matched AS (
        SELECT n.id, n.sort_at, ts_rank_cd(d.v, tsq, 1) AS rank,
               d.v @@ (SELECT p.lq FROM per_language p WHERE p.language IS NOT DISTINCT FROM n.language) AS own
        FROM (SELECT c.id, c.sort_at, c.language, c.search_vector FROM cand c ORDER BY c.sort_at DESC, c.id DESC) n
        CROSS JOIN LATERAL (SELECT n.search_vector || ''::tsvector AS v OFFSET 0) d
        WHERE d.v @@ tsq
        LIMIT candidates),
    top AS (
        SELECT m.id, m.rank, m.sort_at FROM matched m WHERE m.own
        ORDER BY m.rank DESC, m.sort_at DESC, m.id DESC
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
