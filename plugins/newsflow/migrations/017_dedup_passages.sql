-- 017: the passage sketch of every indexed text (newsflow.dedup.passage_hashes).
--
-- The LSH bands find texts that are similar as a whole; a commentary-heavy aggregator
-- post that quotes two paragraphs of a long article shares too little with it as a whole
-- to share a band, and was never verified. The sketch (winnowed hashes of passage grams,
-- ~45 per 700 words) is shared by any two texts with a verbatim run of >= 40 shingles in
-- common. It lives on the signature row, so it is window-limited, removed and re-indexed
-- with it; a GIN index answers "which rows share any of these hashes" (&&).
-- Rows stored before have an empty sketch and an older scheme (models.SIGNATURE_SCHEME 3):
-- upgrade.ready computes them again from their articles' text on the next start.
ALTER TABLE news.dedup_signatures
    ADD COLUMN IF NOT EXISTS passages bigint[] NOT NULL DEFAULT '{}';
-- fastupdate off: with GIN's pending list every lookup scans the entries inserted since
-- the last clean-up (up to gin_pending_list_limit, ~2,000 articles' sketches) one by one,
-- and every write batch here is read by the next one at once (measured at 100k indexed:
-- 6.8 ms per text's lookup with a full pending list).
CREATE INDEX IF NOT EXISTS dedup_signatures_passages_idx ON news.dedup_signatures USING gin (passages)
    WITH (fastupdate = off);
