"""SQL for deletions: news.tombstones (migration 010), and deleting articles.

The delete trigger on news.articles writes the tombstone (id, canonical URL, when, why)
and the change row; the reason is this transaction's setting ``newsflow.delete_reason``.
A tombstone not lifted blocks the article's return: a later feed item with the same
canonical URL or the very same text is not loaded, unless an operator allows it
(``newsflow requeue --allow-deleted`` sets ``entries.allow_deleted``).
"""

from __future__ import annotations

from typing import Sequence

import psycopg


def blocking(conn: psycopg.Connection, canonical_url: str, content_hash: str) -> dict | None:
    """The tombstone that keeps this article out, if any."""
    return conn.execute("""
        SELECT article_id, deleted_at, reason FROM news.tombstones
        WHERE lifted_at IS NULL AND (canonical_url = %s OR content_hash = %s)
        ORDER BY deleted_at DESC LIMIT 1""", (canonical_url, content_hash)).fetchone()


def lift(conn: psycopg.Connection, canonical_url: str, content_hash: str) -> int:
    """An operator allowed the article back: its tombstones stop blocking (they stay, so
    consumers that deleted it downstream keep the record)."""
    return conn.execute("""
        UPDATE news.tombstones SET lifted_at = clock_timestamp()
        WHERE lifted_at IS NULL AND (canonical_url = %s OR content_hash = %s)""",
        (canonical_url, content_hash)).rowcount


def existing(conn: psycopg.Connection, *, article_ids: Sequence[int] = (), url: str | None = None) -> list[dict]:
    """The articles named by id, or known under ``url`` (canonical URL or an entry link)."""
    return conn.execute("""
        SELECT id, story_id FROM news.articles
        WHERE id = ANY(%(ids)s) OR canonical_url = %(url)s
           OR id IN (SELECT article_id FROM news.entries WHERE link = %(url)s AND article_id IS NOT NULL)
        ORDER BY id""", {"ids": list(article_ids), "url": url}).fetchall()


def delete_articles(conn: psycopg.Connection, article_ids: Sequence[int], reason: str) -> int:
    """Delete articles, leaving tombstones (the caller holds the write locks and repairs
    their stories). Their entries stay, failed, with the reason; their revisions and
    index rows go with them."""
    ids = list(article_ids)
    conn.execute("SELECT set_config('newsflow.delete_reason', %s, true)", (reason,))
    conn.execute("""
        UPDATE news.entries SET article_id = NULL, status = 'failed', lease_owner = NULL,
               last_error = 'article ' || article_id || ' deleted: ' || %s, updated_at = now()
        WHERE article_id = ANY(%s)""", (reason[:1000], ids))
    conn.execute("UPDATE news.stories SET representative_id = NULL WHERE representative_id = ANY(%s)", (ids,))
    conn.execute("UPDATE news.stories SET origin_article_id = NULL WHERE origin_article_id = ANY(%s)", (ids,))
    n = conn.execute("DELETE FROM news.articles WHERE id = ANY(%s)", (ids,)).rowcount
    conn.execute("SELECT set_config('newsflow.delete_reason', '', true)")
    return n
