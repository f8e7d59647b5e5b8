"""Ingestion: claimed entries → fetched pages → extracted text → decisions → load.

One batch is one transaction:

1. claim up to ``batch_size`` due pending entries (``FOR UPDATE SKIP LOCKED``);
2. fetch their pages politely (``fetch``) and extract them in the process pool
   (``extract``); decide what each entry becomes (``decide``, pure) — no writes yet;
3. take the load lock, then apply each decision: link the entry to an existing article
   (exact duplicate), add a new article to its story (``stories``), or record the
   retry or the failure;
4. commit.

A crash anywhere before the commit rolls the batch back and releases the rows, so a
re-run processes them again from the start and nothing is loaded twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable, Sequence

from . import db, stories
from .config import Settings
from .decide import decide
from .extract import Extractor
from .fetch import PageFetcher
from .httpclient import SafeClient
from .models import Action, BatchResult, Decision, ExtractJob, PageJob
from .storage import articles as article_store
from .storage import entries as entry_store
from .storage import fetch_log
from .storage.locks import take_load_lock

log = logging.getLogger(__name__)


def ingest_batch(url: str, settings: Settings, fetcher: PageFetcher, extractor: Extractor,
                 entry_ids: Sequence[int] | None = None) -> BatchResult:
    out = BatchResult()
    with db.connect(url) as conn:
        with conn.transaction():
            jobs = entry_store.claim(conn, settings.batch_size, entry_ids)
            out.claimed = len(jobs)
            if not jobs:
                return out
            decisions = process(jobs, settings, fetcher, extractor)
            take_load_lock(conn)
            # Oldest first, so a story's original becomes its representative when the
            # original and its copies arrive in one batch.
            for decision in sorted(decisions, key=_publication_order):
                _apply(conn, settings, decision, out)
    return out


def ingest_pending(url: str, settings: Settings, *, max_batches: int | None = None,
                   entry_ids: Sequence[int] | None = None, client: SafeClient | None = None,
                   progress: Callable[[BatchResult], None] | None = None) -> BatchResult:
    """Process batches until no due pending entry is left (or ``max_batches``).

    ``ingest_concurrency`` batches are in flight at once (threads sharing one HTTP
    client and one extraction pool): while one batch holds the load lock and writes,
    the next is fetching and extracting, so no core waits on the database.
    """
    total = BatchResult()
    own_client = client is None
    client = client or SafeClient(settings)
    fetcher = PageFetcher(settings, client)
    lock = threading.Lock()
    started = 0
    failures: list[BaseException] = []

    def worker(extractor: Extractor) -> None:
        nonlocal started
        while not failures:
            with lock:
                if max_batches is not None and started >= max_batches:
                    return
                started += 1
            try:
                batch = ingest_batch(url, settings, fetcher, extractor, entry_ids)
            except BaseException as exc:  # surfaced in the calling thread below
                failures.append(exc)
                return
            if batch.claimed == 0:
                return
            with lock:
                total.add(batch)
                if progress:
                    progress(batch)

    try:
        with Extractor(settings) as extractor:
            threads = [threading.Thread(target=worker, args=(extractor,), name=f"ingest-{i}")
                       for i in range(max(1, settings.ingest_concurrency))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        if own_client:
            client.close()
    if failures:
        raise failures[0]
    return total


def _publication_order(decision: Decision) -> tuple:
    a = decision.article
    when = (a.published_at if a else None) or datetime.max.replace(tzinfo=timezone.utc)
    return (when, a.canonical_url if a else "", decision.job.entry_id)


# --- fetch, extract, decide (no database writes) ------------------------------------------

def process(jobs: Sequence[PageJob], settings: Settings, fetcher: PageFetcher,
            extractor: Extractor) -> list[Decision]:
    fetchable = [j for j in jobs if j.link]
    fetched = dict(zip((j.entry_id for j in fetchable), fetcher.fetch_all([j.link for j in fetchable])))
    to_extract = [j for j in fetchable
                  if fetched[j.entry_id].result is not None and fetched[j.entry_id].result.ok]
    pages = [ExtractJob(html=fetched[j.entry_id].result.body, url=fetched[j.entry_id].result.final_url,
                        titles=(j.title,),
                        search_date=j.published_at is None)  # the feed's date wins
             for j in to_extract]
    decisions = {}
    # decide() runs here while the workers extract the next pages
    for job, found in zip(to_extract, extractor.extract_iter(pages)):
        decisions[job.entry_id] = decide(job, fetched[job.entry_id], found, settings)
    return [decisions.get(job.entry_id) or decide(job, fetched.get(job.entry_id), None, settings)
            for job in jobs]


# --- apply (inside the batch transaction, under the load lock) -----------------------------

def _apply(conn, settings: Settings, decision: Decision, out: BatchResult) -> None:
    job = decision.job
    if decision.fetch is not None:
        fetch_log.record(conn, kind="page", feed_id=job.feed_id, entry_id=job.entry_id,
                         url=job.link or "", status=decision.fetch.status, bytes=decision.fetch.bytes,
                         duration_ms=decision.fetch.ms, error=decision.error)
    if decision.action in (Action.FAIL, Action.RETRY):
        out.count_error(decision.kind)
    if decision.action is Action.FAIL:
        out.errors.append(f"entry {job.entry_id} ({job.link}): {decision.error}")
        entry_store.mark_failed(conn, job.entry_id, decision.error or "failed")
        out.failed += 1
        return
    if decision.action is Action.RETRY:
        out.errors.append(f"entry {job.entry_id} ({job.link}): {decision.error}")
        entry_store.mark_retry(conn, job.entry_id, decision.error or "retry", decision.retry_in or 0)
        out.retry += 1
        return
    article = decision.article
    if article.body_source == "feed":
        out.fallbacks += 1
    existing = article_store.find_exact(conn, article.canonical_url, article.content_hash)
    if existing is not None:
        entry_store.mark_loaded(conn, job.entry_id, existing)
        out.exact_duplicates += 1
        return
    article_id, joined = stories.add_article(conn, settings, article)
    entry_store.mark_loaded(conn, job.entry_id, article_id)
    out.loaded += 1
    out.near_duplicates += joined
    out.article_ids.append(article_id)
