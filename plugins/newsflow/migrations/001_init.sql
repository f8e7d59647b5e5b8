-- 001: the consumer schema `news`: feeds, what they carried, articles and stories.
-- Forward-only: never edit a migration that has shipped; add a new numbered file.

CREATE SCHEMA IF NOT EXISTS news;

-- One row per subscribed feed, with its polling state (the scheduler lives here).
CREATE TABLE news.feeds (
    id                  bigserial PRIMARY KEY,
    url                 text        NOT NULL UNIQUE,
    publisher           text        NOT NULL,
    name                text,
    enabled             boolean     NOT NULL DEFAULT true,
    poll_interval       integer,                      -- seconds; NULL = settings default
    tags                text[]      NOT NULL DEFAULT '{}',
    language            text,
    -- conditional GET and health
    etag                text,
    last_modified       text,
    body_hash           text,                         -- sha256 of the last body: "unchanged" even without 304
    last_status         integer,
    last_polled_at      timestamptz,
    last_full_fetch_at  timestamptz,
    next_poll_at        timestamptz NOT NULL DEFAULT now(),
    effective_interval  integer,                      -- seconds, after ttl/max-age/adaptation
    consecutive_errors  integer     NOT NULL DEFAULT 0,
    last_error          text,
    disabled_reason     text,
    guid_mode           text        NOT NULL DEFAULT 'guid'
                        CHECK (guid_mode IN ('guid', 'link', 'link_title_date')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feeds_due_idx ON news.feeds (next_poll_at) WHERE enabled;

-- Every HTTP fetch we made (feeds and pages): the audit trail ops staff read.
CREATE TABLE news.fetch_log (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('feed', 'page')),
    feed_id     bigint      REFERENCES news.feeds (id) ON DELETE CASCADE,
    entry_id    bigint,
    url         text        NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    status      integer,                              -- HTTP status; NULL when no response
    bytes       integer     NOT NULL DEFAULT 0,
    duration_ms integer,
    new_entries integer,
    error       text
);
CREATE INDEX fetch_log_feed_idx ON news.fetch_log (feed_id, fetched_at DESC);
CREATE INDEX fetch_log_time_idx ON news.fetch_log (fetched_at);

-- One row per feed item seen. Stored before its article is fetched: the work queue.
CREATE TABLE news.entries (
    id              bigserial PRIMARY KEY,
    feed_id         bigint      NOT NULL REFERENCES news.feeds (id) ON DELETE CASCADE,
    guid            text        NOT NULL,             -- stable identity within the feed
    link            text,                             -- as it appeared in the feed (resolved)
    title           text,
    summary         text,                             -- feed summary/content, plain text
    author          text,
    published_at    timestamptz,                      -- UTC
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'loaded', 'failed', 'skipped')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    article_id      bigint,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (feed_id, guid)
);
CREATE INDEX entries_pending_idx ON news.entries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX entries_article_idx ON news.entries (article_id);

-- Clusters of articles that are the same piece of text (syndicated copies).
CREATE TABLE news.stories (
    id                  bigserial PRIMARY KEY,
    representative_id   bigint,                       -- article every new member is checked against
    origin_article_id   bigint,                       -- where the story comes from
    origin_publisher    text,
    origin_basis        text CHECK (origin_basis IN ('earliest', 'credit')),
    title               text,
    first_published_at  timestamptz,
    article_count       integer     NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stories_first_published_idx ON news.stories (first_published_at);

-- One row per distinct piece of content: same canonical URL or same body = one row.
CREATE TABLE news.articles (
    id              bigserial PRIMARY KEY,
    url             text        NOT NULL,             -- the entry link as it appeared in the feed
    canonical_url   text        NOT NULL UNIQUE,
    publisher       text        NOT NULL,
    site_name       text,
    title           text,
    body            text        NOT NULL,
    published_at    timestamptz,                      -- UTC
    language        text,
    authors         text[]      NOT NULL DEFAULT '{}',
    image_url       text,
    word_count      integer     NOT NULL,
    content_hash    text        NOT NULL UNIQUE,      -- sha256 of the normalised body
    body_source     text        NOT NULL CHECK (body_source IN ('page', 'feed')),
    fallback_reason text,                             -- why the feed text was used
    story_id        bigint      REFERENCES news.stories (id),
    story_relation  text CHECK (story_relation IN ('original', 'copy', 'excerpt', 'update')),
    story_jaccard   real,
    story_containment real,
    wire_credit     text,                             -- agency credited in the text
    fetched_at      timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX articles_story_idx ON news.articles (story_id);
CREATE INDEX articles_published_idx ON news.articles (published_at);

ALTER TABLE news.entries
    ADD CONSTRAINT entries_article_fk FOREIGN KEY (article_id) REFERENCES news.articles (id);
ALTER TABLE news.stories
    ADD CONSTRAINT stories_representative_fk FOREIGN KEY (representative_id) REFERENCES news.articles (id),
    ADD CONSTRAINT stories_origin_fk FOREIGN KEY (origin_article_id) REFERENCES news.articles (id);

-- Near-duplicate index (see docs/dedup.md): signatures and LSH band hashes, kept for
-- the dedup window only, so syndication is recognised across runs, processes and workers.
CREATE TABLE news.dedup_signatures (
    article_id   bigint      PRIMARY KEY REFERENCES news.articles (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL,               -- window key (fetch time when unknown)
    shingles     bigint[]    NOT NULL,                -- sorted 5-gram hashes (exact verification)
    minhash      bigint[]    NOT NULL
);
CREATE INDEX dedup_signatures_time_idx ON news.dedup_signatures (published_at);

CREATE TABLE news.dedup_bands (
    band         smallint    NOT NULL,
    hash         bigint      NOT NULL,
    article_id   bigint      NOT NULL REFERENCES news.articles (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (band, hash, article_id)
);
CREATE INDEX dedup_bands_article_idx ON news.dedup_bands (article_id);
CREATE INDEX dedup_bands_time_idx ON news.dedup_bands (published_at);
