-- 008: a faster fingerprint, and one index less to maintain per band row.
--
-- * Signatures carry the scheme that computed them (newsflow.models.SIGNATURE_SCHEME) and
--   their band hashes. Rows of an older scheme are computed again from their articles'
--   text on the next start (maintenance.reindex_signatures, called by db.ready). The band
--   rows of scheme-1 signatures could not be found through their signature, so they go
--   here and are written again with it (the MinHash values themselves did not change).
-- * Band rows keep only the lookup key (band, hash, article_id): no time index (lookups
--   filter on the column, the purge goes through the signatures) and no article index or
--   foreign key (64 index entries fewer per article). A signature's band rows are deleted
--   with it, by a trigger that finds them through their key, so deleting an article
--   (cascade), re-indexing or purging the window leaves no band row behind.

ALTER TABLE news.dedup_signatures
    ADD COLUMN scheme smallint NOT NULL DEFAULT 1,
    ADD COLUMN bands  bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX dedup_signatures_scheme_idx ON news.dedup_signatures (scheme);

TRUNCATE news.dedup_bands;
ALTER TABLE news.dedup_bands DROP CONSTRAINT IF EXISTS dedup_bands_article_id_fkey;
DROP INDEX IF EXISTS news.dedup_bands_article_idx;
DROP INDEX IF EXISTS news.dedup_bands_time_idx;

CREATE FUNCTION news.dedup_drop_bands() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM news.dedup_bands b
    USING unnest(OLD.bands) WITH ORDINALITY AS t(hash, n)
    WHERE b.band = t.n - 1 AND b.hash = t.hash AND b.article_id = OLD.article_id;
    RETURN NULL;
END $$;

CREATE TRIGGER dedup_signatures_drop_bands AFTER DELETE ON news.dedup_signatures
    FOR EACH ROW EXECUTE FUNCTION news.dedup_drop_bands();
