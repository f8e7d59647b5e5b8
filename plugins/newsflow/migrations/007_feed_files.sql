-- 007: feeds files already synced, so an unchanged file costs a hash, not a sync.
-- (10,000 feeds took 8-25 s on every run; see pipeline.sync_file.)

CREATE TABLE news.feed_files (
    path       text        PRIMARY KEY,            -- absolute path of the file as synced
    sha256     text        NOT NULL,               -- of its bytes
    feed_ids   bigint[]    NOT NULL,               -- the feeds it declares, in file order
    synced_at  timestamptz NOT NULL DEFAULT now()
);
