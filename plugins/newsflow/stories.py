"""Stories: which story an article joins, and which member represents it.

Used alike by ingestion (:func:`add_article`, one new article) and by the rebuild
(``newsflow.recluster``, every article again in content order):

1. :func:`place` looks the text up in the near-duplicate index (``newsflow.dedup.assign``)
   and either joins the best verified story or starts a new one;
2. :func:`settle` makes a new story's first article its representative, indexes the
   text, and lets a late-arriving original take the representative's place.

Callers hold the load lock (``storage.locks``), so two workers placing copies of one new
story at the same moment end in one story.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Sequence

from . import dedup
from .config import Settings
from .models import Article, Fingerprint, Member, Placement
from .storage import articles as article_store
from .storage import dedup_index
from .storage import stories as story_store


def place(conn, settings: Settings, fp: Fingerprint, index: dedup.StoryIndex,
          new_story: Callable[[], int] | None = None,
          credit: dedup.QuoteCredit | None = None) -> Placement:
    """The story for a text: the best verified candidate, else a new one (``new_story``
    makes it; by default a new row). ``credit``: how the text credits what it quotes
    (``dedup.quote_credit``), which lets a quoting excerpt join below the copy thresholds."""
    assignment = dedup.assign(fp, index, settings, credit)
    if assignment.story_id is None:
        story_id = new_story() if new_story else story_store.create(conn)
        return Placement(story_id, False, assignment.relation, None, None)
    return Placement(assignment.story_id, True, assignment.relation, assignment.jaccard,
                     assignment.containment, assignment.signal, assignment.signal_value)


def settle(conn, placement: Placement, article_id: int, fp: Fingerprint, indexed_at: datetime,
           index: dedup_index.PgIndex | dedup_index.BatchIndex, published_at: datetime | None = None) -> None:
    """After the article row carries its placement: representative, index, promotion.
    ``published_at``: promote the article if it predates the story's representative."""
    if not placement.joined:
        story_store.set_representative(conn, placement.story_id, article_id)
    index.stage(article_id, placement.story_id, fp, indexed_at, representative=not placement.joined)
    if placement.joined and published_at is not None:
        if promote_if_earlier(conn, placement.story_id, article_id, published_at, fp.shingles,
                              staged=index.staged_shingles()):
            index.promoted(placement.story_id, Member(article_id, placement.story_id, fp.shingles))


def fingerprint(article: Article, settings: Settings) -> Fingerprint:
    """The article's near-duplicate fingerprint: the one the extraction worker computed with
    its text, else (a text from the feed, a correction) computed now, once: it is kept on
    the article."""
    if article.fingerprint is None:
        article.fingerprint = dedup.fingerprint(article.body, settings)
    return article.fingerprint


def add_article(conn, settings: Settings, article: Article,
                index: dedup_index.BatchIndex | None = None) -> tuple[int, bool]:
    """Insert a new article into its story; (article id, whether it joined an existing story).
    ``index``: the write batch's index (ingestion); without one, this article alone."""
    when = article.published_at or datetime.now(timezone.utc)
    fp = fingerprint(article, settings)
    if index is None:
        index = dedup_index.PgIndex(conn, when, settings.dedup_window_days, settings.dedup_passage_max_texts)
    else:
        index.announce(fp, when)
    # only a text with a credit can be a credited excerpt: the full body is read for it then
    quoted = dedup.quote_credit(article.body) if article.wire_credit else None
    placement = place(conn, settings, fp, index, credit=quoted)
    article_id = article_store.insert(conn, article, story_id=placement.story_id,
                                      relation=placement.relation, jaccard=placement.jaccard,
                                      containment=placement.containment, signal=placement.signal,
                                      signal_value=placement.signal_value)
    settle(conn, placement, article_id, fp, when, index, article.published_at)
    story_store.refresh(conn, placement.story_id)
    return article_id, placement.joined


def promote_if_earlier(conn, story_id: int, article_id: int, published_at: datetime,
                       shingles: Sequence[int], staged: dict[int, tuple[int, ...]] | None = None) -> bool:
    """Make a late-arriving original the story's representative.

    Workers finish in any order, so a copy may be stored before the text it copies.
    The representative should be the original: it anchors the no-chaining check for
    every later candidate, and members' relations (copy, excerpt, update) are relative
    to it. When the new member was published before the current representative, it
    takes that place and the other members' relations are recomputed against it.
    ``staged``: shingles of members placed in this write batch (see BatchIndex).
    """
    # most joining texts are later copies: decide on the representative's date alone
    # before reading every member's shingles
    rep_published = story_store.representative_published_at(conn, story_id)
    if rep_published is None or published_at >= rep_published:
        return False
    members = story_store.members_with_shingles(conn, story_id)
    for m in members:  # texts of this write batch are not in the database's index yet
        if not m["shingles"] and staged and m["id"] in staged:
            m["shingles"] = staged[m["id"]]
    story_store.set_representative(conn, story_id, article_id)
    article_store.attach(conn, article_id, story_id, "original", None, None)
    for m in members:
        if m["id"] != article_id:
            relation, jaccard, containment = dedup.relation(m["shingles"], shingles)
            # the member stays on its own evidence; its relation is now to the new representative
            article_store.attach(conn, m["id"], story_id, relation, jaccard, containment,
                                 "representative_changed", containment)
    return True
