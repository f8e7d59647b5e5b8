"""Article fetching: the pages of claimed entries, politely.

Every page goes through the politeness rules of :mod:`newsflow.politeness`: robots.txt,
per-host concurrency and spacing, and a host's Retry-After (a 429/503 defers every
further page of that host in this run; those pages come back as ``DEFERRED`` results,
which ingestion retries later). Pages whose Content-Type is neither HTML, XML nor text
are not handed to extraction (``CONTENT_TYPE``). Concurrency across hosts comes from a
thread pool.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from .config import Settings
from .httpclient import FetchResult, SafeClient
from .models import ErrorKind
from .politeness import HostGate, RobotsCache, deferred_result, host_key, retry_after_delay

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


@dataclass
class PageFetch:
    url: str
    result: FetchResult | None = None
    denied: tuple[ErrorKind, str] | None = None  # robots.txt forbids, or cannot be read


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
            return PageFetch(url, result=deferred_result(url, deferred))
        denied = self.robots.check(url)
        if denied:
            return PageFetch(url, denied=denied)
        with self.gate(host):
            if (deferred := self.gate.blocked(host)):  # set while we waited for a slot
                return PageFetch(url, result=deferred_result(url, deferred))
            result = self.client.get(url, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        if result.rate_limited:
            wait = retry_after_delay(self.settings, result.retry_after, jitter=False)
            self.gate.block(host, wait, f"host {host} answered HTTP {result.status}; "
                                        f"deferred for {wait:.0f}s (Retry-After)")
        elif result.ok and not result.is_page_type:
            result.error_kind = ErrorKind.CONTENT_TYPE
            result.error = f"not a web page: Content-Type {result.content_type}"
            result.body = b""
        return PageFetch(url, result=result)
