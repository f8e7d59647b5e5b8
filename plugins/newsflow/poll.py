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
import multiprocessing
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Sequence

from pebble import ProcessExpired

from . import db, dberrors
from .config import Settings
from .httpclient import FetchResult, SafeClient
from .models import ErrorKind, Feed, Interrupted, ParsedFeed, PollOutcome
from .parse import parse_feed
from .politeness import HostDeferrals, decide_poll_failure, host_key
from .redaction import redact
from .storage import entries as entry_store
from .storage import feeds as feed_store
from .storage import fetch_log

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

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
               progress: Callable[[PollOutcome], None] | None = None,
               stop: threading.Event | None = None) -> list[PollOutcome]:
    """Poll the given feeds concurrently; every outcome is recorded on its feed.

    A feed never fails the others: whatever goes wrong with one (its server, its
    document, an item the database refuses, a bug) is that feed's recorded error. Only
    the database itself failing (connection lost, read-only, no privilege, disk full)
    ends the poll, with that error. A set ``stop`` starts no further feed."""
    stop = stop or threading.Event()
    own_client = client is None
    client = client or SafeClient(settings)
    outcomes: list[PollOutcome] = []
    deferrals = HostDeferrals()
    parsers = Parsers(settings, len(feeds))  # started before any thread: it forks
    threads = ThreadPoolExecutor(max_workers=max(1, settings.poll_concurrency))
    try:
        with db.pool(url, settings.poll_concurrency, settings.lock_timeout) as connections:
            pending = {threads.submit(_poll_guarded, connections, parsers, settings, client, f, deferrals, stop)
                       for f in feeds}
            # Waited for in short steps, so a stop (SIGINT/SIGTERM) is seen within a
            # fraction of a second even while a slow server trickles its feed: the feeds
            # in flight are abandoned (nothing of theirs was written; they stay due).
            while pending and not stop.is_set():
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()  # a database failure propagates from here
                    if outcome is None:  # not started: stopping
                        continue
                    outcomes.append(outcome)
                    if progress:
                        progress(outcome)
    finally:
        threads.shutdown(wait=not stop.is_set(), cancel_futures=True)
        parsers.close(now=stop.is_set())
        if own_client:
            client.close()
    return sorted(outcomes, key=lambda o: o.feed_id)


class Parsers:
    """Where feed documents are parsed: in worker processes when a poll has many feeds
    (``parse_pool_min_feeds``), else here. feedparser is pure Python, about 6 ms for a
    20-item feed: a thousand feeds would queue on the one core the poll's threads share.

    The same kind of pool as extraction's (pebble): a document that outlives
    ``parse_timeout`` or kills its worker is that feed's error ("unparseable feed"), and
    the worker is replaced; the other feeds go on."""

    def __init__(self, settings: Settings, feeds: int):
        self.settings = settings
        self._pool = None
        self._stopped = False  # close(now=True) killed the workers: what they parsed is abandoned
        if feeds >= settings.parse_pool_min_feeds:
            from pebble import ProcessPool

            from .extract import _ignore_interrupts

            self._pool = ProcessPool(max_workers=settings.extract_pool_size(), max_tasks=2000,
                                     initializer=_ignore_interrupts,
                                     context=multiprocessing.get_context("fork"))
            self._pool.schedule(int).result()  # the workers fork now, before the poll's threads start

    def parse(self, *args, **kwargs) -> ParsedFeed:
        if self._pool is None:
            return parse_feed(*args, **kwargs)
        future = self._pool.schedule(parse_feed, args=args, kwargs=kwargs, timeout=self.settings.parse_timeout)
        try:
            return future.result()
        except Exception as exc:
            if self._stopped:  # the pool was stopped under it (SIGINT/SIGTERM): not the feed's fault
                raise Interrupted("stopped while parsing") from None
            if isinstance(exc, FutureTimeout):
                return ParsedFeed(entries=[], error=f"parsing took longer than {self.settings.parse_timeout:g}s; "
                                                     "worker stopped")
            if isinstance(exc, ProcessExpired):  # the worker died (a crash in a C library, out of memory)
                return ParsedFeed(entries=[], error=f"the parser's worker process died: {exc}")
            raise

    def close(self, now: bool = False) -> None:
        """Wait for the documents being parsed, or (``now``: stopping) kill the workers."""
        if self._pool is not None:
            if now:
                self._stopped = True
                self._pool.stop()
            else:
                self._pool.close()
            self._pool.join()


def _poll_guarded(connections: ConnectionPool, parsers: Parsers, settings: Settings, client: SafeClient,
                  feed: Feed, deferrals: HostDeferrals, stop: threading.Event) -> PollOutcome | None:
    """One feed, whatever happens to it: its outcome, recorded on its row. Only a fatal
    database error (dberrors: lost, read-only, no privilege, ...) propagates."""
    if stop.is_set():
        return None
    try:
        return _poll_one(connections, parsers, settings, client, feed, deferrals, stop)
    except Interrupted:
        return None  # stopping: nothing written, the feed stays due
    except dberrors.RetriesExhausted as exc:
        # a deadlock or a lock/statement timeout that outlasted its retries: not the
        # feed's fault (no failure counted, it stays due), but shown on it, with the cause
        error = f"not recorded: {exc}"
        log.warning("feed %s: %s", redact(feed.url), error)
        _write(connections, settings, stop, f"feed {feed.id}", lambda conn: feed_store.note_error(conn, feed.id, error),
               give_up=True)
        return PollOutcome(feed.id, redact(feed.url), None, error=error, error_kind=ErrorKind.DATABASE)
    except Exception as exc:
        if not dberrors.is_record_fault(exc):
            raise  # the database's fault, not the feed's
        # a bug or a hostile document we did not foresee: this feed's error, on its row
        error = f"internal error while polling: {type(exc).__name__}: {str(exc)[:300]}"
        log.exception("polling feed %s failed", redact(feed.url))
        decision = decide_poll_failure(settings, feed, FetchResult(url=feed.url, final_url=feed.url), error)
        _write(connections, settings, stop, f"feed {feed.id}", lambda conn: feed_store.apply_failure(conn, decision),
               give_up=True)
        return PollOutcome(feed.id, redact(feed.url), None, error=error)


def _write(connections: ConnectionPool, settings: Settings, stop: threading.Event, what: str,
           work: Callable, *, give_up: bool = False):
    """``work(conn)`` in one transaction, tried again on a transient database error
    (dberrors.retry). ``give_up``: a last note that may be lost (logged) rather than raise."""
    def attempt():
        with connections.connection() as conn, conn.transaction():
            return work(conn)
    try:
        return dberrors.retry(attempt, tries=settings.db_retries, delay=settings.db_retry_delay, what=what,
                              stop=stop)
    except dberrors.RetriesExhausted as exc:
        if not give_up:
            raise
        log.warning("%s: could not record (%s)", what, exc)


def _poll_one(connections: ConnectionPool, parsers: Parsers, settings: Settings, client: SafeClient,
              feed: Feed, deferrals: HostDeferrals, stop: threading.Event) -> PollOutcome:
    shown = redact(feed.url)
    if (deferred := deferrals.check(host_key(feed.url))):
        left, reason = deferred
        _write(connections, settings, stop, f"feed {feed.id}", lambda conn: feed_store.defer(conn, feed.id, left))
        return PollOutcome(feed.id, shown, None, error=f"deferred: {reason}", deferred=True)
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
    if stop.is_set():
        return None  # stopping: nothing written, the feed stays due
    outcome = PollOutcome(feed.id, shown, result.status, bytes=len(result.body))
    # Parsing is CPU work on strangers' bytes: done before the transaction opens, so no
    # transaction waits on it (managed PostgreSQL kills idle-in-transaction sessions).
    answered = not result.failed and not result.not_modified
    body_hash = hashlib.sha256(result.body).hexdigest() if answered else None
    parsed = hosts = None
    if answered and body_hash != feed.body_hash:
        parsed = parsers.parse(result.body, result.final_url, feed.guid_mode, result.content_type,
                               settings=settings)
        if stop.is_set():
            return None  # stopped while parsing: nothing written, the feed stays due
        hosts = [host_key(e.link) if e.link else None for e in parsed.entries]
    if result.failed:
        outcome.error = result.error or f"HTTP {result.status}"
        outcome.error_kind = result.error_kind or ErrorKind.HTTP
        decision = decide_poll_failure(settings, feed, result, outcome.error)
        outcome.error = decision.error
        if decision.host_deferral is not None:
            d = decision.host_deferral
            deferrals.block(d.host, d.seconds, d.reason)  # the host's other feeds of this run wait
        if decision.disable_reason:
            log.warning("%s disabled %s; re-enable in Feeds (Newsflow in the Airflow UI) or with "
                        "`newsflow feeds enable %s`", feed.label,
                        f"({decision.disable_reason})" if result.gone else
                        f"after {decision.errors} consecutive failures: {outcome.error}", feed.id)
    else:
        decision = None

    def write(conn) -> None:
        # Lock order (docs/politeness.md): the host's row (a deferral only), then this
        # feed's row, then its entries; no other table is locked here.
        if decision is not None:
            feed_store.apply_failure(conn, decision)
        elif result.not_modified or body_hash == feed.body_hash:  # (body_hash is set when answered)
            # 304, or the same bytes as last time although the server did not say 304
            feed_store.lock(conn, feed.id)
            outcome.not_modified = True
            validators = ({} if result.not_modified else
                          dict(etag=result.headers.get("etag"), last_modified=result.headers.get("last-modified")))
            feed_store.record_success(conn, feed.id, status=result.status, body_hash=body_hash,
                                      full_fetch=full and not result.not_modified, keep_warning=True,
                                      etag=validators.get("etag"), last_modified=validators.get("last_modified"),
                                      interval=next_interval(settings, feed, result, changed=False))
        else:
            feed_store.lock(conn, feed.id)
            _record_document(conn, settings, feed, result, full, parsed, hosts, body_hash, outcome)
        if result.permanent_redirect and not outcome.error:
            if feed_store.move(conn, feed.id, result.permanent_redirect):
                log.info("feed %s moved permanently to %s", shown, redact(result.permanent_redirect))
        fetch_log.record(conn, kind="feed", feed_id=feed.id, url=feed.url, status=result.status,
                         bytes=len(result.body), duration_ms=int(result.elapsed * 1000),
                         error=outcome.error, new_entries=outcome.new_entries)
    _write(connections, settings, stop, f"feed {feed.id}", write)
    return outcome


def _record_document(conn, settings: Settings, feed: Feed, result: FetchResult, full: bool,
                     parsed: ParsedFeed, hosts: list[str | None], body_hash: str,
                     outcome: PollOutcome) -> None:
    validators = dict(etag=result.headers.get("etag"), last_modified=result.headers.get("last-modified"))
    if parsed.error:
        outcome.error = f"unparseable feed: {parsed.error}"
        feed_store.apply_failure(conn, decide_poll_failure(settings, feed, result, outcome.error))
        return
    new, rekeyed, problems = entry_store.insert_new(conn, feed.id, parsed.entries, hosts)
    mode = parsed.guid_mode
    warnings = [parsed.warning] if parsed.warning else []
    if rekeyed and mode == "guid":
        mode = "link"
        warnings = [f"GUIDs change between polls ({rekeyed} known items with new ids): identity by link"]
    if problems:
        warnings.append(f"{len(problems)} item(s) refused by the database: {'; '.join(problems[:3])}")
    outcome.new_entries, outcome.seen_entries = new, len(parsed.entries)
    outcome.changed_entries = entry_store.requeue_changed(conn, feed.id, parsed.entries,
                                                          settings.correction_min_interval)
    feed_store.record_success(conn, feed.id, status=result.status, body_hash=body_hash,
                              full_fetch=full, guid_mode=mode, warning="; ".join(warnings) or None,
                              **validators,
                              interval=next_interval(settings, feed, result, changed=new > 0,
                                                     ttl=parsed.ttl))


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
