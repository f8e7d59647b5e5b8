-- 012: coordination locks that a reader cannot take (issue 15).
--
-- Writers used to coordinate with advisory locks (pg_advisory_xact_lock on fixed keys).
-- Any login may take any advisory key, so a reader of news_api could hold the load lock
-- while idle and stall every ingest and purge. These rows replace the keys: a writer
-- locks its row (SELECT ... FOR UPDATE), which needs UPDATE on news.locks; nobody but
-- the owner of schema news has it (readers have no privilege in schema news at all).
-- Row locks are released at the end of the transaction like advisory ones, after the
-- commit is visible: news.changes_lock() keeps the ordering 010 documents.
CREATE TABLE news.locks (
    name    text PRIMARY KEY,
    purpose text NOT NULL
);
INSERT INTO news.locks (name, purpose) VALUES
    ('load', 'held while a batch writes articles and stories (dedup decisions see each other), by purge and story rebuilds'),
    ('changes', 'held from a transaction''s first change (news.changes) to its end: change numbers visible in commit order'),
    ('feeds_sync', 'serialises syncs of feeds files');
REVOKE ALL ON news.locks FROM PUBLIC;

CREATE OR REPLACE FUNCTION news.changes_lock() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM news.locks WHERE name = 'changes' FOR UPDATE;
END $$;

COMMENT ON TABLE news.locks IS
    'Coordination locks of newsflow''s writers (row locks: SELECT ... FOR UPDATE), in the order of docs/politeness.md "Lock order"; readers have no privilege here, so they cannot take them.';
