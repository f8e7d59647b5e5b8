"""Article fetching: pages of claimed entries, politely.

Per host: at most ``per_host_concurrency`` requests in flight and ``per_host_delay``
seconds between request starts; robots.txt obeyed (cached per host for the life of the
fetcher); a 429/503 from a host defers every further request to that host for the
Retry-After it gave (capped; ``HOST_BACKOFF_DEFAULT`` when it gave none) — those pages
come back as ``error_kind="deferred"`` results, which ingestion retries later.
Pages whose Content-Type is neither HTML, XML nor text are not handed to extraction
(``error_kind="content_type"``). Concurrency across hosts comes from a thread pool.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

from protego import Protego

from .config import Settings
from .httpclient import FetchResult, HostDeferrals, SafeClient

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
ROBOTS_MAX_BYTES = 512 * 1024
HOST_BACKOFF_DEFAULT = 60.0  # seconds a host is left alone after a 429/503 without Retry-After


def host_key(url: str) -> str:
    """The politeness unit: host[:port] without user info, lower case."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


def is_page_type(content_type: str) -> bool:
    """Could this Content-Type be an article page? Missing types are sniffed by extraction."""
    ct = (content_type or "").strip().lower()
    return (not ct or ct.startswith("text/") or ct in ("application/xhtml+xml", "application/xml")
            or ct.endswith("+xml"))


@dataclass
class PageFetch:
    url: str
    result: FetchResult | None = None
    robots_denied: str | None = None  # reason, when robots.txt forbids or cannot be read


class HostGate:
    """Concurrency and spacing per host."""

    def __init__(self, concurrency: int, delay: float):
        self.concurrency, self.delay = max(1, concurrency), max(0.0, delay)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self.deferrals = HostDeferrals()

    def block(self, host: str, seconds: float, reason: str) -> None:
        """Leave ``host`` alone for ``seconds`` (it answered 429/503)."""
        self.deferrals.block(host, seconds, reason)

    def blocked(self, host: str) -> str | None:
        deferred = self.deferrals.check(host)
        return deferred[1] if deferred else None

    def __call__(self, host: str):
        return _GateSlot(self, host)

    def _enter(self, host: str) -> None:
        with self._lock:
            slot = self._slots.setdefault(host, threading.Semaphore(self.concurrency))
        slot.acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self.delay
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
    """robots.txt per host (RFC 9309): 4xx = allow all, 5xx/unreachable = disallow for now."""

    def __init__(self, client: SafeClient, settings: Settings, gate: HostGate):
        self.client, self.settings, self.gate = client, settings, gate
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[Protego | None, str | None]] = {}
        self._host_locks: dict[str, threading.Lock] = {}

    def check(self, url: str) -> str | None:
        """None when allowed, else the reason."""
        if not self.settings.obey_robots:
            return None
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            host_lock = self._host_locks.setdefault(origin, threading.Lock())
        with host_lock:  # one robots.txt fetch per host, even with many pages in flight
            if origin not in self._rules:
                self._rules[origin] = self._load(origin, host_key(url))
        rules, unavailable = self._rules[origin]
        if unavailable:
            return unavailable
        if rules is not None and not rules.can_fetch(url, self.settings.http_user_agent):
            return "robots.txt disallows this page"
        return None

    def _load(self, origin: str, host: str) -> tuple[Protego | None, str | None]:
        with self.gate(host):
            result = self.client.get(origin + "/robots.txt", max_bytes=ROBOTS_MAX_BYTES)
        if result.status is not None and 400 <= result.status < 500:
            return None, None
        if result.ok:
            try:
                return Protego.parse(result.body.decode("utf-8", "replace")), None
            except Exception:  # an unparseable robots.txt restricts nothing
                return None, None
        return None, f"robots.txt unavailable ({result.error or result.status}); retrying later"


class PageFetcher:
    def __init__(self, settings: Settings, client: SafeClient):
        self.settings = settings
        self.client = client
        self.gate = HostGate(settings.per_host_concurrency, settings.per_host_delay)
        self.robots = RobotsCache(client, settings, self.gate)

    def fetch_all(self, urls: Sequence[str]) -> list[PageFetch]:
        """Fetch pages concurrently (order kept); never raises for a bad server."""
        if not urls:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.settings.fetch_concurrency)) as pool:
            return list(pool.map(self.fetch_one, urls))

    def fetch_one(self, url: str) -> PageFetch:
        host = host_key(url)
        if (deferred := self.gate.blocked(host)):
            return PageFetch(url, result=_deferred(url, deferred))
        denied = self.robots.check(url)
        if denied:
            return PageFetch(url, robots_denied=denied)
        with self.gate(host):
            if (deferred := self.gate.blocked(host)):  # set while we waited for a slot
                return PageFetch(url, result=_deferred(url, deferred))
            result = self.client.get(url, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        if result.status in (429, 503):
            wait = min(result.retry_after if result.retry_after is not None else HOST_BACKOFF_DEFAULT,
                       self.settings.retry_after_cap)
            self.gate.block(host, wait, f"host {host} answered HTTP {result.status}; "
                                        f"deferred for {wait:.0f}s (Retry-After)")
        elif result.ok and not is_page_type(result.content_type):
            result.error_kind = "content_type"
            result.error = f"not a web page: Content-Type {result.content_type}"
            result.body = b""
        return PageFetch(url, result=result)


def _deferred(url: str, reason: str) -> FetchResult:
    return FetchResult(url=url, final_url=url, error=f"deferred: {reason}", error_kind="deferred")
