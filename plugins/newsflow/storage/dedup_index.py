"""SQL for the near-duplicate index: news.dedup_signatures and news.dedup_bands.

Implements :class:`newsflow.dedup.StoryIndex` on PostgreSQL, so every process and
every Celery worker sees the same index.  Band lookups use the (band, hash) primary
key b-tree; candidates are limited to the dedup window around the article's date.

One round trip per lookup and one per insert (measured in
``bench/dedup_index_bench.py``): ``candidates`` also fetches the representative of
every candidate story, which ``representative`` then answers from memory (``assign``
asks for each candidate story's representative right after the lookup), and ``add``
is one statement. Shingle arrays travel in binary.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

import psycopg

from ..models import Fingerprint, Member

_CANDIDATES = """
    WITH q AS (SELECT (ordinality - 1)::smallint AS band, hash
               FROM unnest(%(bands)b::bigint[]) WITH ORDINALITY AS t(hash)),
         hits AS (SELECT DISTINCT b.article_id FROM news.dedup_bands b
                  JOIN q ON b.band = q.band AND b.hash = q.hash
                  WHERE b.published_at BETWEEN %(lo)s AND %(hi)s),
         c AS MATERIALIZED (SELECT a.id, a.story_id FROM hits JOIN news.articles a ON a.id = hits.article_id
                            WHERE a.story_id IS NOT NULL)
    SELECT c.id, c.story_id, s.shingles, st.representative_id AS rep_id, false AS rep_only
    FROM c JOIN news.dedup_signatures s ON s.article_id = c.id
           LEFT JOIN news.stories st ON st.id = c.story_id
    UNION ALL
    SELECT r.id, r.story_id, rs.shingles, st.id, true
    FROM (SELECT DISTINCT story_id FROM c) cs
         JOIN news.stories st ON st.id = cs.story_id
         JOIN news.articles r ON r.id = st.representative_id
         JOIN news.dedup_signatures rs ON rs.article_id = r.id
    WHERE r.id NOT IN (SELECT c.id FROM c JOIN news.dedup_signatures s ON s.article_id = c.id)
"""


class PgIndex:
    def __init__(self, conn: psycopg.Connection, around: datetime, window_days: int):
        self.conn = conn
        self.lo = around - timedelta(days=window_days)
        self.hi = around + timedelta(days=window_days)
        # story id -> its representative as of the last lookup (None: not indexed)
        self._representatives: dict[int, Member | None] = {}

    def candidates(self, bands: Sequence[int]) -> list[Member]:
        with self.conn.cursor(binary=True) as cur:
            rows = cur.execute(_CANDIDATES, {"bands": list(bands), "lo": self.lo, "hi": self.hi}
                               ).fetchall()
        members: dict[int, Member] = {}
        rep_of: dict[int, int | None] = {}
        extra: dict[int, Member] = {}  # story id (of the lookup) -> representative
        for r in rows:
            if r["rep_only"]:
                extra[r["rep_id"]] = Member(article_id=r["id"], story_id=r["story_id"],
                                            shingles=tuple(r["shingles"]))
            else:
                members[r["id"]] = Member(article_id=r["id"], story_id=r["story_id"],
                                          shingles=tuple(r["shingles"]))
                rep_of[r["story_id"]] = r["rep_id"]
        self._representatives = {}
        for story_id, rep_id in rep_of.items():
            self._representatives[story_id] = (members.get(rep_id) if rep_id in members
                                               else extra.get(story_id))
        return [members[k] for k in sorted(members)]

    def representative(self, story_id: int) -> Member:
        if story_id in self._representatives:
            rep = self._representatives[story_id]
        else:
            row = self.conn.execute("""
                SELECT a.id, a.story_id, s.shingles
                FROM news.stories st JOIN news.articles a ON a.id = st.representative_id
                                     JOIN news.dedup_signatures s ON s.article_id = a.id
                WHERE st.id = %s""", (story_id,), binary=True).fetchone()
            rep = row and Member(article_id=row["id"], story_id=row["story_id"],
                                 shingles=tuple(row["shingles"]))
        if rep is None:
            raise KeyError(f"story {story_id} has no indexed representative")
        return rep

    def order(self, story_id: int) -> int:
        return story_id


_ADD = """
    WITH sig AS (
        INSERT INTO news.dedup_signatures (article_id, published_at, shingles, minhash)
        VALUES (%(id)s, %(at)s, %(shingles)b::bigint[], %(minhash)b::bigint[])
        ON CONFLICT (article_id) DO UPDATE SET published_at = EXCLUDED.published_at,
            shingles = EXCLUDED.shingles, minhash = EXCLUDED.minhash
        RETURNING xmax <> 0 AS existed),
    q AS (SELECT (ordinality - 1)::smallint AS band, hash
          FROM unnest(%(bands)b::bigint[]) WITH ORDINALITY AS t(hash)),
    stale AS (  -- only when re-indexed: bands that changed
        DELETE FROM news.dedup_bands b WHERE (SELECT existed FROM sig) AND b.article_id = %(id)s
          AND NOT EXISTS (SELECT 1 FROM q WHERE q.band = b.band AND q.hash = b.hash))
    INSERT INTO news.dedup_bands (band, hash, article_id, published_at)
    SELECT band, hash, %(id)s, %(at)s FROM q
    ON CONFLICT (band, hash, article_id) DO UPDATE SET published_at = EXCLUDED.published_at
"""


def add(conn: psycopg.Connection, article_id: int, fp: Fingerprint, published_at: datetime) -> None:
    """Index an article (again: its rows are replaced). One statement.

    The arrays go as binary parameters (``%b``): dumping ~600 bigints as text costs
    more than the insert itself."""
    conn.execute(_ADD, {"id": article_id, "at": published_at, "shingles": list(fp.shingles),
                        "minhash": list(fp.minhash), "bands": list(fp.bands)}, binary=True)


def remove(conn: psycopg.Connection, article_ids: Sequence[int]) -> None:
    conn.execute("DELETE FROM news.dedup_bands WHERE article_id = ANY(%s)", (list(article_ids),))
    conn.execute("DELETE FROM news.dedup_signatures WHERE article_id = ANY(%s)", (list(article_ids),))


def purge(conn: psycopg.Connection, older_than: datetime) -> int:
    """Drop index rows outside the window; the articles themselves stay."""
    conn.execute("DELETE FROM news.dedup_bands WHERE published_at < %s", (older_than,))
    return conn.execute("DELETE FROM news.dedup_signatures WHERE published_at < %s",
                        (older_than,)).rowcount
