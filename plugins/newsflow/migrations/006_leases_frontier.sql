-- 006: short transactions and a politeness-aware frontier.
--
-- Entries are claimed with a lease (owner + expiry) in a short transaction; pages are
-- fetched and extracted with no transaction open; results are written in another short
-- transaction by the lease's owner only. A lease whose owner is gone is free at once: an
-- owner is a worker id held as a session advisory lock (news.worker_seq, see
-- storage/workers.py), so a killed worker's entries are claimable as soon as its
-- connection drops; lease_until bounds the rest.

ALTER TABLE news.entries
    ADD COLUMN host        text,                    -- politeness unit of link: host[:port], lower case
    ADD COLUMN lease_owner integer,                 -- worker holding the entry (NULL: free)
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN not_before  timestamptz,             -- the host slot reserved for this entry's fetch
    ADD COLUMN strikes     integer NOT NULL DEFAULT 0, -- claims without a result; quarantined at NEWSFLOW_MAX_STRIKES
    ADD COLUMN notes       text;                    -- what the validation boundary changed or dropped

UPDATE news.entries
SET host = lower(substring(link from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]*)'))
WHERE link IS NOT NULL;

CREATE INDEX entries_lease_idx ON news.entries (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE SEQUENCE news.worker_seq AS integer CYCLE;

-- Per-host politeness shared by every worker and process: when the host may be asked
-- next, and until when it asked (429/503 Retry-After) to be left alone.
CREATE TABLE news.hosts (
    host             text        PRIMARY KEY,
    next_allowed_at  timestamptz NOT NULL DEFAULT now(),
    deferred_until   timestamptz,
    deferred_reason  text,
    crawl_delay      real,                          -- seconds, from robots.txt
    updated_at       timestamptz NOT NULL DEFAULT now()
);
