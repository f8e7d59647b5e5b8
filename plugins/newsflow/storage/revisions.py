"""SQL for corrections: news.article_revisions, and the in-place update of an article
whose page changed (migration 010).

The article keeps its id; its previous text becomes a revision row; ``revision`` counts
on. The triggers log the update (fields body, title, ...) in news.changes.
"""

from __future__ import annotations

import psycopg

from ..models import Article, StoredArticle


_TARGET = "id, story_id, content_hash, body_source, published_at, canonical_url"


def known(conn: psycopg.Connection, *, article_id: int | None, canonical_url: str,
          content_hash: str) -> tuple[StoredArticle | None, int | None]:
    """What we hold of a page, in one look-up (at most three rows, each by a unique key):
    the stored article it is about (the entry's article by id, else the one with this
    canonical URL), and the id of the article holding exactly this text."""
    rows = conn.execute(f"""
        SELECT {_TARGET}, id = %(id)s AS by_id FROM news.articles
        WHERE id = %(id)s OR canonical_url = %(url)s OR content_hash = %(hash)s""",
        {"id": article_id, "url": canonical_url, "hash": content_hash}).fetchall()
    target = (next((r for r in rows if r["by_id"]), None)
              or next((r for r in rows if r["canonical_url"] == canonical_url), None))
    same_text = next((r["id"] for r in rows if r["content_hash"] == content_hash), None)
    if target is not None:
        target = StoredArticle(**{k: v for k, v in target.items() if k != "by_id"})
    return target, same_text


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
               fallback_reason = %s, revision = revision + 1
        WHERE id = %s RETURNING revision""",
        (a.title, a.body, a.content_hash, a.word_count, a.published_at, a.language, a.authors,
         a.image_url, a.site_name, a.wire_credit, a.body_source, a.fallback_reason,
         article_id)).fetchone()
    return row["revision"]
