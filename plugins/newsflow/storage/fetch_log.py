"""SQL for news.fetch_log: one row per HTTP fetch, the audit trail of the pipeline.
URLs and errors are stored with their credentials redacted (``https://***@host/…``)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from ..redaction import redact


def record(conn: psycopg.Connection, *, kind: str, url: str, status: int | None, bytes: int,
           duration_ms: int | None, error: str | None = None, feed_id: int | None = None,
           entry_id: int | None = None, new_entries: int | None = None) -> None:
    conn.execute("""
        INSERT INTO news.fetch_log (kind, feed_id, entry_id, url, status, bytes, duration_ms,
                                    new_entries, error)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (kind, feed_id, entry_id, redact(url), status, bytes, duration_ms, new_entries,
         redact(error)[:2000] if error else None))


def purge(conn: psycopg.Connection, older_than_days: int) -> int:
    cur = conn.execute("DELETE FROM news.fetch_log WHERE fetched_at < now() - make_interval(days => %s)",
                       (older_than_days,))
    return cur.rowcount


def feed_history(conn: psycopg.Connection, feed_id: int, *, since, bucket_seconds: int) -> list[dict]:
    """One feed's polls in time buckets from ``since``: polls, errors, not modified, new
    entries, and the last status of the bucket (the console's history chart)."""
    return conn.execute("""
        SELECT date_bin(make_interval(secs => %(bucket)s), fetched_at, %(since)s) AS at,
               count(*) AS polls,
               count(*) FILTER (WHERE error IS NOT NULL) AS errors,
               count(*) FILTER (WHERE status = 304) AS not_modified,
               coalesce(sum(new_entries), 0) AS new_entries,
               (array_agg(status ORDER BY fetched_at DESC))[1] AS last_status,
               (array_agg(error ORDER BY fetched_at DESC))[1] AS last_error
        FROM news.fetch_log
        WHERE feed_id = %(feed)s AND kind = 'feed' AND fetched_at >= %(since)s
        GROUP BY 1 ORDER BY 1""", {"bucket": bucket_seconds, "since": since, "feed": feed_id}).fetchall()


def feed_polls(conn: psycopg.Connection, feed_id: int, *, limit: int, since: datetime | None = None) -> list[dict]:
    """A feed's latest polls (at or after ``since``), newest first."""
    return conn.execute("""
        SELECT fetched_at, status, bytes, duration_ms, new_entries, error FROM news.fetch_log
        WHERE feed_id = %s AND kind = 'feed' AND (%s::timestamptz IS NULL OR fetched_at >= %s)
        ORDER BY fetched_at DESC LIMIT %s""",
        (feed_id, since, since, limit)).fetchall()
