"""Politeness: how newsflow treats the hosts it fetches from, in one place.

* :func:`host_key`, the politeness unit (host[:port]), used by page fetching, robots.txt,
  feed polling, poll sharding and the database's per-host deferral;
* :class:`HostDeferrals`: hosts that answered 429/503 and asked (Retry-After) to be left
  alone, shared by feed polling and page fetching within a run;
* :class:`HostGate`: at most ``per_host_concurrency`` requests in flight per host and
  ``per_host_delay`` seconds between two request starts;
* :class:`RobotsCache`: robots.txt per host (RFC 9309, parsed by protego);
* :func:`retry_after_delay` / :func:`host_wait`: how long a 429/503 makes us leave its
  host alone — the same rule for feeds and pages: the server's Retry-After, or
  ``host_backoff_default`` when it gave none, capped at ``retry_after_cap``;
* :func:`host_delay`: the spacing between two requests to one host (``per_host_delay``,
  or its robots.txt Crawl-delay up to ``max_crawl_delay``), the one computation the
  frontier, the in-process gate and the hosts table use;
* :func:`backoff`: the one exponential backoff (failed polls, page retries, load errors);
* :func:`decide_poll_failure`: what a failed poll means for its feed and its host, a pure
  :class:`~newsflow.models.PollDecision` that ``storage.feeds.apply_failure`` writes in
  one short transaction, in the lock order of docs/politeness.md.

What a single response means (rate limited, gone, cache lifetime, permanent failure) is
:class:`newsflow.httpclient.FetchResult`'s business.
"""

from __future__ import annotations

import random
import threading
import time
from urllib.parse import urlsplit

from protego import Protego

from .config import Settings
from .httpclient import FetchResult, SafeClient
from .models import ErrorKind, Feed, HostDeferral, PollDecision

ROBOTS_MAX_BYTES = 512 * 1024


def host_key(url: str) -> str:
    """The politeness unit: host[:port] without user info, lower case."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def backoff(base: float, failures: int, cap: float | None = None) -> float:
    """``base`` doubled per earlier failure (``failures`` = 0 for the first), at most ``cap``."""
    wait = base * 2 ** max(0, failures)
    return min(wait, cap) if cap is not None else wait


def host_delay(settings: Settings, crawl_delay: float | None) -> float:
    """Seconds between two request starts on one host: ``per_host_delay``, or the host's
    robots.txt Crawl-delay when longer (honoured up to ``max_crawl_delay``)."""
    return max(settings.per_host_delay, min(crawl_delay or 0.0, settings.max_crawl_delay))


def host_wait(settings: Settings, result: FetchResult, *, jitter: bool = True) -> float | None:
    """Seconds the host of ``result`` asked to be left alone, or None: a 429 or a 503
    means "not now" for every request to that host, feed or page, with or without a
    Retry-After (without one: ``host_backoff_default``)."""
    if not result.rate_limited:
        return None
    return retry_after_delay(settings, result.retry_after, jitter=jitter)


def retry_after_delay(settings: Settings, retry_after: float | None, *, jitter: bool = True) -> float:
    """A server's Retry-After (``host_backoff_default`` when it gave none) capped at
    ``retry_after_cap``; with ``jitter`` (feeds' next poll times, stored for days) plus up
    to 20% (still capped)."""
    wanted = settings.host_backoff_default if retry_after is None else retry_after
    capped = min(max(wanted, 1.0), settings.retry_after_cap)
    if not jitter:
        return capped
    return min(capped * random.uniform(1.0, 1.2), max(capped, settings.retry_after_cap))


def decide_poll_failure(settings: Settings, feed: Feed, result: FetchResult, error: str) -> PollDecision:
    """What a failed poll does to its feed and its host (pure: no I/O).

    * the feed's next poll: ``backoff(error_backoff_base, errors so far)`` capped at
      ``max_poll_interval``; or, when its host said "not now" (429/503), the host's wait;
    * disabled: a 410 Gone at once; otherwise after ``max_feed_errors`` consecutive
      failures, except a 429 (it is about our request rate, not the feed);
    * host deferral: a 429/503 leaves the host alone (``host_wait``): every feed and page
      of that host waits as well."""
    errors = feed.consecutive_errors + 1
    disable = None
    if result.gone:
        disable = f"HTTP {result.status} Gone: the publisher removed this feed"
    elif errors >= settings.max_feed_errors and result.status != 429:
        disable = f"{errors} consecutive failures; last: {error}"
    deferral = None
    wait = host_wait(settings, result)
    if wait is not None:
        host = host_key(feed.url)
        asked = (f"Retry-After {result.retry_after:.0f}s" if result.retry_after is not None
                 else f"no Retry-After: {settings.host_backoff_default:g}s")
        error = f"{error}; host {host} asked us to wait ({asked})"
        deferral = HostDeferral(host, wait, f"host {host} answered HTTP {result.status} ({asked}) "
                                            f"for feed {feed.id}")
        retry_in = wait
    else:
        retry_in = backoff(settings.error_backoff_base, errors - 1, settings.max_poll_interval)
    return PollDecision(feed_id=feed.id, status=result.status, error=error, retry_in=max(retry_in, 1.0),
                        disable_reason=disable, errors=errors, host_deferral=deferral)


class HostDeferrals:
    """Hosts that asked us (429/503 + Retry-After) to come back later, within one run.

    Shared by feed polling and page fetching: a host's wish applies to every request
    we would send it, whichever stage sends it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._until: dict[str, tuple[float, str]] = {}

    def block(self, host: str, seconds: float, reason: str) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._until.get(host, (0.0, ""))[0]:
                self._until[host] = (until, reason)

    def check(self, host: str) -> tuple[float, str] | None:
        """(seconds left, reason) while ``host`` is deferred."""
        with self._lock:
            until, reason = self._until.get(host, (0.0, ""))
        left = until - time.monotonic()
        return (left, reason) if left > 0 else None


class HostGate:
    """Concurrency and spacing per host within this process; ``with gate(host):`` around
    each request. (Across processes, the frontier's slots keep the spacing.)"""

    def __init__(self, concurrency: int, delay: float):
        self.concurrency, self.delay = max(1, concurrency), max(0.0, delay)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._delays: dict[str, float] = {}  # hosts whose robots.txt asks for more
        self.deferrals = HostDeferrals()

    def slow_down(self, host: str, delay: float) -> None:
        """Space this host's requests ``delay`` apart (``host_delay``: its robots.txt Crawl-delay)."""
        with self._lock:
            self._delays[host] = delay

    def block(self, host: str, seconds: float, reason: str) -> None:
        """Leave ``host`` alone for ``seconds`` (it answered 429/503)."""
        self.deferrals.block(host, seconds, reason)

    def blocked(self, host: str) -> tuple[float, str] | None:
        """(seconds left, reason) while the host asked us to wait."""
        return self.deferrals.check(host)

    def __call__(self, host: str):
        return _GateSlot(self, host)

    def _enter(self, host: str) -> None:
        with self._lock:
            slot = self._slots.setdefault(host, threading.Semaphore(self.concurrency))
        slot.acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self._delays.get(host, self.delay)
        if start > now:
            time.sleep(start - now)

    def _exit(self, host: str) -> None:
        self._slots[host].release()


class _GateSlot:
    def __init__(self, gate: HostGate, host: str):
        self.gate, self.host = gate, host

    def __enter__(self):
        self.gate._enter(self.host)

    def __exit__(self, *exc):
        self.gate._exit(self.host)


class RobotsCache:
    """robots.txt per host (RFC 9309): 4xx = allow all, 5xx/unreachable = disallow for now.
    A Crawl-delay for our user agent slows the gate down for that host (``host_delay``) and
    is reported (``crawl_delay``) so the frontier can keep to it."""

    def __init__(self, client: SafeClient, settings: Settings, gate: HostGate):
        self.client, self.settings, self.gate = client, settings, gate
        self._lock = threading.Lock()
        # origin -> (rules, why unavailable, Crawl-delay capped)
        self._rules: dict[str, tuple[Protego | None, str | None, float | None]] = {}
        self._host_locks: dict[str, threading.Lock] = {}

    def check(self, url: str) -> tuple[ErrorKind, str] | None:
        """None when allowed, else (kind, reason)."""
        if not self.settings.obey_robots:
            return None
        origin = _origin(url)
        with self._lock:
            host_lock = self._host_locks.setdefault(origin, threading.Lock())
        with host_lock:  # one robots.txt fetch per host, even with many pages in flight
            if origin not in self._rules:
                self._rules[origin] = self._load(origin, host_key(url))
        rules, unavailable, _ = self._rules[origin]
        if unavailable:
            return ErrorKind.ROBOTS_UNAVAILABLE, unavailable
        if rules is not None and not rules.can_fetch(url, self.settings.http_user_agent):
            return ErrorKind.ROBOTS, "robots.txt disallows this page"
        return None

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay robots.txt gave for this URL's host (after ``check``); ``host_delay`` caps it."""
        return self._rules.get(_origin(url), (None, None, None))[2]

    def _load(self, origin: str, host: str) -> tuple[Protego | None, str | None, float | None]:
        with self.gate(host):
            result = self.client.get(origin + "/robots.txt", max_bytes=ROBOTS_MAX_BYTES)
        if result.status is not None and 400 <= result.status < 500:
            return None, None, None
        if result.ok:
            try:
                rules = Protego.parse(result.body.decode("utf-8", "replace"))
                delay = rules.crawl_delay(self.settings.http_user_agent)
                delay = float(delay) if delay else None
            except Exception:  # an unparseable robots.txt restricts nothing
                return None, None, None
            if delay:
                self.gate.slow_down(host, host_delay(self.settings, delay))
            return rules, None, delay
        return None, f"robots.txt unavailable ({result.error or result.status}); retrying later", None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def deferred_result(url: str, reason: str) -> FetchResult:
    """The result of a request we did not send (the host asked us to wait, or we stop)."""
    return FetchResult(url=url, final_url=url, error=f"deferred: {reason}", error_kind=ErrorKind.DEFERRED)
