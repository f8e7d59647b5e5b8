"""Corrections and deletions: what happens when a page newsflow already holds is
fetched again, and when an operator deletes an article.

Used by ingestion's write phase (under the load lock and the changes lock):

* :func:`blocked_by` — a deleted article never comes back from a later feed item (same
  canonical URL or same text), unless the entry was requeued with ``--allow-deleted``;
* :func:`load_known` — the page of an article we already hold (the entry's own article,
  re-fetched because its feed item changed or an operator requeued it, or another item
  with the same canonical URL): an unchanged text changes nothing; a changed text updates
  the article in place (same id, ``revision`` + 1, the previous text kept in
  news.article_revisions), its story assignment is checked again, its citations are
  extracted again and its story's event is placed again when the signature changed
  (:func:`revise`);
* :func:`purge` — ``newsflow purge``: delete articles, leaving tombstones, and repair
  their stories.

Every change is logged by the triggers of migration 010 (news.changes, NOTIFY).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Sequence

from . import citations, db, events, stories
from .config import Settings
from .models import Article, PageJob, StoredArticle
from .storage import articles as article_store
from .storage import dedup_index, revisions, tombstones
from .storage import stories as story_store
from .storage.locks import take_write_locks

log = logging.getLogger(__name__)


def blocked_by(conn, job: PageJob, article: Article) -> str | None:
    """Why this article must not be loaded (it was deleted), or None. An entry an operator
    requeued with ``--allow-deleted`` lifts the tombstone instead."""
    tomb = tombstones.blocking(conn, article.canonical_url, article.content_hash)
    if tomb is None:
        return None
    if job.allow_deleted:
        tombstones.lift(conn, article.canonical_url, article.content_hash)
        log.info("entry %s: deleted article %s allowed back by an operator", job.entry_id, tomb["article_id"])
        return None
    return (f"article {tomb['article_id']} was deleted on {tomb['deleted_at']:%Y-%m-%d} ({tomb['reason']}); "
            "`newsflow requeue --allow-deleted` loads it again")


def load_known(conn, settings: Settings, job: PageJob, article: Article) -> tuple[str, int] | None:
    """Apply a page whose article or text we already hold: (outcome, article id), outcome
    one of ``unchanged``, ``updated``, ``duplicate`` (an article has this very text); None
    when the page is a new text."""
    target, same_text = revisions.known(conn, article_id=job.article_id, canonical_url=article.canonical_url,
                                        content_hash=article.content_hash)
    if target is None:  # an exact copy of another article's text, or new
        return ("duplicate", same_text) if same_text is not None else None
    if target.content_hash == article.content_hash:
        return ("unchanged" if job.article_id == target.id else "duplicate"), target.id
    if article.body_source == "feed" and target.body_source == "page":
        # the page gave no text this time: the feed's summary never replaces a page's text
        return "unchanged", target.id
    other = same_text
    if other is not None:
        # the page now carries a text we hold under another article: link the entry there
        log.info("entry %s: page of article %s now has the text of article %s", job.entry_id, target.id, other)
        return "duplicate", other
    revise(conn, settings, target, article)
    return "updated", target.id


def revise(conn, settings: Settings, target: StoredArticle, article: Article) -> None:
    """Store the corrected text in place and place the article again: it leaves its story
    and is placed like a new text (usually back into the same story; an emptied story's id
    is re-used by the story it then starts)."""
    article_id, old_story = target.id, target.story_id
    revision = revisions.replace_text(conn, article_id, article)
    log.info("article %s corrected (revision %s)", article_id, revision)
    fp = stories.fingerprint(article, settings)
    article_store.detach(conn, [article_id])
    dedup_index.remove(conn, [article_id])
    kept = story_store.keeping_members(conn, [old_story]) if old_story is not None else []
    if kept:
        story_store.reelect_representatives(conn, kept, detached=[article_id])
    elif old_story is not None:
        story_store.clear_references(conn, [old_story])
    reusable = old_story if old_story is not None and not kept else None

    def new_story() -> int:
        return reusable if reusable is not None else story_store.create(conn)

    published = article.published_at or target.published_at
    when = published or datetime.now(timezone.utc)
    # its own one-text index (written at once), not the write batch's: the batch looked its
    # candidates up before this article left its story and its index rows
    index = dedup_index.PgIndex(conn, when, settings.dedup_window_days, settings.dedup_passage_max_texts)
    placement = stories.place(conn, settings, fp, index, new_story)
    article_store.attach(conn, article_id, placement.story_id, placement.relation, placement.jaccard,
                         placement.containment)
    stories.settle(conn, placement, article_id, fp, when, index, published)
    story_store.refresh(conn, placement.story_id)
    if old_story is not None and old_story != placement.story_id:
        story_store.refresh(conn, old_story)  # deletes it when it has no member left
    # the corrected text's own attributions, and the events of the stories whose text
    # changed (its story, and the story it left when that got a new representative)
    citations.record(conn, article_id, article.body)
    events.place_again(conn, settings, [placement.story_id] + ([old_story] if old_story is not None else []))


def purge(url: str, *, article_ids: Sequence[int] = (), article_url: str | None = None,
          reason: str, lock_timeout: float = Settings.lock_timeout, stop: threading.Event | None = None) -> list[int]:
    """Delete articles (by id, or known under a URL), leaving tombstones; their stories
    get a new representative, or are deleted when empty. Returns the ids deleted. Lock
    waits: at most ``lock_timeout`` seconds each (then the busy lock is named, 55P03),
    ended by ``stop`` (``Interrupted``)."""
    with db.transaction(url, lock_timeout) as conn:
        take_write_locks(conn, timeout=lock_timeout, stop=stop)
        found = tombstones.existing(conn, article_ids=article_ids, url=article_url)
        ids = [r["id"] for r in found]
        if not ids:
            return []
        story_ids = sorted({r["story_id"] for r in found if r["story_id"] is not None})
        tombstones.delete_articles(conn, ids, reason)  # unsets them as representatives
        for story_id in story_ids:
            # a new representative (the earliest member), or the emptied story deleted
            story_store.refresh(conn, story_id)
        return ids
