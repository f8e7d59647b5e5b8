"""SQL for corrections: news.article_revisions, and the in-place update of an article
whose page changed (migration 010).

The article keeps its id; its previous text becomes a revision row; ``revision`` counts
on. The triggers log the update (fields body, title, ...) in news.changes.
"""

from __future__ import annotations

import psycopg

from ..models import Article


_TARGET = "id, story_id, content_hash, body_source, published_at, canonical_url"


def current(conn: psycopg.Connection, *, article_id: int | None = None,
            canonical_url: str | None = None) -> dict | None:
    """The stored article a page is about: the entry's article (by id), else the one with
    this canonical URL."""
    row = None
    if article_id is not None:
        row = conn.execute(f"SELECT {_TARGET} FROM news.articles WHERE id = %s", (article_id,)).fetchone()
    if row is None and canonical_url is not None:
        row = conn.execute(f"SELECT {_TARGET} FROM news.articles WHERE canonical_url = %s",
                           (canonical_url,)).fetchone()
    return row


def with_text(conn: psycopg.Connection, content_hash: str) -> int | None:
    """The article holding exactly this text, if any."""
    row = conn.execute("SELECT id FROM news.articles WHERE content_hash = %s", (content_hash,)).fetchone()
    return row["id"] if row else None


def replace_text(conn: psycopg.Connection, article_id: int, a: Article) -> int:
    """Keep the current version as a revision and store ``a``'s text and metadata in the
    article row (its id, URLs and publisher stay). Returns the new revision number."""
    conn.execute("""
        INSERT INTO news.article_revisions (article_id, revision, title, body, content_hash,
            word_count, published_at, language, authors, body_source, fetched_at)
        SELECT a.id, a.revision, a.title, a.body, a.content_hash, a.word_count, a.published_at,
               a.language, a.authors, a.body_source,
               coalesce((SELECT max(r.replaced_at) FROM news.article_revisions r WHERE r.article_id = a.id),
                        a.fetched_at)
        FROM news.articles a WHERE a.id = %s""", (article_id,))
    row = conn.execute("""
        UPDATE news.articles SET title = coalesce(%s, title), body = %s, content_hash = %s,
               word_count = %s, published_at = coalesce(%s, published_at),
               language = coalesce(%s, language), authors = %s, image_url = coalesce(%s, image_url),
               site_name = coalesce(%s, site_name), wire_credit = %s, body_source = %s,
               fallback_reason = %s, revision = revision + 1, updated_at = clock_timestamp()
        WHERE id = %s RETURNING revision""",
        (a.title, a.body, a.content_hash, a.word_count, a.published_at, a.language, a.authors,
         a.image_url, a.site_name, a.wire_credit, a.body_source, a.fallback_reason,
         article_id)).fetchone()
    return row["revision"]
