"""`newsflow dedup rebuild`: re-cluster stored articles into stories.

Used after a threshold change. Deterministic: articles are clustered in an order given
by their content (date, canonical URL, content hash), never by row ids or arrival
order, so the same articles always give the same stories.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from . import db, dedup
from .config import Settings
from .ingest import LOAD_LOCK_KEY
from .storage import articles as article_store
from .storage import dedup_index


def rebuild(url: str, settings: Settings, since: datetime | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    with db.transaction(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
        rows = conn.execute("""
            SELECT id, body, coalesce(published_at, fetched_at) AS at FROM news.articles
            WHERE %s::timestamptz IS NULL OR coalesce(published_at, fetched_at) >= %s
            ORDER BY coalesce(published_at, fetched_at), canonical_url, content_hash""",
            (since, since)).fetchall()
        ids = [r["id"] for r in rows]
        old_stories = article_store.detach(conn, ids)
        dedup_index.remove(conn, ids)
        conn.execute("UPDATE news.stories SET representative_id = NULL, origin_article_id = NULL "
                     "WHERE id = ANY(%s)", (old_stories,))
        touched: set[int] = set()
        for i, row in enumerate(rows, start=1):
            fp = dedup.fingerprint(row["body"], settings)
            index = dedup_index.PgIndex(conn, row["at"], settings.dedup_window_days)
            assignment = dedup.assign(fp, index, settings)
            story_id = assignment.story_id
            if story_id is None:
                story_id = article_store.new_story(conn)
                article_store.set_representative(conn, story_id, row["id"])
            joined = assignment.story_id is not None
            article_store.attach(conn, row["id"], story_id, assignment.relation,
                                 assignment.jaccard if joined else None,
                                 assignment.containment if joined else None)
            dedup_index.add(conn, row["id"], fp, row["at"] or datetime.now(timezone.utc))
            touched.add(story_id)
            if progress and (i % 500 == 0 or i == len(rows)):
                progress(i, len(rows))
        for story_id in sorted(touched):
            article_store.refresh_story(conn, story_id)
        removed = article_store.delete_empty_stories(conn, old_stories)
        return {"articles": len(rows), "stories": len(touched), "old_stories_removed": removed}
