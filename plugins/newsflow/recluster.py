"""`newsflow dedup rebuild`: re-cluster stored articles into stories.

Used after a threshold change. Deterministic: articles are clustered in an order given
by their content (date, canonical URL, content hash), never by row ids or arrival
order, so the same articles always give the same stories:

- exact ties between candidate stories (``dedup.assign`` breaks them by story id) are
  broken by the position of each story's representative in that content order, not by
  the story ids, which depend on arrival order;
- with ``since``, only articles dated at or after it are re-clustered; older articles
  keep their stories, and newer articles may join those again. An older story whose
  representative was re-clustered gets its earliest remaining member as representative
  (so it can still be joined), and is refreshed (count, origin, first date);
- story ids are kept where possible: a new story re-uses the id of the emptied story
  its first article represented (else belonged to), so a rebuild with unchanged
  settings changes nothing, ids included, and links to stories stay valid.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from . import db, dedup
from .config import Settings
from .dedup import Member
from .ingest import LOAD_LOCK_KEY
from .storage import articles as article_store
from .storage import dedup_index

class _ContentOrderIndex:
    """The PostgreSQL index, with stories presented to ``dedup.assign`` under a rank
    (their representative's position in the content order) instead of their id."""

    def __init__(self, pg: dedup_index.PgIndex, rank_of: dict[int, int], story_of: dict[int, int]):
        self.pg, self.rank_of, self.story_of = pg, rank_of, story_of

    def _rank(self, story_id: int) -> int:
        rank = self.rank_of.get(story_id)
        if rank is None:  # an older story no rebuilt article can normally reach
            rank = self.rank_of[story_id] = -1 - story_id
            self.story_of[rank] = story_id
        return rank

    def candidates(self, bands: Sequence[int]) -> list[Member]:
        return [Member(m.article_id, self._rank(m.story_id), m.shingles)
                for m in self.pg.candidates(bands)]

    def representative(self, rank: int) -> Member:
        rep = self.pg.representative(self.story_of[rank])
        return Member(rep.article_id, rank, rep.shingles)


def rebuild(url: str, settings: Settings, since: datetime | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    with db.transaction(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
        rows = conn.execute("""
            SELECT id, body, coalesce(published_at, fetched_at) AS at, story_id
            FROM news.articles
            WHERE %s::timestamptz IS NULL OR coalesce(published_at, fetched_at) >= %s
            ORDER BY coalesce(published_at, fetched_at), canonical_url, content_hash""",
            (since, since)).fetchall()
        ids = [r["id"] for r in rows]
        old_stories = article_store.detach(conn, ids)
        dedup_index.remove(conn, ids)

        # Older stories that keep members: a representative among them, and a rank.
        kept = [r["id"] for r in conn.execute("""
            SELECT s.id FROM news.stories s WHERE s.id = ANY(%s)
              AND EXISTS (SELECT 1 FROM news.articles a WHERE a.story_id = s.id) ORDER BY s.id""",
            (old_stories,)).fetchall()]
        conn.execute("""
            UPDATE news.stories s SET representative_id = (
                SELECT a.id FROM news.articles a WHERE a.story_id = s.id
                ORDER BY coalesce(a.published_at, a.fetched_at), a.canonical_url, a.content_hash
                LIMIT 1)
            WHERE s.id = ANY(%s) AND (s.representative_id IS NULL OR s.representative_id = ANY(%s))""",
            (kept, ids))
        rank_of: dict[int, int] = {}
        if since is not None:  # stories older articles in reach of the rebuilt ones are in
            reachable = since - timedelta(days=settings.dedup_window_days)
            older = conn.execute("""
                SELECT s.id FROM news.stories s JOIN news.articles r ON r.id = s.representative_id
                WHERE s.id IN (SELECT story_id FROM news.articles WHERE story_id IS NOT NULL
                               AND coalesce(published_at, fetched_at) >= %s)
                ORDER BY coalesce(r.published_at, r.fetched_at), r.canonical_url, r.content_hash""",
                (reachable,)).fetchall()
            rank_of = {r["id"]: rank for rank, r in enumerate(older)}
        offset = len(rank_of)
        story_of = {rank: story_id for story_id, rank in rank_of.items()}

        # Emptied stories: their ids are re-used by new stories, the rest deleted.
        reusable = set(old_stories) - set(kept)
        conn.execute("UPDATE news.stories SET representative_id = NULL, origin_article_id = NULL "
                     "WHERE id = ANY(%s)", (sorted(reusable),))

        now = datetime.now(timezone.utc)
        rebuilt: set[int] = set()
        for i, row in enumerate(rows, start=1):
            fp = dedup.fingerprint(row["body"], settings)
            pg = dedup_index.PgIndex(conn, row["at"], settings.dedup_window_days)
            assignment = dedup.assign(fp, _ContentOrderIndex(pg, rank_of, story_of), settings)
            joined = assignment.story_id is not None
            if joined:
                story_id = story_of[assignment.story_id]
            else:
                # the emptied story this article was in, unless an earlier one took it
                if row["story_id"] in reusable:
                    story_id = row["story_id"]
                    reusable.discard(story_id)
                else:
                    story_id = article_store.new_story(conn)
                article_store.set_representative(conn, story_id, row["id"])
                rank_of[story_id] = offset + i
                story_of[offset + i] = story_id
            article_store.attach(conn, row["id"], story_id, assignment.relation,
                                 assignment.jaccard if joined else None,
                                 assignment.containment if joined else None)
            dedup_index.add(conn, row["id"], fp, row["at"] or now)
            rebuilt.add(story_id)
            if progress and (i % 500 == 0 or i == len(rows)):
                progress(i, len(rows))
        for story_id in sorted(rebuilt | set(kept)):
            article_store.refresh_story(conn, story_id)
        removed = article_store.delete_empty_stories(conn, old_stories)
        return {"articles": len(rows), "stories": len(rebuilt), "old_stories_removed": removed}
