"""SQL for news.feed_files: which feeds file was synced with which content."""

from __future__ import annotations

from typing import Sequence

import psycopg


def get(conn: psycopg.Connection, path: str) -> tuple[str, list[int]] | None:
    """(sha256, feed ids) of the file's last sync, or None."""
    row = conn.execute("SELECT sha256, feed_ids FROM news.feed_files WHERE path = %s", (path,)).fetchone()
    return (row["sha256"], list(row["feed_ids"])) if row else None


def put(conn: psycopg.Connection, path: str, digest: str, feed_ids: Sequence[int]) -> None:
    conn.execute("""
        INSERT INTO news.feed_files (path, sha256, feed_ids) VALUES (%s, %s, %s)
        ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, feed_ids = EXCLUDED.feed_ids,
            synced_at = now()""", (path, digest, list(feed_ids)))
