"""Article fetching: the pages of claimed entries, politely.

Every page goes through the politeness rules of :mod:`newsflow.politeness`: it waits for
the host slot the frontier reserved for it (``PageJob.not_before``), then robots.txt,
per-host concurrency and spacing in this process, and a host's Retry-After (a 429/503
defers every further page of that host in this run; those pages come back as
``DEFERRED`` results, postponed without counting an attempt). Pages whose Content-Type is
neither HTML, XML nor text are not handed to extraction (``CONTENT_TYPE``). Concurrency
across hosts comes from a thread pool. A set ``stop`` event ends the wait: no new request
starts, and :class:`Interrupted` is raised to the caller.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Sequence

from .config import Settings
from .httpclient import SafeClient
from .models import ErrorKind, Interrupted, PageFetch, PageJob  # noqa: F401 (Interrupted: raised here)
from .politeness import HostGate, RobotsCache, deferred_result, host_key, host_wait

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


class PageFetcher:
    def __init__(self, settings: Settings, client: SafeClient, stop: threading.Event | None = None):
        self.settings = settings
        self.client = client
        self.stop = stop or threading.Event()
        self.gate = HostGate(settings.per_host_concurrency, settings.per_host_delay)
        self.robots = RobotsCache(client, settings, self.gate)

    def fetch_jobs(self, jobs: Sequence[PageJob | tuple[str, datetime | None]]) -> list[PageFetch]:
        """Fetch the pages of claimed entries (or (url, not_before) pairs), each not before
        its slot; order kept. Raises :class:`Interrupted` when ``stop`` is set."""
        pairs = [(j.link, j.not_before) if isinstance(j, PageJob) else j for j in jobs]
        if not pairs:
            return []
        pool = ThreadPoolExecutor(max_workers=max(1, self.settings.fetch_concurrency))
        try:
            futures = [pool.submit(self.fetch_one, url, not_before) for url, not_before in pairs]
            pending = set(futures)
            while pending:
                if self.stop.is_set():
                    raise Interrupted("stopped while fetching")
                _, pending = wait(pending, timeout=0.2)
            return [f.result() for f in futures]
        finally:
            # on a stop, requests already on the wire finish (bounded by their timeouts)
            # in the background; nothing waits for them
            pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)

    def fetch_one(self, url: str, not_before: datetime | None = None) -> PageFetch:
        if not_before is not None:
            delay = (not_before - datetime.now(timezone.utc)).total_seconds()
            if delay > 0 and self.stop.wait(delay):
                return PageFetch(url, result=deferred_result(url, "stopped"))
        if self.stop.is_set():
            return PageFetch(url, result=deferred_result(url, "stopped"))
        host = host_key(url)
        if (deferred := self.gate.blocked(host)):
            return PageFetch(url, result=deferred_result(url, deferred[1]), deferred_for=deferred[0])
        denied = self.robots.check(url)
        crawl_delay = self.robots.crawl_delay(url)
        if denied:
            return PageFetch(url, denied=denied, crawl_delay=crawl_delay)
        with self.gate(host):
            if (deferred := self.gate.blocked(host)):  # set while we waited for a slot
                return PageFetch(url, result=deferred_result(url, deferred[1]), deferred_for=deferred[0])
            result = self.client.get(url, max_bytes=self.settings.max_page_bytes, accept=PAGE_ACCEPT)
        page = PageFetch(url, result=result, crawl_delay=crawl_delay)
        wait_for = host_wait(self.settings, result, jitter=False)
        if wait_for is not None:
            self.gate.block(host, wait_for, f"host {host} answered HTTP {result.status}; "
                                            f"deferred for {wait_for:.0f}s (Retry-After)")
            page.deferred_for = wait_for
        elif result.ok and not result.is_page_type:
            result.error_kind = ErrorKind.CONTENT_TYPE
            result.error = f"not a web page: Content-Type {result.content_type}"
            result.body = b""
        return page
