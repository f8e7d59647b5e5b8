"""`newsflow dedup rebuild`: re-cluster stored articles into stories.

Used after a threshold change. Deterministic: articles are clustered in an order given
by their content (date, canonical URL, content hash), never by row ids or arrival
order, so the same articles always give the same stories:

- exact ties between candidate stories (``dedup.assign`` breaks them by the index's
  ``order``) are broken by the position of each story's representative in that content
  order, not by the story ids, which depend on arrival order;
- with ``since``, only articles dated at or after it are re-clustered; older articles
  keep their stories, and newer articles may join those again. An older story whose
  representative was re-clustered gets its earliest remaining member as representative
  (so it can still be joined), and is refreshed (count, origin, first date);
- story ids are kept where possible: a new story re-uses the id of the emptied story
  its first article represented (else belonged to), so a rebuild with unchanged
  settings changes nothing, ids included, and links to stories stay valid;
- in the same transaction, stories without an event (new ids) are placed in one, and
  stories whose signature changed are placed again (``events.place_again``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Callable

from . import db, dedup, events, stories
from .config import Settings
from .models import Interrupted
from .storage import articles as article_store
from .storage import dedup_index
from .storage import stories as story_store
from .storage.locks import take_write_locks


class _ContentOrderIndex(dedup_index.PgIndex):
    """The PostgreSQL index, with ties between stories broken by their representative's
    position in the content order instead of their id."""

    def __init__(self, conn, around: datetime, window_days: int, rank_of: dict[int, int],
                 passage_max_texts: int):
        super().__init__(conn, around, window_days, passage_max_texts)
        self.rank_of = rank_of

    def order(self, story_id: int) -> int:
        # an older story no rebuilt article can normally reach: before every ranked one
        return self.rank_of.get(story_id, -1 - story_id)


def rebuild(url: str, settings: Settings, since: datetime | None = None,
            progress: Callable[[int, int], None] | None = None,
            stop: threading.Event | None = None) -> dict[str, int]:
    """Re-cluster the articles (since ``since``) in one transaction under the write locks
    (waits bounded by NEWSFLOW_LOCK_TIMEOUT). A set ``stop`` ends the wait or the work
    (``Interrupted``): everything is rolled back, the stories stay as they were."""
    with db.transaction(url, settings.lock_timeout) as conn:
        take_write_locks(conn, timeout=settings.lock_timeout, stop=stop)
        rows = article_store.in_content_order(conn, since)
        ids = [r.id for r in rows]
        old_stories = article_store.detach(conn, ids)
        dedup_index.remove(conn, ids)

        # Older stories that keep members: a representative among them, and a rank.
        kept = story_store.keeping_members(conn, old_stories)
        story_store.reelect_representatives(conn, kept, detached=ids)
        rank_of: dict[int, int] = {}
        if since is not None:  # stories older articles in reach of the rebuilt ones are in
            reachable = since - timedelta(days=settings.dedup_window_days)
            rank_of = {story_id: rank for rank, story_id in
                       enumerate(story_store.in_reach_by_content_order(conn, reachable))}
        offset = len(rank_of)

        # Emptied stories: their ids are re-used by new stories, the rest deleted.
        reusable = set(old_stories) - set(kept)
        story_store.clear_references(conn, reusable)

        rebuilt: set[int] = set()
        for i, row in enumerate(rows, start=1):
            if stop is not None and stop.is_set():
                raise Interrupted(f"stopped after re-clustering {i - 1} of {len(rows)} articles (rolled back)")

            def new_story(previous: int | None = row.story_id) -> int:
                # the emptied story this article was in, unless an earlier one took it
                if previous in reusable:
                    reusable.discard(previous)
                    return previous
                return story_store.create(conn)

            fp = dedup.fingerprint(row.body, settings)
            index = _ContentOrderIndex(conn, row.at, settings.dedup_window_days, rank_of,
                                       settings.dedup_passage_max_texts)
            placement = stories.place(conn, settings, fp, index, new_story,
                                      credit=dedup.quote_credit(row.body))
            if not placement.joined:
                rank_of[placement.story_id] = offset + i
            article_store.attach(conn, row.id, placement.story_id, placement.relation,
                                 placement.jaccard, placement.containment,
                                 placement.signal, placement.signal_value)
            stories.settle(conn, placement, row.id, fp, row.at, index)  # at: never NULL
            rebuilt.add(placement.story_id)
            if progress and (i % 500 == 0 or i == len(rows)):
                progress(i, len(rows))
        for story_id in sorted(rebuilt | set(kept)):
            story_store.refresh(conn, story_id)
        removed = story_store.delete_empty(conn, old_stories)
        # new stories get their event, re-used ones whose representative changed are placed
        # again (the deleted ones left theirs by cascade); same transaction
        placed = events.place_again(conn, settings, sorted(rebuilt | set(kept)))
        return {"articles": len(rows), "stories": len(rebuilt), "old_stories_removed": removed,
                "events_placed": len(placed)}
