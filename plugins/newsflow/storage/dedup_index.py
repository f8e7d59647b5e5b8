"""SQL for the near-duplicate index: news.dedup_signatures and news.dedup_bands.

Implements :class:`newsflow.dedup.StoryIndex` on PostgreSQL, so every process and
every Celery worker sees the same index.  Band lookups use the (band, hash) primary
key b-tree; candidates are limited to the dedup window around the article's date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import psycopg

from ..dedup import Fingerprint, Member


class PgIndex:
    def __init__(self, conn: psycopg.Connection, around: datetime, window_days: int):
        self.conn = conn
        self.lo = around - timedelta(days=window_days)
        self.hi = around + timedelta(days=window_days)

    def candidates(self, bands: Sequence[int]) -> list[Member]:
        rows = self.conn.execute("""
            WITH q AS (SELECT (ordinality - 1)::smallint AS band, hash
                       FROM unnest(%(bands)s::bigint[]) WITH ORDINALITY AS t(hash)),
                 hits AS (SELECT DISTINCT b.article_id FROM news.dedup_bands b
                          JOIN q ON b.band = q.band AND b.hash = q.hash
                          WHERE b.published_at BETWEEN %(lo)s AND %(hi)s)
            SELECT a.id, a.story_id, s.shingles
            FROM hits JOIN news.articles a ON a.id = hits.article_id
                      JOIN news.dedup_signatures s ON s.article_id = a.id
            WHERE a.story_id IS NOT NULL
            ORDER BY a.id""",
            {"bands": list(bands), "lo": self.lo, "hi": self.hi}).fetchall()
        return [Member(article_id=r["id"], story_id=r["story_id"], shingles=tuple(r["shingles"]))
                for r in rows]

    def representative(self, story_id: int) -> Member:
        row = self.conn.execute("""
            SELECT a.id, a.story_id, s.shingles
            FROM news.stories st JOIN news.articles a ON a.id = st.representative_id
                                 JOIN news.dedup_signatures s ON s.article_id = a.id
            WHERE st.id = %s""", (story_id,)).fetchone()
        if row is None:
            raise KeyError(f"story {story_id} has no indexed representative")
        return Member(article_id=row["id"], story_id=row["story_id"], shingles=tuple(row["shingles"]))


def add(conn: psycopg.Connection, article_id: int, fp: Fingerprint, published_at: datetime) -> None:
    conn.execute("""
        INSERT INTO news.dedup_signatures (article_id, published_at, shingles, minhash)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (article_id) DO UPDATE SET published_at = EXCLUDED.published_at,
            shingles = EXCLUDED.shingles, minhash = EXCLUDED.minhash""",
        (article_id, published_at, list(fp.shingles), list(fp.minhash)))
    conn.execute("DELETE FROM news.dedup_bands WHERE article_id = %s", (article_id,))
    conn.execute("""
        INSERT INTO news.dedup_bands (band, hash, article_id, published_at)
        SELECT (ordinality - 1)::smallint, hash, %s, %s
        FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(hash)
        ON CONFLICT DO NOTHING""", (article_id, published_at, list(fp.bands)))


def remove(conn: psycopg.Connection, article_ids: Sequence[int]) -> None:
    conn.execute("DELETE FROM news.dedup_bands WHERE article_id = ANY(%s)", (list(article_ids),))
    conn.execute("DELETE FROM news.dedup_signatures WHERE article_id = ANY(%s)", (list(article_ids),))


def purge(conn: psycopg.Connection, older_than: datetime) -> int:
    """Drop index rows outside the window; the articles themselves stay."""
    conn.execute("DELETE FROM news.dedup_bands WHERE published_at < %s", (older_than,))
    return conn.execute("DELETE FROM news.dedup_signatures WHERE published_at < %s",
                        (older_than,)).rowcount
