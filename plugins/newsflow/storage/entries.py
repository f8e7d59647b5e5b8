"""SQL for news.entries: the feed items seen, and the queue of article work.

Work is handed out with a lease (``claim``), in a transaction of its own that commits at
once: pages are then fetched and extracted with no transaction open, and the results are
written (``owned`` + ``mark_*``) in another short transaction, only for the entries whose
lease the writer still holds. A lease whose owner is gone (its worker lock, see
``storage.workers``, was released when the process died) or whose ``lease_until`` passed
is free again, so a killed worker loses nothing and nothing is loaded twice.

Which entries a claim hands out is the frontier's business (``newsflow.frontier``): the
oldest due entries, at most a few per host, hosts in rotation, none of a host that asked
us to wait; each entry gets the host slot (``not_before``) reserved for its fetch.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Sequence

import psycopg
from psycopg.rows import class_row

from ..dberrors import RECORD_FAULTS
from ..models import Candidate, PageJob, ParsedEntry
from ..redaction import redact
from .workers import LIVE_OWNERS_SQL

log = logging.getLogger(__name__)

_JOB_COLUMNS = """e.id AS entry_id, e.feed_id, f.publisher, e.link, e.title, e.summary, e.author,
                  e.published_at, e.attempts, e.host, e.not_before, e.strikes, e.article_id,
                  e.allow_deleted"""


def insert_new(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry],
               hosts: Sequence[str | None]) -> tuple[int, int, list[str]]:
    """Store the entries not seen before; returns (new, rekeyed, problems).

    ``rekeyed`` counts items whose identity is new but whose link and title this feed
    already has: the feed changes GUIDs between polls, and storing them again would
    duplicate every item. ``hosts``: each entry's politeness unit (politeness.host_key).
    The new items go in one statement; when the database refuses one of them, each is
    tried in a savepoint of its own, the refused ones are skipped and described in
    ``problems``, and the others are stored.
    """
    links = [e.link for e in entries if e.link]
    known = conn.execute("""
        SELECT guid, link, title FROM news.entries WHERE feed_id = %s AND link = ANY(%s)""",
        (feed_id, links)).fetchall() if links else []
    known_guids = {r["guid"] for r in known}
    known_items = {(r["link"], r["title"]) for r in known}
    known_links = {r["link"] for r in known}
    rekeyed = 0
    fresh: list[tuple[ParsedEntry, str | None]] = []
    for e, host in zip(entries, hosts, strict=True):
        # keyed by link (identity downgraded): an item stored under its old GUID is
        # the same item even when its title was edited since
        same_link = (e.guid == e.link and e.raw_guid not in (None, e.guid)
                     and e.link in known_links)
        if e.guid not in known_guids and e.link and ((e.link, e.title) in known_items or same_link):
            rekeyed += 1
        elif e.guid not in known_guids:
            fresh.append((e, host))
    if not fresh:
        return 0, rekeyed, []
    try:
        with conn.transaction():  # a savepoint: all new items in one statement
            return _insert(conn, feed_id, fresh), rekeyed, []
    except RECORD_FAULTS:
        pass
    new, problems = 0, []
    for e, host in fresh:  # one of them is refused: each in a savepoint of its own
        try:
            with conn.transaction():
                new += _insert(conn, feed_id, [(e, host)])
        except RECORD_FAULTS as exc:
            problems.append(f"item {redact(e.guid[:80])!r} refused: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]}")
    return new, rekeyed, problems


def _insert(conn: psycopg.Connection, feed_id: int, fresh: Sequence[tuple[ParsedEntry, str | None]]) -> int:
    """Insert entries (one statement); how many were new."""
    columns = list(zip(*[(e.guid, e.link, e.title, e.summary, e.author, e.published_at, host,
                          "; ".join(e.notes) or None, e.updated_at) for e, host in fresh], strict=True))
    rows = conn.execute("""
        INSERT INTO news.entries (feed_id, guid, link, title, summary, author, published_at, host, notes,
                                  feed_updated_at)
        SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                 %s::timestamptz[], %s::text[], %s::text[], %s::timestamptz[])
        ON CONFLICT (feed_id, guid) DO NOTHING RETURNING id""", (feed_id, *map(list, columns))).fetchall()
    return len(rows)


def requeue_changed(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry],
                    min_interval: float) -> int:
    """Corrections: loaded items of this feed seen again with another title or summary, or
    a later "updated" date, get the new values and go back in the queue, so their page is
    fetched again (ingestion updates the article if its text changed). Only loaded entries:
    those no worker holds (a pending one may be leased and locked by a write batch).
    The fetch waits until ``min_interval`` seconds after the entry's last write, so a feed
    that rewrites its items on every poll cannot make us re-fetch its pages each time.
    A first "updated" date on an entry stored without one is only recorded. Returns the
    number of entries queued again. Touches no article or story (takes no write lock)."""
    items = [e for e in entries if e.guid]
    if not items:
        return 0
    rows = conn.execute("""
        WITH p AS (SELECT * FROM unnest(%(guids)s::text[], %(titles)s::text[], %(summaries)s::text[],
                                        %(updated)s::timestamptz[]) AS p(guid, title, summary, updated_at)),
        c AS (SELECT e.id, p.title, p.summary, p.updated_at,
                     (p.title IS DISTINCT FROM e.title OR p.summary IS DISTINCT FROM e.summary
                      OR p.updated_at > e.feed_updated_at) AS changed
              FROM news.entries e JOIN p ON p.guid = e.guid
              WHERE e.feed_id = %(feed)s AND e.status = 'loaded'
                AND (p.title IS DISTINCT FROM e.title OR p.summary IS DISTINCT FROM e.summary
                     OR p.updated_at IS DISTINCT FROM e.feed_updated_at AND p.updated_at IS NOT NULL))
        UPDATE news.entries e SET title = c.title, summary = c.summary,
               feed_updated_at = coalesce(c.updated_at, e.feed_updated_at),
               status = CASE WHEN c.changed THEN 'pending' ELSE e.status END,
               next_attempt_at = CASE WHEN c.changed
                   THEN greatest(now(), e.updated_at + make_interval(secs => %(interval)s))
                   ELSE e.next_attempt_at END,
               attempts = CASE WHEN c.changed THEN 0 ELSE e.attempts END,
               updated_at = now()
        FROM c WHERE e.id = c.id
        RETURNING coalesce(c.changed, false) AS requeued""",
        {"guids": [e.guid for e in items], "titles": [e.title for e in items],
         "summaries": [e.summary for e in items], "updated": [e.updated_at for e in items],
         "feed": feed_id, "interval": min_interval}).fetchall()
    return sum(1 for r in rows if r["requeued"])


# --- the queue ----------------------------------------------------------------------------

# An entry no live worker holds: never leased, its lease ran out, or its worker is gone
# (needs the ``live`` CTE of LIVE_OWNERS_SQL).
_FREE = ("(e.lease_owner IS NULL OR e.lease_until < now() "
         "OR e.lease_owner NOT IN (SELECT owner FROM live))")


def candidates(conn: psycopg.Connection, *, scan: int, horizon: float,
               entry_ids: Sequence[int] | None) -> list[Candidate]:
    """The oldest due pending entries that are free (no live lease), with their rank in
    their host's queue and whether their host can take a request soon. Locks nothing."""
    cur = conn.cursor(row_factory=class_row(Candidate))
    return cur.execute(f"""
        WITH live AS MATERIALIZED ({LIVE_OWNERS_SQL}),
        cand AS (
            SELECT e.id, e.host, e.next_attempt_at, e.strikes FROM news.entries e
            WHERE e.status = 'pending' AND e.next_attempt_at <= now()
              AND (%(ids)s::bigint[] IS NULL OR e.id = ANY(%(ids)s::bigint[]))
              AND {_FREE}
            ORDER BY e.next_attempt_at, e.id
            LIMIT %(scan)s)
        SELECT c.id, c.host, c.strikes,
               row_number() OVER (PARTITION BY c.host ORDER BY c.next_attempt_at, c.id) AS rank,
               (h.host IS NULL OR ((h.deferred_until IS NULL OR h.deferred_until <= now())
                                   AND h.next_allowed_at <= now() + make_interval(secs => %(horizon)s)))
                   AS open
        FROM cand c LEFT JOIN news.hosts h ON h.host = c.host""",
        {"ids": list(entry_ids) if entry_ids is not None else None, "scan": scan,
         "horizon": horizon}).fetchall()


def lock_free(conn: psycopg.Connection, ids: Sequence[int]) -> list[int]:
    """Lock those of ``ids`` still pending and free (other claimers skip them)."""
    rows = conn.execute(f"""
        WITH live AS MATERIALIZED ({LIVE_OWNERS_SQL})
        SELECT e.id FROM news.entries e
        WHERE e.id = ANY(%s) AND e.status = 'pending' AND {_FREE}
        ORDER BY e.id FOR UPDATE OF e SKIP LOCKED""", (list(ids),)).fetchall()
    return [r["id"] for r in rows]


def lease(conn: psycopg.Connection, owner: int, lease_seconds: float,
          slots: dict[int, datetime | None]) -> list[PageJob]:
    """Lease the (locked) entries to ``owner``, each with its host slot. A claim counts no
    strike: only the entry's own failures do (``mark_retry(strike=True)``)."""
    ids = list(slots)
    rows = conn.execute(f"""
        UPDATE news.entries e SET lease_owner = %(owner)s,
               lease_until = now() + make_interval(secs => %(lease)s),
               not_before = s.not_before, updated_at = now()
        FROM unnest(%(ids)s::bigint[], %(slots)s::timestamptz[]) AS s(id, not_before),
             news.feeds f
        WHERE e.id = s.id AND f.id = e.feed_id
        RETURNING {_JOB_COLUMNS}""",
        {"owner": owner, "lease": lease_seconds, "ids": ids, "slots": [slots[i] for i in ids]}).fetchall()
    jobs = {r["entry_id"]: PageJob(**r) for r in rows}
    return [jobs[i] for i in ids if i in jobs]


def quarantine(conn: psycopg.Connection, ids: Sequence[int], max_strikes: int) -> int:
    """Fail (locked) pending entries that already have ``max_strikes`` strikes (loading
    them failed that often; only possible once max_strikes was lowered: the write
    quarantines an entry at its last strike)."""
    cur = conn.execute("""
        UPDATE news.entries SET status = 'failed', lease_owner = NULL, lease_until = NULL,
               last_error = format('quarantined: loading it failed %%s times; last error: %%s',
                                   strikes, coalesce(last_error, 'none')),
               updated_at = now()
        WHERE id = ANY(%s)""", (list(ids),))
    if cur.rowcount:
        log.warning("quarantined %d entries after %d failed loads", cur.rowcount, max_strikes)
    return cur.rowcount


def owned(conn: psycopg.Connection, owner: int, ids: Sequence[int]) -> set[int]:
    """Lock and return those of ``ids`` whose lease ``owner`` still holds (pending)."""
    rows = conn.execute("""
        SELECT id FROM news.entries WHERE id = ANY(%s) AND lease_owner = %s AND status = 'pending'
        ORDER BY id FOR UPDATE""", (list(ids), owner)).fetchall()
    return {r["id"] for r in rows}


def release(conn: psycopg.Connection, owner: int, ids: Sequence[int] | None = None) -> int:
    """Give leases back unused (interrupted): no attempt and no strike counted."""
    cur = conn.execute("""
        UPDATE news.entries SET lease_owner = NULL, lease_until = NULL, not_before = NULL,
               updated_at = now()
        WHERE lease_owner = %s AND status = 'pending'
          AND (%s::bigint[] IS NULL OR id = ANY(%s::bigint[]))""",
        (owner, list(ids) if ids is not None else None, list(ids) if ids is not None else None))
    return cur.rowcount


_DONE = "lease_owner = NULL, lease_until = NULL, not_before = NULL, updated_at = now()"


def mark_loaded(conn: psycopg.Connection, entry_id: int, article_id: int) -> None:
    conn.execute(f"""
        UPDATE news.entries SET status = 'loaded', article_id = %s, attempts = attempts + 1,
               last_error = NULL, strikes = 0, allow_deleted = false, {_DONE} WHERE id = %s""",
        (article_id, entry_id))


def mark_retry(conn: psycopg.Connection, entry_id: int, error: str, delay_seconds: float, *,
               attempt: bool = True, strike: bool = False, owner: int | None = None) -> None:
    """Back in the queue after ``delay_seconds``. ``attempt``: count it as a fetch attempt
    (a host's Retry-After is not); ``strike``: add a strike (loading it failed: the
    database refused its rows). ``owner``: only while that worker holds its lease."""
    conn.execute(f"""
        UPDATE news.entries SET attempts = attempts + %s, last_error = %s,
               next_attempt_at = now() + make_interval(secs => %s),
               strikes = strikes + %s, {_DONE}
        WHERE id = %s AND status = 'pending' AND (%s::bigint IS NULL OR lease_owner = %s)""",
        (int(attempt), redact(error)[:2000], delay_seconds, int(strike), entry_id, owner, owner))


def mark_failed(conn: psycopg.Connection, entry_id: int, error: str) -> None:
    conn.execute(f"""
        UPDATE news.entries SET status = 'failed', attempts = attempts + 1, last_error = %s,
               strikes = 0, {_DONE} WHERE id = %s""", (redact(error)[:2000], entry_id))


def requeue(conn: psycopg.Connection, *, entry_ids: Sequence[int] = (), url: str | None = None,
            since=None, until=None, include_loaded: bool = False, allow_deleted: bool = False,
            feed_id: int | None = None, failed_only: bool = False) -> int:
    """Put entries back in the queue (re-ingest an entry or URL, backfill a date range, the
    failed entries of a feed), with their attempts and strikes (quarantine) cleared.
    A loaded entry's page is fetched again and its article corrected if its text changed.
    ``allow_deleted``: an article deleted before may be loaded again from these entries."""
    statuses = ["failed"] if failed_only else ["failed", "pending"] + (["loaded"] if include_loaded else [])
    cur = conn.execute("""
        UPDATE news.entries SET status = 'pending', next_attempt_at = now(), attempts = 0,
               strikes = 0, allow_deleted = %(allow)s, updated_at = now()
        WHERE status = ANY(%(statuses)s)
          AND (%(feed)s::bigint IS NULL OR feed_id = %(feed)s)
          AND (cardinality(%(ids)s::bigint[]) = 0 OR id = ANY(%(ids)s::bigint[]))
          AND (%(url)s::text IS NULL OR link = %(url)s)
          AND (%(since)s::timestamptz IS NULL OR coalesce(published_at, first_seen_at) >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR coalesce(published_at, first_seen_at) < %(until)s)""",
        {"statuses": statuses, "ids": list(entry_ids), "url": url, "since": since, "until": until,
         "allow": allow_deleted, "feed": feed_id})
    return cur.rowcount


def purge(conn: psycopg.Connection, older_than_days: int) -> int:
    """Drop finished raw entries past retention; articles stay."""
    cur = conn.execute("""
        DELETE FROM news.entries WHERE status = 'failed'
          AND updated_at < now() - make_interval(days => %s)""", (older_than_days,))
    return cur.rowcount


# --- operations console and operations (newsflow.operations) -------------------------------

def get(conn: psycopg.Connection, entry_id: int) -> dict | None:
    return conn.execute("""
        SELECT id, feed_id, status, title, link, attempts, last_error FROM news.entries WHERE id = %s""",
        (entry_id,)).fetchone()


def requeue_failed(conn: psycopg.Connection, feed_id: int) -> int:
    """Every failed entry of one feed back in the queue (quarantined ones too)."""
    return requeue(conn, feed_id=feed_id, failed_only=True)


def of_feed(conn: psycopg.Connection, feed_id: int, *, limit: int, offset: int = 0) -> list[dict]:
    """A feed's entries, newest first, with their state and error."""
    return conn.execute("""
        SELECT id, title, link, status, attempts, last_error, published_at, first_seen_at,
               next_attempt_at, article_id
        FROM news.entries WHERE feed_id = %s
        ORDER BY first_seen_at DESC, id DESC LIMIT %s OFFSET %s""", (feed_id, limit, offset)).fetchall()


def due_waiting(conn: psycopg.Connection) -> int:
    """Pending entries an ingest run could take now: due, held by no live worker, on a host
    that did not ask us to wait (requeued, retried or corrected entries that no new entry
    announces)."""
    return conn.execute(f"""
        WITH live AS MATERIALIZED ({LIVE_OWNERS_SQL})
        SELECT count(*) AS n FROM news.entries e
        WHERE e.status = 'pending' AND e.next_attempt_at <= now() AND {_FREE}
          AND NOT EXISTS (SELECT 1 FROM news.hosts h WHERE h.host = e.host AND h.deferred_until > now())
        """).fetchone()["n"]


def pending_latest(conn: psycopg.Connection, *, limit: int, offset: int = 0) -> list[dict]:
    """Pending entries, the next due first, with their feed and why they wait."""
    return conn.execute("""
        SELECT e.id, e.feed_id, f.publisher, f.name, e.title, e.link, e.attempts, e.last_error,
               e.next_attempt_at, e.first_seen_at, e.lease_owner IS NOT NULL AND e.lease_until > now() AS leased
        FROM news.entries e JOIN news.feeds f ON f.id = e.feed_id
        WHERE e.status = 'pending'
        ORDER BY e.next_attempt_at, e.id LIMIT %s OFFSET %s""", (limit, offset)).fetchall()


def queue_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Pending entries (due now / waiting for a retry) and failed ones."""
    return conn.execute("""
        SELECT count(*) FILTER (WHERE next_attempt_at <= now()) AS pending_due,
               count(*) FILTER (WHERE next_attempt_at > now()) AS pending_waiting,
               (SELECT count(*) FROM news.entries WHERE status = 'failed') AS failed
        FROM news.entries WHERE status = 'pending'""").fetchone()


def failed_latest(conn: psycopg.Connection, *, limit: int, offset: int = 0) -> list[dict]:
    """Failed entries, most recently failed first, with their feed."""
    return conn.execute("""
        SELECT e.id, e.feed_id, f.publisher, f.name, e.title, e.link, e.attempts, e.last_error,
               e.updated_at
        FROM news.entries e JOIN news.feeds f ON f.id = e.feed_id
        WHERE e.status = 'failed'
        ORDER BY e.updated_at DESC, e.id DESC LIMIT %s OFFSET %s""", (limit, offset)).fetchall()
