-- 009: what operating newsflow needs (the ops console in the Airflow UI and the CLI).
-- Forward-only: never edit a migration that has shipped; add a new numbered file.

-- Who disabled a feed decides what may enable it again (README, "Disabled feeds"):
--   'file'     the feeds file said `enabled: false`; `enabled: true` there enables it again;
--   'operator' someone disabled it (console or `newsflow feeds disable`); only an operator
--              enables it again;
--   NULL       on a disabled feed: newsflow itself disabled it (consecutive failures, 410
--              Gone); it stays disabled until an operator re-enables it, whatever the file says.
ALTER TABLE news.feeds ADD COLUMN disabled_by text CHECK (disabled_by IN ('file', 'operator'));
UPDATE news.feeds SET disabled_by = CASE WHEN disabled_reason IS NULL THEN 'file'
                                         WHEN disabled_reason = 'disabled by operator' THEN 'operator' END
WHERE NOT enabled;
UPDATE news.feeds SET disabled_reason = 'disabled in the feeds file (enabled: false)'
WHERE NOT enabled AND disabled_by = 'file' AND disabled_reason IS NULL;

-- Every operator action (console, CLI, feeds file, a manual Airflow run): who, when, what.
CREATE TABLE news.operator_actions (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,                  -- Airflow user name, OS user (CLI), 'feeds file'
    source    text        NOT NULL CHECK (source IN ('console', 'cli', 'feeds file', 'airflow')),
    action    text        NOT NULL CHECK (action IN ('poll now', 'enable', 'disable', 'requeue entry',
                                                     'requeue failed entries', 'requeue')),
    feed_id   bigint      REFERENCES news.feeds (id) ON DELETE SET NULL,
    entry_id  bigint      REFERENCES news.entries (id) ON DELETE SET NULL,
    detail    text        NOT NULL DEFAULT ''        -- the reason given, what changed, the run id
);
CREATE INDEX operator_actions_feed_idx ON news.operator_actions (feed_id, at DESC);
CREATE INDEX operator_actions_time_idx ON news.operator_actions (at DESC);

-- Each feed's rhythm, measured from its own history (the median gap between its last
-- arrivals of new entries), refreshed by the maintenance run; and the stale episode
-- already reported (the last arrival it was stale after), so a stale feed is reported
-- once per episode, not every day.
CREATE TABLE news.feed_rhythm (
    feed_id            bigint      PRIMARY KEY REFERENCES news.feeds (id) ON DELETE CASCADE,
    rhythm_seconds     integer,                      -- NULL: too few arrivals to tell
    samples            integer     NOT NULL DEFAULT 0,  -- gaps measured
    computed_at        timestamptz NOT NULL DEFAULT now(),
    stale_reported_for timestamptz                   -- the episode reported: its last arrival
);

-- The counts each Airflow task returned, by run: the console's Pipeline page shows the
-- last runs of the DAGs with them (run states come from Airflow's REST API).
CREATE TABLE news.run_counts (
    dag_id       text        NOT NULL,
    run_id       text        NOT NULL,
    task_id      text        NOT NULL,
    map_index    integer     NOT NULL DEFAULT -1,
    counts       jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id, task_id, map_index)
);
CREATE INDEX run_counts_time_idx ON news.run_counts (dag_id, recorded_at DESC);

-- Every failed attempt is recorded (on_retry_callback as well): `final` tells the last one.
ALTER TABLE news.task_failures ADD COLUMN final boolean NOT NULL DEFAULT true;

-- Indexes for the console's pages (bench/console_bench.py: 10,000 feeds, 1M articles).
CREATE INDEX entries_feed_seen_idx ON news.entries (feed_id, first_seen_at DESC);
CREATE INDEX entries_seen_idx ON news.entries (first_seen_at);
CREATE INDEX entries_failed_idx ON news.entries (updated_at DESC) WHERE status = 'failed';
CREATE INDEX entries_feed_failed_idx ON news.entries (feed_id) WHERE status = 'failed';
CREATE INDEX articles_created_idx ON news.articles (created_at) INCLUDE (story_relation);
CREATE INDEX stories_latest_idx ON news.stories (first_published_at DESC NULLS LAST, id DESC);
-- title search: the words of each title, stored (no to_tsvector per row when rechecking)
ALTER TABLE news.stories ADD COLUMN title_words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(title, ''))) STORED;
CREATE INDEX stories_title_words_idx ON news.stories USING gin (title_words);
CREATE INDEX fetch_log_feed_ok_idx ON news.fetch_log (feed_id, fetched_at DESC)
    WHERE kind = 'feed' AND error IS NULL;
