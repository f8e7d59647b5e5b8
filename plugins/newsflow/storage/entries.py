"""SQL for news.entries: the feed items seen, and the queue of article work.

Work is claimed with ``FOR UPDATE SKIP LOCKED`` inside the transaction that also
writes the results: overlapping runs and several workers never take the same entry,
and a worker that dies mid-batch releases its rows when its connection drops, so the
next run finds them pending again and nothing is loaded twice.
"""

from __future__ import annotations

from typing import Sequence

import psycopg

from ..models import PageJob, ParsedEntry


def insert_new(conn: psycopg.Connection, feed_id: int, entries: Sequence[ParsedEntry]) -> tuple[int, int]:
    """Store the entries not seen before; returns (new, rekeyed).

    ``rekeyed`` counts items whose identity is new but whose link and title this feed
    already has: the feed changes GUIDs between polls, and storing them again would
    duplicate every item.
    """
    links = [e.link for e in entries if e.link]
    known = conn.execute("""
        SELECT guid, link, title FROM news.entries WHERE feed_id = %s AND link = ANY(%s)""",
        (feed_id, links)).fetchall() if links else []
    known_guids = {r["guid"] for r in known}
    known_items = {(r["link"], r["title"]) for r in known}
    known_links = {r["link"] for r in known}
    new = rekeyed = 0
    for e in entries:
        # keyed by link (identity downgraded): an item stored under its old GUID is
        # the same item even when its title was edited since
        same_link = (e.guid == e.link and e.raw_guid not in (None, e.guid)
                     and e.link in known_links)
        if e.guid not in known_guids and e.link and ((e.link, e.title) in known_items or same_link):
            rekeyed += 1
            continue
        row = conn.execute("""
            INSERT INTO news.entries (feed_id, guid, link, title, summary, author, published_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (feed_id, guid) DO NOTHING RETURNING id""",
            (feed_id, e.guid, e.link, e.title, e.summary, e.author, e.published_at)).fetchone()
        if row:
            new += 1
    return new, rekeyed


def claim(conn: psycopg.Connection, limit: int, entry_ids: Sequence[int] | None = None) -> list[PageJob]:
    """Lock up to ``limit`` due pending entries for this transaction."""
    rows = conn.execute("""
        SELECT e.id AS entry_id, e.feed_id, f.publisher, e.link, e.title, e.summary, e.author,
               e.published_at, e.attempts
        FROM news.entries e JOIN news.feeds f ON f.id = e.feed_id
        WHERE e.status = 'pending' AND e.next_attempt_at <= now()
          AND (%(ids)s::bigint[] IS NULL OR e.id = ANY(%(ids)s::bigint[]))
        ORDER BY e.next_attempt_at, e.id
        LIMIT %(limit)s
        FOR UPDATE OF e SKIP LOCKED""",
        {"limit": limit, "ids": list(entry_ids) if entry_ids is not None else None}).fetchall()
    return [PageJob(**r) for r in rows]


def mark_loaded(conn: psycopg.Connection, entry_id: int, article_id: int) -> None:
    conn.execute("""
        UPDATE news.entries SET status = 'loaded', article_id = %s, attempts = attempts + 1,
               last_error = NULL, updated_at = now() WHERE id = %s""", (article_id, entry_id))


def mark_retry(conn: psycopg.Connection, entry_id: int, error: str, delay_seconds: float) -> None:
    conn.execute("""
        UPDATE news.entries SET attempts = attempts + 1, last_error = %s,
               next_attempt_at = now() + make_interval(secs => %s), updated_at = now()
        WHERE id = %s""", (error[:2000], delay_seconds, entry_id))


def mark_failed(conn: psycopg.Connection, entry_id: int, error: str) -> None:
    conn.execute("""
        UPDATE news.entries SET status = 'failed', attempts = attempts + 1, last_error = %s,
               updated_at = now() WHERE id = %s""", (error[:2000], entry_id))


def requeue(conn: psycopg.Connection, *, entry_ids: Sequence[int] = (), url: str | None = None,
            since=None, until=None, include_loaded: bool = False) -> int:
    """Put entries back in the queue (re-ingest an entry or URL, backfill a date range)."""
    statuses = ["failed", "pending"] + (["loaded"] if include_loaded else [])
    cur = conn.execute("""
        UPDATE news.entries SET status = 'pending', next_attempt_at = now(), attempts = 0,
               updated_at = now()
        WHERE status = ANY(%(statuses)s)
          AND (cardinality(%(ids)s::bigint[]) = 0 OR id = ANY(%(ids)s::bigint[]))
          AND (%(url)s::text IS NULL OR link = %(url)s)
          AND (%(since)s::timestamptz IS NULL OR coalesce(published_at, first_seen_at) >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR coalesce(published_at, first_seen_at) < %(until)s)""",
        {"statuses": statuses, "ids": list(entry_ids), "url": url, "since": since, "until": until})
    return cur.rowcount


def pending_count(conn: psycopg.Connection, due_only: bool = True) -> int:
    row = conn.execute("""
        SELECT count(*) AS n FROM news.entries
        WHERE status = 'pending' AND (NOT %s OR next_attempt_at <= now())""", (due_only,)).fetchone()
    return row["n"]


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
    """Every failed entry of one feed back in the queue."""
    return conn.execute("""
        UPDATE news.entries SET status = 'pending', next_attempt_at = now(), attempts = 0,
               updated_at = now()
        WHERE feed_id = %s AND status = 'failed'""", (feed_id,)).rowcount


def of_feed(conn: psycopg.Connection, feed_id: int, *, limit: int, offset: int = 0) -> list[dict]:
    """A feed's entries, newest first, with their state and error."""
    return conn.execute("""
        SELECT id, title, link, status, attempts, last_error, published_at, first_seen_at,
               next_attempt_at, article_id
        FROM news.entries WHERE feed_id = %s
        ORDER BY first_seen_at DESC, id DESC LIMIT %s OFFSET %s""", (feed_id, limit, offset)).fetchall()


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
