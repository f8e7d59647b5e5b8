"""Polling: fetch due feeds (conditional GET, concurrently), parse, store new entries.

Each feed's outcome is written in its own short transaction as soon as it arrives, so
a crash loses at most the feeds in flight, and one broken feed never affects another.

Retry-After (429/503) is honoured per host: the feed that got it and every other
enabled feed on the same host[:port] are pushed back to the time the server asked
for (capped at ``retry_after_cap``, with up to 20% jitter); feeds of that host still
queued in the current run are not requested, their outcome says "deferred".
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import Callable, Sequence

from . import db
from .config import Settings
from .httpclient import FetchResult, SafeClient
from .models import ErrorKind, Feed, PollOutcome
from .parse import parse_feed
from .politeness import HostDeferrals, host_key, retry_after_delay
from .storage import entries as entry_store
from .storage import feeds as feed_store
from .storage import fetch_log

log = logging.getLogger(__name__)

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, "
               "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")


def select_feeds(conn, *, feed_ids: Sequence[int] | None = None, force: bool = False,
                 limit: int = 1000) -> list[Feed]:
    if feed_ids:
        return feed_store.by_ids(conn, feed_ids)
    return feed_store.enabled(conn) if force else feed_store.due(conn, limit)


def shard(feeds: Sequence[Feed], shards: int) -> list[list[int]]:
    """Split feed ids into at most ``shards`` lists, spreading hosts across shards."""
    buckets: list[list[int]] = [[] for _ in range(max(1, shards))]
    for feed in sorted(feeds, key=lambda f: (host_key(f.url), f.id)):
        min(buckets, key=len).append(feed.id)
    return [b for b in buckets if b]


def poll_feeds(url: str, settings: Settings, feeds: Sequence[Feed], client: SafeClient | None = None,
               progress: Callable[[PollOutcome], None] | None = None) -> list[PollOutcome]:
    """Poll the given feeds concurrently; every outcome is recorded, none raises."""
    own_client = client is None
    client = client or SafeClient(settings)
    outcomes: list[PollOutcome] = []
    deferrals = HostDeferrals()
    try:
        with ThreadPoolExecutor(max_workers=max(1, settings.poll_concurrency)) as pool:
            futures = {pool.submit(_poll_one, url, settings, client, f, deferrals): f for f in feeds}
            for future in as_completed(futures):
                feed = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # a bug or a database error for this feed only
                    log.exception("polling feed %s failed", feed.url)
                    outcome = PollOutcome(feed.id, feed.url, None, error=f"{type(exc).__name__}: {exc}")
                outcomes.append(outcome)
                if progress:
                    progress(outcome)
    finally:
        if own_client:
            client.close()
    return sorted(outcomes, key=lambda o: o.feed_id)


def _poll_one(url: str, settings: Settings, client: SafeClient, feed: Feed,
              deferrals: HostDeferrals) -> PollOutcome:
    if (deferred := deferrals.check(host_key(feed.url))):
        left, reason = deferred
        with db.transaction(url) as conn:
            feed_store.defer(conn, feed.id, left)
        return PollOutcome(feed.id, feed.url, None, error=f"deferred: {reason}", deferred=True)
    now = datetime.now(timezone.utc)
    full = (feed.last_full_fetch_at is None or
            (now - feed.last_full_fetch_at).total_seconds() >= settings.full_fetch_interval)
    headers = {}
    if not full:
        # Some servers answer 304 wrongly; hence the periodic unconditional fetch above.
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
    result = client.get(feed.url, max_bytes=settings.max_feed_bytes, headers=headers, accept=FEED_ACCEPT)
    outcome = PollOutcome(feed.id, feed.url, result.status, bytes=len(result.body))
    with db.transaction(url) as conn:
        if result.failed:
            outcome.error = result.error or f"HTTP {result.status}"
            outcome.error_kind = result.error_kind or ErrorKind.HTTP
            _record_failure(conn, settings, feed, result, outcome.error, deferrals)
        elif result.not_modified:
            outcome.not_modified = True
            feed_store.record_success(conn, feed.id, status=304, etag=None, last_modified=None,
                                      body_hash=None, full_fetch=False, keep_warning=True,
                                      interval=next_interval(settings, feed, result, changed=False))
        else:
            _record_document(conn, settings, feed, result, full, outcome)
        if result.permanent_redirect and not outcome.error:
            if feed_store.move(conn, feed.id, result.permanent_redirect):
                log.info("feed %s moved permanently to %s", feed.url, result.permanent_redirect)
        fetch_log.record(conn, kind="feed", feed_id=feed.id, url=feed.url, status=result.status,
                         bytes=len(result.body), duration_ms=int(result.elapsed * 1000),
                         error=outcome.error, new_entries=outcome.new_entries)
    return outcome


def _record_document(conn, settings: Settings, feed: Feed, result: FetchResult, full: bool,
                     outcome: PollOutcome) -> None:
    body_hash = hashlib.sha256(result.body).hexdigest()
    validators = dict(etag=result.headers.get("etag"), last_modified=result.headers.get("last-modified"))
    if body_hash == feed.body_hash:
        # Same bytes as last time although the server did not say 304.
        outcome.not_modified = True
        feed_store.record_success(conn, feed.id, status=result.status, body_hash=body_hash,
                                  full_fetch=full, keep_warning=True, **validators,
                                  interval=next_interval(settings, feed, result, changed=False))
        return
    parsed = parse_feed(result.body, result.final_url, feed.guid_mode, result.content_type)
    if parsed.error:
        outcome.error = f"unparseable feed: {parsed.error}"
        _record_failure(conn, settings, feed, result, outcome.error)
        return
    new, rekeyed = entry_store.insert_new(conn, feed.id, parsed.entries)
    mode = parsed.guid_mode
    warning = parsed.warning
    if rekeyed and mode == "guid":
        mode = "link"
        warning = f"GUIDs change between polls ({rekeyed} known items with new ids): identity by link"
    outcome.new_entries, outcome.seen_entries = new, len(parsed.entries)
    feed_store.record_success(conn, feed.id, status=result.status, body_hash=body_hash,
                              full_fetch=full, guid_mode=mode, warning=warning, **validators,
                              interval=next_interval(settings, feed, result, changed=new > 0,
                                                     ttl=parsed.ttl))


def _record_failure(conn, settings: Settings, feed: Feed, result: FetchResult, error: str,
                    deferrals: HostDeferrals | None = None) -> None:
    errors = feed.consecutive_errors + 1
    disable = None
    if result.gone:
        disable = f"HTTP {result.status} Gone: the publisher removed this feed"
    elif errors >= settings.max_feed_errors and result.status != 429:
        # (429 is about our request rate, not the feed: it never disables a feed)
        disable = f"{errors} consecutive failures; last: {error}"
    if disable:
        log.warning("%s disabled %s; re-enable in Feeds (Newsflow in the Airflow UI) or with "
                    "`newsflow feeds enable %s`", feed.label,
                    f"({disable})" if result.gone else f"after {errors} consecutive failures: {error}",
                    feed.id)
    if result.retry_after is not None and result.rate_limited:
        # The server told us when to come back: honour it, capped, with jitter so a
        # fleet of feeds on one host does not return in the same second. It applies to
        # the whole host: the other feeds there wait as well.
        retry = retry_after_delay(settings, result.retry_after)
        host = host_key(feed.url)
        error = f"{error}; host {host} asked to retry after {result.retry_after:.0f}s"
        feed_store.defer_host(conn, host, retry, except_feed=feed.id)
        if deferrals is not None:
            deferrals.block(host, retry, f"host {host} answered HTTP {result.status} with "
                                         f"Retry-After {result.retry_after:.0f}s for feed {feed.id}")
    else:
        retry = min(settings.error_backoff_base * 2 ** (errors - 1), settings.max_poll_interval)
    feed_store.record_failure(conn, feed.id, status=result.status, error=error,
                              retry_in=max(retry, 1.0), disable_reason=disable)


def next_interval(settings: Settings, feed: Feed, result: FetchResult, *, changed: bool,
                  ttl: int | None = None) -> int:
    """Seconds until the next poll.

    The feed's own interval (or the default), raised to what the server asks for
    (Cache-Control max-age, Expires, RSS <ttl>), widened by half for every poll that
    brought nothing new and reset when something new arrives; always within
    [min_poll_interval, max_poll_interval].
    """
    base = feed.poll_interval or settings.default_poll_interval
    hinted = max(filter(None, [ttl, result.cache_lifetime()]), default=0)
    interval = max(base, hinted)
    if not changed and feed.effective_interval:
        interval = max(interval, int(feed.effective_interval * 1.5))
    return int(min(max(interval, settings.min_poll_interval), settings.max_poll_interval))
