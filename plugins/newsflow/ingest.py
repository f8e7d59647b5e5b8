"""Ingestion: claimed entries → fetched pages → extracted, normalised articles → load.

One batch is one transaction:

1. claim up to ``batch_size`` due pending entries (``FOR UPDATE SKIP LOCKED``);
2. fetch their pages (politely) and extract them in the process pool — no writes yet;
3. take the load lock, then for each entry either link it to an existing article
   (exact duplicate), insert a new article into its story (near-duplicate dedup), or
   record the failure (retry with backoff, or failed after ``max_attempts``);
4. commit.

A crash anywhere before the commit rolls the batch back and releases the rows, so a
re-run processes them again from the start and nothing is loaded twice.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence
from urllib.parse import urlsplit

from . import db, dedup
from .config import Settings
from .extract import Extractor
from .fetch import PageFetch, PageFetcher
from .httpclient import SafeClient
from .models import Article, Extracted, JobResult, PageJob
from .normalize import (canonical_url, clean_text, content_hash, drop_leading_title, split_authors,
                        to_utc, word_count)
from .storage import articles as article_store
from .storage import dedup_index
from .storage import entries as entry_store
from .storage import fetch_log

log = logging.getLogger(__name__)

# Held (transaction-scoped) while a batch writes articles: dedup decisions of two
# workers must see each other's results, or two copies of a new story would each start
# their own story. Writes are milliseconds; fetching and extraction happen outside it.
LOAD_LOCK_KEY = 0x6E657773  # "news"

# Fetch failures that retrying will not fix.
# ("deferred": the host asked us to wait; "timeout", "network", "dns", "tls": may pass.)
PERMANENT_KINDS = {"blocked", "scheme", "too_large", "redirect", "encoding", "content_type"}
PERMANENT_STATUS = {400, 401, 403, 404, 405, 406, 410, 414, 415, 451}


@dataclass
class BatchResult:
    claimed: int = 0
    loaded: int = 0  # new articles
    exact_duplicates: int = 0  # entries linked to an article that already existed
    near_duplicates: int = 0  # new articles that joined an existing story
    fallbacks: int = 0
    retry: int = 0
    failed: int = 0
    article_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def ingest_batch(url: str, settings: Settings, fetcher: PageFetcher, extractor: Extractor,
                 entry_ids: Sequence[int] | None = None) -> BatchResult:
    out = BatchResult()
    with db.connect(url) as conn:
        with conn.transaction():
            jobs = entry_store.claim(conn, settings.batch_size, entry_ids)
            out.claimed = len(jobs)
            if not jobs:
                return out
            results = process(jobs, settings, fetcher, extractor)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
            # Oldest first, so a story's original becomes its representative when the
            # original and its copies arrive in one batch.
            for result in sorted(results, key=_publication_order):
                _load_one(conn, settings, result, out)
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
                _add(total, batch)
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


def _publication_order(result: JobResult) -> tuple:
    a = result.article
    when = (a.published_at if a else None) or datetime.max.replace(tzinfo=timezone.utc)
    return (when, a.canonical_url if a else "", result.job.entry_id)


def _add(total: BatchResult, batch: BatchResult) -> None:
    for name in ("claimed", "loaded", "exact_duplicates", "near_duplicates", "fallbacks", "retry", "failed"):
        setattr(total, name, getattr(total, name) + getattr(batch, name))
    total.article_ids.extend(batch.article_ids)
    total.errors.extend(batch.errors)


# --- fetch, extract, normalise (no database writes) -------------------------------------

def process(jobs: Sequence[PageJob], settings: Settings, fetcher: PageFetcher,
            extractor: Extractor) -> list[JobResult]:
    fetchable = [j for j in jobs if j.link]
    fetched = dict(zip((j.entry_id for j in fetchable), fetcher.fetch_all([j.link for j in fetchable])))
    to_extract = [j for j in fetchable
                  if fetched[j.entry_id].result is not None and fetched[j.entry_id].result.ok]
    results = {}
    # decide() runs here while the workers extract the next pages
    pages = [(fetched[j.entry_id].result.body, fetched[j.entry_id].result.final_url, (j.title,),
              j.published_at is None)  # the feed's date wins: search the page only without one
             for j in to_extract]
    for job, found in zip(to_extract, extractor.extract_iter(pages)):
        results[job.entry_id] = decide(job, fetched[job.entry_id], found, settings)
    return [results.get(job.entry_id) or decide(job, fetched.get(job.entry_id), None, settings)
            for job in jobs]


def decide(job: PageJob, page: PageFetch | None, found: Extracted | None, settings: Settings) -> JobResult:
    """What to do with one entry, from what its page gave."""
    result = JobResult(job=job)
    if page is not None and page.result is not None:
        r = page.result
        result.fetch_status, result.fetch_bytes = r.status, len(r.body)
        result.fetch_ms, result.fetched_url = int(r.elapsed * 1000), r.final_url
    if job.link is None:
        return _fallback_or_fail(result, settings, "entry has no link", permanent=True)
    if page.robots_denied:
        permanent = "disallows" in page.robots_denied
        return _fallback_or_fail(result, settings, page.robots_denied, permanent=permanent)
    r = page.result
    if not r.ok:
        permanent = r.error_kind in PERMANENT_KINDS or (r.status in PERMANENT_STATUS)
        return _fallback_or_fail(result, settings, f"page fetch failed: {r.error or r.status}",
                                 permanent=permanent)
    thin = thin_page_reason(found, settings)
    if thin:
        summary = clean_text(job.summary or "")
        page_text = clean_text(found.text or "") if found else ""
        if len(summary) > len(page_text) or not page_text or PAYWALL.search(page_text):
            return _fallback_or_fail(result, settings, thin, permanent=True, page=r.final_url, meta=found)
        # a short page text that is still more than the feed gave us: keep it
    result.article = build_article(job, found, r.final_url, body_source="page")
    return result


# Phrases of the boxes that replace an article's text for non-subscribers.
PAYWALL = re.compile(r"subscribe (now )?to (continue|keep) reading|to continue reading,? (please )?"
                     r"(subscribe|log ?in|sign in)|already a subscriber|subscribers only|"
                     r"this (article|content) is (only )?(available|reserved) (to|for) subscribers",
                     re.I)
PAYWALL_MAX_WORDS = 200  # longer texts with such a phrase are articles that mention one


def thin_page_reason(found: Extracted | None, settings: Settings) -> str | None:
    """Why a page's text cannot stand as the article, or None when it can."""
    if found is None or found.error:
        return found.error if found else "page not extracted"
    text = found.text or ""
    if PAYWALL.search(text) and word_count(text) < PAYWALL_MAX_WORDS:
        return "page text is a paywall notice"
    if len(text) < settings.min_body_chars:
        return f"page yielded {len(text)} characters of text (not an article?)"
    return None


def _fallback_or_fail(result: JobResult, settings: Settings, reason: str, *, permanent: bool,
                      page: str | None = None, meta: Extracted | None = None) -> JobResult:
    """Use the feed's own text when the page cannot give us one; otherwise fail or retry."""
    job = result.job
    last_attempt = job.attempts + 1 >= settings.max_attempts
    summary = clean_text(job.summary or "")
    if summary and (permanent or last_attempt):
        result.article = build_article(job, meta, page or job.link, body_source="feed",
                                       fallback_reason=reason)
        return result
    result.error, result.permanent = reason, permanent
    return result


def build_article(job: PageJob, found: Extracted | None, fetched_url: str | None, *,
                  body_source: str, fallback_reason: str | None = None) -> Article:
    found = found or Extracted()
    link = job.link or fetched_url or f"urn:newsflow:entry:{job.entry_id}"
    fingerprint = None
    if body_source == "page" and found.body is not None:
        body, digest, fingerprint = found.body, found.content_hash, found.fingerprint  # from the worker
    else:
        text = found.text if body_source == "page" else job.summary
        body = drop_leading_title(clean_text(text or ""), [job.title, found.title])
        digest = content_hash(body)
    canonical = canonical_url(_trusted_canonical(found.canonical_url, fetched_url) or fetched_url or link)
    # The feed's date first (readers complain about page-date errors; CC prefers it),
    # then the page's.
    published = job.published_at or to_utc(found.date)
    title = clean_text(job.title or "") or clean_text(found.title or "") or None
    return Article(
        url=link, canonical_url=canonical, publisher=job.publisher, title=title, body=body,
        published_at=published, language=(found.language or None), authors=split_authors(found.author or job.author),
        image_url=found.image, site_name=found.site_name, content_hash=digest,
        word_count=word_count(body), body_source=body_source, fallback_reason=fallback_reason,
        wire_credit=dedup.wire_credit(credit_window(body)), fingerprint=fingerprint,
    )


def credit_window(body: str, size: int = 1500) -> str:
    """The parts of a body where agencies are credited: the dateline at the top, the
    "Via ..." / "contributed to this report" lines at the bottom. Scanning only these
    keeps credit detection cheap on long articles."""
    if len(body) <= 2 * size:
        return body
    return body[:size] + "\n" + body[-size:]


def _trusted_canonical(declared: str | None, fetched: str | None) -> str | None:
    """A page's rel=canonical, when it names an article on the same site.

    Some sites point every page's canonical at their home page, and syndication
    partners point it at the originating outlet; trusting either would merge distinct
    copies into one row, so only same-host, non-root canonicals are used.
    """
    if not declared or not fetched:
        return None
    d, f = urlsplit(declared), urlsplit(fetched)
    if d.scheme not in ("http", "https") or d.netloc.lower() != f.netloc.lower():
        return None
    if d.path in ("", "/"):
        return None
    return declared


# --- load (inside the batch transaction, under the load lock) ------------------------------

def _load_one(conn, settings: Settings, result: JobResult, out: BatchResult) -> None:
    job = result.job
    if result.fetched_url or result.fetch_status is not None:
        fetch_log.record(conn, kind="page", feed_id=job.feed_id, entry_id=job.entry_id,
                         url=job.link or "", status=result.fetch_status, bytes=result.fetch_bytes,
                         duration_ms=result.fetch_ms, error=result.error)
    if result.article is None:
        out.errors.append(f"entry {job.entry_id} ({job.link}): {result.error}")
        if result.permanent or job.attempts + 1 >= settings.max_attempts:
            entry_store.mark_failed(conn, job.entry_id, result.error or "failed")
            out.failed += 1
        else:
            delay = settings.retry_backoff_base * 2 ** job.attempts
            entry_store.mark_retry(conn, job.entry_id, result.error or "retry", delay)
            out.retry += 1
        return
    article = result.article
    if article.body_source == "feed":
        out.fallbacks += 1
    existing = article_store.find_exact(conn, article.canonical_url, article.content_hash)
    if existing is not None:
        entry_store.mark_loaded(conn, job.entry_id, existing)
        out.exact_duplicates += 1
        return
    article_id = load_article(conn, settings, article, out)
    entry_store.mark_loaded(conn, job.entry_id, article_id)
    out.loaded += 1
    out.article_ids.append(article_id)


def load_article(conn, settings: Settings, article: Article, out: BatchResult | None = None) -> int:
    """Insert a new article into its story (found by near-duplicate search)."""
    when = article.published_at or datetime.now(timezone.utc)
    fp = article.fingerprint or dedup.fingerprint(article.body, settings)
    index = dedup_index.PgIndex(conn, when, settings.dedup_window_days)
    assignment = dedup.assign(fp, index, settings)
    story_id = assignment.story_id
    if story_id is None:
        story_id = article_store.new_story(conn)
    elif out is not None:
        out.near_duplicates += 1
    article_id = article_store.insert(conn, article, story_id=story_id, relation=assignment.relation,
                                      jaccard=assignment.jaccard if assignment.story_id else None,
                                      containment=assignment.containment if assignment.story_id else None)
    if assignment.story_id is None:
        article_store.set_representative(conn, story_id, article_id)
    dedup_index.add(conn, article_id, fp, when)
    if assignment.story_id is not None and article.published_at is not None:
        promote_if_earlier(conn, story_id, article_id, article.published_at, fp.shingles)
    article_store.refresh_story(conn, story_id)
    return article_id


def promote_if_earlier(conn, story_id: int, article_id: int, published_at: datetime,
                       shingles: Sequence[int]) -> bool:
    """Make a late-arriving original the story's representative.

    Workers finish in any order, so a copy may be stored before the text it copies.
    The representative should be the original: it anchors the no-chaining check for
    every later candidate, and members' relations (copy, excerpt, update) are relative
    to it. When the new member was published before the current representative, it
    takes that place and the other members' relations are recomputed against it.
    """
    members = article_store.members_with_shingles(conn, story_id)
    rep = next((m for m in members if m["is_representative"]), None)
    if rep is None or rep["published_at"] is None or published_at >= rep["published_at"]:
        return False
    article_store.set_representative(conn, story_id, article_id)
    article_store.attach(conn, article_id, story_id, "original", None, None)
    for m in members:
        if m["id"] != article_id:
            relation, jaccard, containment = dedup.relation(m["shingles"], shingles)
            article_store.attach(conn, m["id"], story_id, relation, jaccard, containment)
    return True
