"""Politeness: how newsflow treats the hosts it fetches from, in one place.

* :func:`host_key`, the politeness unit (host[:port]), used by page fetching, robots.txt,
  feed polling, poll sharding and the database's per-host deferral;
* :class:`HostDeferrals`: hosts that answered 429/503 and asked (Retry-After) to be left
  alone, shared by feed polling and page fetching within a run;
* :class:`HostGate`: at most ``per_host_concurrency`` requests in flight per host and
  ``per_host_delay`` seconds between two request starts;
* :class:`RobotsCache`: robots.txt per host (RFC 9309, parsed by protego);
* :func:`retry_after_delay`: how long a Retry-After really makes us wait (capped, with
  jitter so a fleet of feeds on one host does not return in the same second).

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
from .models import ErrorKind

ROBOTS_MAX_BYTES = 512 * 1024
HOST_BACKOFF_DEFAULT = 60.0  # seconds a host is left alone after a 429/503 without Retry-After


def host_key(url: str) -> str:
    """The politeness unit: host[:port] without user info, lower case."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def retry_after_delay(settings: Settings, retry_after: float | None, *, jitter: bool = True) -> float:
    """A server's Retry-After (``HOST_BACKOFF_DEFAULT`` when it gave none) capped at
    ``retry_after_cap``; with ``jitter`` (feeds' next poll times, stored for days) plus up
    to 20% (still capped)."""
    wanted = HOST_BACKOFF_DEFAULT if retry_after is None else retry_after
    capped = min(max(wanted, 1.0), settings.retry_after_cap)
    if not jitter:
        return capped
    return min(capped * random.uniform(1.0, 1.2), max(capped, settings.retry_after_cap))


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
        """Space this host's requests ``delay`` apart (its robots.txt Crawl-delay)."""
        with self._lock:
            self._delays[host] = max(self.delay, delay)

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
    A Crawl-delay for our user agent (capped at ``max_crawl_delay``) slows the gate down
    for that host and is reported (``crawl_delay``) so the frontier can keep to it."""

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
        """The Crawl-delay robots.txt gave for this URL's host (after ``check``), capped."""
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
                delay = min(float(delay), self.settings.max_crawl_delay) if delay else None
            except Exception:  # an unparseable robots.txt restricts nothing
                return None, None, None
            if delay:
                self.gate.slow_down(host, delay)
            return rules, None, delay
        return None, f"robots.txt unavailable ({result.error or result.status}); retrying later", None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def deferred_result(url: str, reason: str) -> FetchResult:
    """The result of a request we did not send (the host asked us to wait, or we stop)."""
    return FetchResult(url=url, final_url=url, error=f"deferred: {reason}", error_kind=ErrorKind.DEFERRED)
