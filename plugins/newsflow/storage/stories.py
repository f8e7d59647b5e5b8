"""SQL for news.stories: clusters of articles that are copies of one text."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg

from ..models import StoryOverview


def create(conn: psycopg.Connection) -> int:
    return conn.execute("INSERT INTO news.stories DEFAULT VALUES RETURNING id").fetchone()["id"]


def set_representative(conn: psycopg.Connection, story_id: int, article_id: int) -> None:
    conn.execute("UPDATE news.stories SET representative_id = %s WHERE id = %s",
                 (article_id, story_id))


def representative_published_at(conn: psycopg.Connection, story_id: int) -> datetime | None:
    """The publication date of a story's representative (None: no representative, or undated)."""
    row = conn.execute("""
        SELECT a.published_at FROM news.stories st JOIN news.articles a ON a.id = st.representative_id
        WHERE st.id = %s""", (story_id,)).fetchone()
    return row["published_at"] if row else None


def members_with_shingles(conn: psycopg.Connection, story_id: int) -> list[dict]:
    """A story's members with their indexed shingle sets (empty when not indexed)."""
    return conn.execute("""
        SELECT a.id, coalesce(s.shingles, '{}') AS shingles
        FROM news.articles a LEFT JOIN news.dedup_signatures s ON s.article_id = a.id
        WHERE a.story_id = %s ORDER BY a.id""", (story_id,), binary=True).fetchall()


def refresh(conn: psycopg.Connection, story_id: int) -> None:
    """Recompute a story's count, first date, title and origin from its members.

    Origin: the earliest published member, unless a member's text credits a wire
    agency ("(Reuters) -", "Via Reuters"): then the member from that agency if we
    have it, else the agency's name with the earliest member.
    """
    members = conn.execute("""
        SELECT id, publisher, title, published_at, fetched_at, wire_credit
        FROM news.articles WHERE story_id = %s
        ORDER BY coalesce(published_at, fetched_at), canonical_url""", (story_id,)).fetchall()
    if not members:
        conn.execute("DELETE FROM news.stories WHERE id = %s", (story_id,))
        return
    earliest = members[0]
    origin_id, origin_publisher, basis = earliest["id"], earliest["publisher"], "earliest"
    credits = [m["wire_credit"] for m in members if m["wire_credit"]]
    if credits:
        credit = max(set(credits), key=lambda c: (credits.count(c), c))
        from_agency = [m for m in members if credit.lower() in m["publisher"].lower()]
        origin_id = from_agency[0]["id"] if from_agency else earliest["id"]
        origin_publisher = from_agency[0]["publisher"] if from_agency else credit
        basis = "credit"
    dates = [m["published_at"] for m in members if m["published_at"]]
    conn.execute("""
        UPDATE news.stories SET article_count = %s, first_published_at = %s,
            title = coalesce((SELECT title FROM news.articles WHERE id = %s), title),
            origin_article_id = %s, origin_publisher = %s, origin_basis = %s,
            representative_id = coalesce(representative_id, %s), updated_at = clock_timestamp()
        WHERE id = %s""",
        (len(members), min(dates) if dates else None, origin_id, origin_id, origin_publisher,
         basis, earliest["id"], story_id))


def overview(conn: psycopg.Connection, since: datetime | None = None,
             limit: int | None = None) -> list[StoryOverview]:
    """Stories with every outlet that carried them, biggest first (the demo's summary);
    with ``limit``, at most that many syndicated and that many single-outlet stories.

    Outlets come from news.story_outlets (kept at load time, migration 010), so an outlet
    whose copy was byte-identical to another's (one article row) is listed too, as
    'identical'; the counts are the story's own columns.
    """
    rows = conn.execute("""
        WITH s AS (
            (SELECT * FROM news.stories WHERE outlet_count > 1
               AND (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
             ORDER BY outlet_count DESC, first_published_at, id LIMIT %(limit)s)
            UNION ALL
            (SELECT * FROM news.stories WHERE outlet_count = 1
               AND (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
             ORDER BY first_published_at, id LIMIT %(limit)s))
        SELECT s.id, s.title, s.origin_publisher, s.origin_basis, s.first_published_at,
               s.outlet_count, s.article_count,
               ARRAY(SELECT o.publisher || ' (' || o.relation || ')' FROM news.story_outlets o
                     WHERE o.story_id = s.id ORDER BY o.published_at, o.publisher) AS members
        FROM s ORDER BY s.outlet_count DESC, s.first_published_at, s.id""",
        {"since": since, "limit": limit}).fetchall()
    return [StoryOverview(**r) for r in rows]


# --- re-clustering (newsflow.recluster) -----------------------------------------------------

def keeping_members(conn: psycopg.Connection, story_ids: Sequence[int]) -> list[int]:
    """Those of ``story_ids`` that still have members."""
    return [r["id"] for r in conn.execute("""
        SELECT s.id FROM news.stories s WHERE s.id = ANY(%s)
          AND EXISTS (SELECT 1 FROM news.articles a WHERE a.story_id = s.id) ORDER BY s.id""",
        (list(story_ids),)).fetchall()]


def reelect_representatives(conn: psycopg.Connection, story_ids: Sequence[int],
                            detached: Sequence[int]) -> None:
    """Give each of ``story_ids`` whose representative is unset or among the ``detached``
    articles its earliest remaining member, in content order."""
    conn.execute("""
        UPDATE news.stories s SET representative_id = (
            SELECT a.id FROM news.articles a WHERE a.story_id = s.id
            ORDER BY coalesce(a.published_at, a.fetched_at), a.canonical_url, a.content_hash
            LIMIT 1)
        WHERE s.id = ANY(%s) AND (s.representative_id IS NULL OR s.representative_id = ANY(%s))""",
        (list(story_ids), list(detached)))


def in_reach_by_content_order(conn: psycopg.Connection, since: datetime) -> list[int]:
    """Stories with a member dated at or after ``since``, ordered by their representative's
    content order (date, canonical URL, content hash)."""
    return [r["id"] for r in conn.execute("""
        SELECT s.id FROM news.stories s JOIN news.articles r ON r.id = s.representative_id
        WHERE s.id IN (SELECT story_id FROM news.articles WHERE story_id IS NOT NULL
                       AND coalesce(published_at, fetched_at) >= %s)
        ORDER BY coalesce(r.published_at, r.fetched_at), r.canonical_url, r.content_hash""",
        (since,)).fetchall()]


def clear_references(conn: psycopg.Connection, story_ids: Sequence[int]) -> None:
    """Unset representative and origin (emptied stories about to be re-used or deleted)."""
    conn.execute("UPDATE news.stories SET representative_id = NULL, origin_article_id = NULL "
                 "WHERE id = ANY(%s)", (sorted(story_ids),))


def delete_empty(conn: psycopg.Connection, story_ids: Sequence[int]) -> int:
    """Delete those of ``story_ids`` left without members (their references point out of
    the story row, so nothing needs clearing first)."""
    cur = conn.execute("""DELETE FROM news.stories s WHERE s.id = ANY(%s) AND NOT EXISTS
                          (SELECT 1 FROM news.articles a WHERE a.story_id = s.id)""",
                       (list(story_ids),))
    return cur.rowcount


# --- operations console -------------------------------------------------------------------------

def latest(conn: psycopg.Connection, *, q: str | None = None, syndicated_only: bool = True,
           limit: int, offset: int = 0) -> list[dict]:
    """The latest stories (first published, newest first) with their outlets: those carried
    by several outlets (all with ``syndicated_only`` off), or, with ``q``, every story whose
    title has those words (prefix match, any order): a search finds single-outlet stories
    too, and stays an index lookup (bench/console_bench.py)."""
    return conn.execute("""
        WITH s AS (
            SELECT st.id, st.title, st.origin_publisher, st.origin_basis, st.first_published_at,
                   st.article_count
            FROM news.stories st
            WHERE (%(q)s::text IS NULL OR st.title_words @@ to_tsquery('simple', %(q)s))
              AND (NOT %(syndicated)s OR st.article_count > 1 OR st.outlet_count > 1)
            ORDER BY st.first_published_at DESC NULLS LAST, st.id DESC
            LIMIT %(limit)s OFFSET %(offset)s)
        SELECT s.*, o.outlets FROM s LEFT JOIN LATERAL (
            SELECT json_agg(json_build_object('publisher', so.publisher, 'relation', so.relation)
                            ORDER BY so.published_at NULLS LAST, so.publisher) AS outlets
            FROM news.story_outlets so WHERE so.story_id = s.id) o ON true
        ORDER BY s.first_published_at DESC NULLS LAST, s.id DESC""",
        {"q": _tsquery(q), "syndicated": syndicated_only and not _tsquery(q), "limit": limit,
         "offset": offset}).fetchall()


def _tsquery(q: str | None) -> str | None:
    """Words of a search box as a prefix-matching tsquery ("bank canad" -> 'bank':* & 'canad':*);
    every word is quoted, so nothing typed is tsquery syntax."""
    import re

    words = re.findall(r"\w+", q or "")
    return " & ".join("'" + w.lower() + "':*" for w in words[:8]) or None


def get(conn: psycopg.Connection, story_id: int) -> dict | None:
    return conn.execute("""
        SELECT id, title, origin_publisher, origin_basis, origin_article_id, first_published_at,
               article_count, created_at, updated_at
        FROM news.stories WHERE id = %s""", (story_id,)).fetchone()


def outlets(conn: psycopg.Connection, story_id: int) -> list[dict]:
    """Every outlet that carried a story (news.story_outlets), in publication order."""
    return conn.execute("""
        SELECT publisher, article_id, relation, url, published_at FROM news.story_outlets
        WHERE story_id = %s ORDER BY published_at NULLS LAST, publisher""", (story_id,)).fetchall()
