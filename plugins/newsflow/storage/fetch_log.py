"""SQL for news.fetch_log: one row per HTTP fetch, the audit trail of the pipeline.
URLs and errors are stored with their credentials redacted (``https://***@host/…``)."""

from __future__ import annotations

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
