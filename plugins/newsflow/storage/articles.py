"""SQL for news.articles and news.stories."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg

from ..models import Article


def find_exact(conn: psycopg.Connection, canonical_url: str, content_hash: str) -> int | None:
    """The article that already is this one: same canonical URL or same body."""
    row = conn.execute("""
        SELECT id FROM news.articles WHERE canonical_url = %s OR content_hash = %s
        ORDER BY id LIMIT 1""", (canonical_url, content_hash)).fetchone()
    return row["id"] if row else None


def insert(conn: psycopg.Connection, a: Article, *, story_id: int, relation: str,
           jaccard: float | None, containment: float | None) -> int:
    row = conn.execute("""
        INSERT INTO news.articles (url, canonical_url, publisher, site_name, title, body,
            published_at, language, authors, image_url, word_count, content_hash, body_source,
            fallback_reason, story_id, story_relation, story_jaccard, story_containment,
            wire_credit)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id""",
        (a.url, a.canonical_url, a.publisher, a.site_name, a.title, a.body, a.published_at,
         a.language, a.authors, a.image_url, a.word_count, a.content_hash, a.body_source,
         a.fallback_reason, story_id, relation, jaccard, containment, a.wire_credit)).fetchone()
    return row["id"]


def new_story(conn: psycopg.Connection) -> int:
    return conn.execute("INSERT INTO news.stories DEFAULT VALUES RETURNING id").fetchone()["id"]


def set_representative(conn: psycopg.Connection, story_id: int, article_id: int) -> None:
    conn.execute("UPDATE news.stories SET representative_id = %s WHERE id = %s",
                 (article_id, story_id))


def members_with_shingles(conn: psycopg.Connection, story_id: int) -> list[dict]:
    """A story's members with their indexed shingle sets (empty when not indexed)."""
    return conn.execute("""
        SELECT a.id, a.published_at, (a.id = st.representative_id) AS is_representative,
               coalesce(s.shingles, '{}') AS shingles
        FROM news.articles a JOIN news.stories st ON st.id = a.story_id
        LEFT JOIN news.dedup_signatures s ON s.article_id = a.id
        WHERE a.story_id = %s ORDER BY a.id""", (story_id,), binary=True).fetchall()


def refresh_story(conn: psycopg.Connection, story_id: int) -> None:
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
            representative_id = coalesce(representative_id, %s), updated_at = now()
        WHERE id = %s""",
        (len(members), min(dates) if dates else None, origin_id, origin_id, origin_publisher,
         basis, earliest["id"], story_id))


def story_overview(conn: psycopg.Connection, since: datetime | None = None) -> list[dict]:
    """Stories with every outlet that carried them, biggest first (the demo's summary).

    Outlets come from news.story_outlets, so an outlet whose copy was byte-identical to
    another's (one article row) is listed too, as 'identical'.
    """
    return conn.execute("""
        SELECT s.id, s.title, s.origin_publisher, s.origin_basis, s.first_published_at,
               count(o.*) AS outlet_count, s.article_count,
               array_agg(o.publisher || ' (' || o.relation || ')'
                         ORDER BY o.published_at, o.publisher) AS members
        FROM news.stories s JOIN news.story_outlets o ON o.story_id = s.id
        WHERE %s::timestamptz IS NULL OR s.updated_at >= %s
        GROUP BY s.id ORDER BY count(o.*) DESC, s.first_published_at, s.id""",
        (since, since)).fetchall()


def detach(conn: psycopg.Connection, article_ids: Sequence[int]) -> list[int]:
    """Unlink articles from their stories (before re-clustering); returns the old story ids."""
    rows = conn.execute("""
        UPDATE news.articles a SET story_id = NULL, story_relation = NULL
        FROM (SELECT id, story_id FROM news.articles WHERE id = ANY(%s) FOR UPDATE) old
        WHERE a.id = old.id RETURNING old.story_id""", (list(article_ids),)).fetchall()
    return sorted({r["story_id"] for r in rows if r["story_id"] is not None})


def attach(conn: psycopg.Connection, article_id: int, story_id: int, relation: str,
           jaccard: float | None, containment: float | None) -> None:
    conn.execute("""
        UPDATE news.articles SET story_id = %s, story_relation = %s, story_jaccard = %s,
               story_containment = %s WHERE id = %s""",
        (story_id, relation, jaccard, containment, article_id))


def delete_empty_stories(conn: psycopg.Connection, story_ids: Sequence[int]) -> int:
    conn.execute("""UPDATE news.stories SET representative_id = NULL, origin_article_id = NULL
                    WHERE id = ANY(%s) AND NOT EXISTS
                    (SELECT 1 FROM news.articles a WHERE a.story_id = news.stories.id)""",
                 (list(story_ids),))
    cur = conn.execute("""DELETE FROM news.stories s WHERE s.id = ANY(%s) AND NOT EXISTS
                          (SELECT 1 FROM news.articles a WHERE a.story_id = s.id)""",
                       (list(story_ids),))
    return cur.rowcount


def counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute("""
        SELECT (SELECT count(*) FROM news.feeds) AS feeds,
               (SELECT count(*) FROM news.entries) AS entries,
               (SELECT count(*) FROM news.entries WHERE status = 'pending') AS pending,
               (SELECT count(*) FROM news.entries WHERE status = 'failed') AS failed,
               (SELECT count(*) FROM news.articles) AS articles,
               (SELECT count(*) FROM news.articles WHERE body_source = 'feed') AS fallbacks,
               (SELECT count(*) FROM news.stories) AS stories,
               (SELECT count(*) FROM (SELECT story_id FROM news.story_outlets GROUP BY story_id
                                      HAVING count(*) > 1) multi) AS syndicated""").fetchone()
    return dict(row)
