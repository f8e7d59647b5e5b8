"""SQL for news.articles: the stored texts, their story membership, and the totals."""

from __future__ import annotations

from typing import Sequence

import psycopg
from psycopg.rows import class_row

from ..models import Article, ArticleText, Totals


def insert(conn: psycopg.Connection, a: Article, *, story_id: int, relation: str,
           jaccard: float | None, containment: float | None,
           signal: str | None = None, signal_value: float | None = None) -> int:
    row = conn.execute("""
        INSERT INTO news.articles (url, canonical_url, publisher, site_name, title, body,
            published_at, language, authors, image_url, word_count, content_hash, body_source,
            fallback_reason, story_id, story_relation, story_jaccard, story_containment,
            story_signal, story_signal_value, wire_credit)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id""",
        (a.url, a.canonical_url, a.publisher, a.site_name, a.title, a.body, a.published_at,
         a.language, a.authors, a.image_url, a.word_count, a.content_hash, a.body_source,
         a.fallback_reason, story_id, relation, jaccard, containment, signal, signal_value,
         a.wire_credit)).fetchone()
    return row["id"]


def attach(conn: psycopg.Connection, article_id: int, story_id: int, relation: str,
           jaccard: float | None, containment: float | None,
           signal: str | None = None, signal_value: float | None = None) -> None:
    conn.execute("""
        UPDATE news.articles SET story_id = %s, story_relation = %s, story_jaccard = %s,
               story_containment = %s, story_signal = %s, story_signal_value = %s WHERE id = %s""",
        (story_id, relation, jaccard, containment, signal, signal_value, article_id))


def detach(conn: psycopg.Connection, article_ids: Sequence[int]) -> list[int]:
    """Unlink articles from their stories (before re-clustering); returns the old story ids."""
    rows = conn.execute("""
        UPDATE news.articles a SET story_id = NULL, story_relation = NULL
        FROM (SELECT id, story_id FROM news.articles WHERE id = ANY(%s) FOR UPDATE) old
        WHERE a.id = old.id RETURNING old.story_id""", (list(article_ids),)).fetchall()
    return sorted({r["story_id"] for r in rows if r["story_id"] is not None})


def in_content_order(conn: psycopg.Connection, since=None) -> list[ArticleText]:
    """Articles (dated at or after ``since``) in an order given by their content, never
    by ids or arrival: (date, canonical URL, content hash). The rebuild's order."""
    return conn.cursor(row_factory=class_row(ArticleText)).execute("""
        SELECT id, body, coalesce(published_at, fetched_at) AS at, story_id
        FROM news.articles
        WHERE %s::timestamptz IS NULL OR coalesce(published_at, fetched_at) >= %s
        ORDER BY coalesce(published_at, fetched_at), canonical_url, content_hash""",
        (since, since)).fetchall()


def totals(conn: psycopg.Connection) -> Totals:
    row = conn.execute("""
        SELECT (SELECT count(*) FROM news.feeds) AS feeds,
               (SELECT count(*) FROM news.entries) AS entries,
               (SELECT count(*) FROM news.entries WHERE status = 'pending') AS pending,
               (SELECT count(*) FROM news.entries WHERE status = 'failed') AS failed,
               (SELECT count(*) FROM news.articles) AS articles,
               (SELECT count(*) FROM news.articles WHERE body_source = 'feed') AS fallbacks,
               (SELECT count(*) FROM news.stories) AS stories,
               (SELECT count(*) FROM news.stories WHERE outlet_count > 1) AS syndicated,
               (SELECT count(*) FROM news.stories WHERE outlet_count = 1) AS single_outlet""").fetchone()
    return Totals(**row)


def loaded_per_hour(conn: psycopg.Connection, hours: int) -> list[dict]:
    """Articles loaded in each of the last ``hours`` hours (hours without any included)."""
    return conn.execute("""
        WITH a AS (
            SELECT date_trunc('hour', created_at) AS at, count(*) AS articles,
                   count(*) FILTER (WHERE story_relation IS DISTINCT FROM 'original') AS joined
            FROM news.articles
            WHERE created_at >= date_trunc('hour', now()) - make_interval(hours => %(h)s - 1)
            GROUP BY 1)
        SELECT h.at, coalesce(a.articles, 0) AS articles, coalesce(a.joined, 0) AS joined
        FROM generate_series(date_trunc('hour', now()) - make_interval(hours => %(h)s - 1),
                             date_trunc('hour', now()), interval '1 hour') AS h(at)
        LEFT JOIN a ON a.at = h.at ORDER BY h.at""", {"h": hours}).fetchall()


def of_story(conn: psycopg.Connection, story_id: int) -> list[dict]:
    """A story's articles in publication order."""
    return conn.execute("""
        SELECT id, publisher, title, url, story_relation, story_jaccard, story_containment,
               word_count, body_source, wire_credit, published_at, created_at
        FROM news.articles WHERE story_id = %s
        ORDER BY coalesce(published_at, fetched_at), id""", (story_id,)).fetchall()
