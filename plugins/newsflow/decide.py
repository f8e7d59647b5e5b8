"""The article decision: what to do with one claimed entry, from what its page gave.

Pure (in the manner of lemon24/reader's ``_update``): no I/O, no database. It turns an
entry, its page fetch and its extraction into a :class:`~newsflow.models.Decision`:

* ``LOAD`` an article made from the page's text, or from the feed's own text when the
  page cannot give one and retrying will not help (or the attempts are used up);
* ``RETRY`` after a backoff, when the failure may pass (timeouts, 5xx, a host that
  asked us to wait);
* ``FAIL`` with the error, when nothing usable is left.

Ingestion applies the decision in its write transaction.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import credit
from .config import Settings
from .models import Action, Article, Decision, ErrorKind, Extracted, PageFetch, PageFetchRecord, PageJob
from .politeness import backoff
from .normalize import (canonical_url, clean_text, content_hash, drop_leading_title, own_hash, split_authors,
                        to_utc, word_count)

# Phrases of the boxes that replace an article's text for non-subscribers.
PAYWALL = re.compile(r"subscribe (now )?to (continue|keep) reading|to continue reading,? (please )?"
                     r"(subscribe|log ?in|sign in)|already a subscriber|subscribers only|"
                     r"this (article|content) is (only )?(available|reserved) (to|for) subscribers",
                     re.I)
PAYWALL_MAX_WORDS = 200  # longer texts with such a phrase are articles that mention one


def decide(job: PageJob, page: PageFetch | None, found: Extracted | None, settings: Settings) -> Decision:
    """What to do with one entry, from what its page gave (``page`` None: not fetched)."""
    summary = feed_text(job)  # cleaned once: the fallback and the thin-page test both use it
    fetch = None
    if page is not None and page.result is not None and page.result.error_kind is not ErrorKind.DEFERRED:
        r = page.result
        fetch = PageFetchRecord(status=r.status, bytes=len(r.body), ms=int(r.elapsed * 1000), url=r.final_url)
    if job.link is None:
        return _fallback_or_fail(job, summary, fetch, settings, ErrorKind.NO_LINK, "entry has no usable link")
    if page.denied:
        kind, reason = page.denied
        return _fallback_or_fail(job, summary, fetch, settings, kind, reason)
    r = page.result
    if r.error_kind is ErrorKind.DEFERRED or r.rate_limited:
        # the host asked us to wait: not an attempt; the frontier hands it out again later
        reason = r.error if r.error_kind is ErrorKind.DEFERRED else f"host answered HTTP {r.status} (Retry-After)"
        return Decision(job, Action.POSTPONE, error=reason, kind=ErrorKind.DEFERRED, fetch=fetch,
                        retry_in=page.deferred_for if page.deferred_for is not None else 0.0)
    if not r.ok:
        kind = r.error_kind or ErrorKind.HTTP
        # a permanent answer (404, refused address, PDF, ...) counts as permanent whatever its kind
        return _fallback_or_fail(job, summary, fetch, settings, kind, f"page fetch failed: {r.error or r.status}",
                                 permanent=r.permanent_failure)
    if found is not None and found.error_kind is ErrorKind.EXTRACTION:
        # a timeout or a crashed worker may pass: retried like a fetch error
        return _fallback_or_fail(job, summary, fetch, settings, ErrorKind.EXTRACTION, found.error or "extraction failed",
                                 page_url=r.final_url)
    thin = thin_page_reason(found, settings)
    if thin:
        page_text = (found.body or "") if found else ""
        if len(summary) > len(page_text) or not page_text or PAYWALL.search(page_text):
            return _fallback_or_fail(job, summary, fetch, settings, ErrorKind.NO_TEXT, thin,
                                     page_url=r.final_url, meta=found)
        # a short page text that is still more than the feed gave us: keep it
    return Decision(job, Action.LOAD, fetch=fetch,
                    article=build_article(job, found, r.final_url, settings, body_source="page"))


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


def feed_text(job: PageJob) -> str:
    """The feed's own text of the entry (its summary or content), cleaned."""
    return clean_text(job.summary or "")


def attempts_used_up(job: PageJob, settings: Settings) -> bool:
    """This attempt is the entry's last (``NEWSFLOW_MAX_ATTEMPTS``): no retry after it."""
    return job.attempts + 1 >= settings.max_attempts


def _fallback_or_fail(job: PageJob, summary: str, fetch: PageFetchRecord | None, settings: Settings,
                      kind: ErrorKind, reason: str, *, permanent: bool | None = None,
                      page_url: str | None = None, meta: Extracted | None = None) -> Decision:
    """Use the feed's own text (``summary``, cleaned) when the page cannot give us one;
    otherwise fail or retry."""
    permanent = kind.permanent if permanent is None else permanent
    last_attempt = attempts_used_up(job, settings)
    if summary and (permanent or last_attempt):
        article = build_article(job, meta, page_url or job.link, settings, body_source="feed",
                                fallback_reason=reason, feed_text=summary)
        # the page's failure is still its fetch's outcome: the fetch log records why
        return Decision(job, Action.LOAD, article=article, fetch=fetch, error=reason, kind=kind)
    if permanent or last_attempt:
        return Decision(job, Action.FAIL, error=reason, kind=kind, fetch=fetch)
    return Decision(job, Action.RETRY, error=reason, kind=kind, fetch=fetch,
                    retry_in=backoff(settings.retry_backoff_base, job.attempts))


def build_article(job: PageJob, found: Extracted | None, fetched_url: str | None, settings: Settings, *,
                  body_source: str, fallback_reason: str | None = None, feed_text: str = "") -> Article:
    """The article of an entry: from the page's text (``body_source`` 'page'), or from the
    feed's (``feed_text``, already cleaned)."""
    found = found or Extracted()
    link = job.link or fetched_url or f"urn:newsflow:entry:{job.entry_id}"
    if body_source == "page":
        body, digest, fingerprint = found.body or "", found.content_hash, found.fingerprint  # the worker's
    else:
        body = drop_leading_title(feed_text, [job.title, found.title])
        digest, fingerprint = content_hash(body), None
    canonical = canonical_url(trusted_canonical(found.canonical_url, fetched_url) or fetched_url or link)
    if word_count(body) < settings.min_hash_words:
        digest = own_hash(body, canonical)  # too few words to say two articles are one
    # The feed's date first (readers complain about page-date errors; CC prefers it),
    # then the page's.
    published = job.published_at or to_utc(found.date)
    title = clean_text(job.title or "") or clean_text(found.title or "") or None
    return Article(
        url=link, canonical_url=canonical, publisher=job.publisher, title=title, body=body,
        published_at=published, language=(found.language or None),
        authors=split_authors(found.author or job.author), image_url=found.image,
        site_name=found.site_name, content_hash=digest or content_hash(body),
        word_count=word_count(body), body_source=body_source, fallback_reason=fallback_reason,
        wire_credit=credit.wire_credit(credit.credit_window(body)), fingerprint=fingerprint,
    )


def trusted_canonical(declared: str | None, fetched: str | None) -> str | None:
    """A page's rel=canonical, when it names this very article.

    Some sites point every page's canonical at their home page or at the page's section
    (``/world/``), and syndication partners point it at the originating outlet; trusting
    any of those would merge distinct articles into one row. So a canonical is used only
    when it is on the same host and at least as specific as the page itself:

    * the same path (and the same query, once tracking parameters are gone), or
    * another path that contains the page's own slug, its last path segment
      (``/amp/world/some-story`` → ``/world/some-story``; ``/news/12345`` →
      ``/news/12345/the-headline``).

    A canonical that is the home page, a section above the page, or another article
    is ignored, and the page's own URL is its identity.
    """
    if not declared or not fetched:
        return None
    d, f = urlsplit(declared), urlsplit(fetched)
    if d.scheme.lower() not in ("http", "https") or d.netloc.lower() != f.netloc.lower():
        return None
    declared_segments = [p for p in d.path.split("/") if p]
    page_segments = [p for p in f.path.split("/") if p]
    if not declared_segments:
        return None  # the home page
    if declared_segments == page_segments:
        same_query = urlsplit(canonical_url(declared)).query == urlsplit(canonical_url(fetched)).query
        return declared if same_query else None
    if page_segments and page_segments[-1] in declared_segments:
        return declared
    return None


def decide_safely(job: PageJob, page: PageFetch | None, found: Extracted | None,
                  settings: Settings) -> Decision:
    """:func:`decide`, but an unforeseen error is this entry's failure, never the batch's:
    retried with backoff like a fetch error, failed once its attempts are used up."""
    try:
        return decide(job, page, found, settings)
    except Exception as exc:  # a hostile value we did not foresee, or a bug: this entry only
        error = f"decision failed: {type(exc).__name__}: {str(exc)[:300]}"
        if attempts_used_up(job, settings):
            return Decision(job, Action.FAIL, error=error, kind=ErrorKind.LOAD)
        return Decision(job, Action.RETRY, error=error, kind=ErrorKind.LOAD,
                        retry_in=backoff(settings.retry_backoff_base, job.attempts))
