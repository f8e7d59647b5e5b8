"""The frontier: which pending entries a worker takes next, and when each may be fetched.

Crawlers keep one queue per host and hand work out host by host (StormCrawler, Heritrix,
Nutch); a batch that is mostly one host wastes every other host's politeness budget. A
claim here takes the oldest due entries (``frontier_scan`` of them), **at most a few per
host** — as many as fit in the next ``frontier_horizon`` seconds of that host's schedule
(all of them when politeness is lifted) — hosts in rotation, and none of a host that
asked us to wait (Retry-After) or whose schedule is full.

Each handed-out entry gets a *slot*: the moment its fetch may start, ``delay`` apart on
its host's schedule (``news.hosts.next_allowed_at``), where the delay is
``per_host_delay`` or the host's robots.txt Crawl-delay, whichever is longer. The schedule
lives in PostgreSQL, so every worker of every process (Airflow's mapped ingest tasks,
Celery workers) keeps to one politeness budget per host.

A claim is one short transaction: candidates, lock (``SKIP LOCKED``), reserve slots, lease
to the worker, commit. See ``storage.entries`` for the lease, ``storage.workers`` for the
worker lock that makes a dead worker's leases free at once.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Sequence

import psycopg

from . import db
from .config import Settings
from .models import BatchResult, PageJob
from .politeness import host_delay
from .storage import entries as entry_store
from .storage import hosts as host_store
from .storage import workers


class Worker:
    """This process's worker identity, held for as long as it works (context manager)."""

    def __init__(self, url: str):
        self.url = url
        self.id: int | None = None
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> "Worker":
        self._conn = db.connect(self.url, autocommit=True)
        self.id = workers.register(self._conn)
        return self

    def __exit__(self, *exc) -> None:
        if self._conn is not None:
            try:  # at once: a closing connection's backend lets go of its locks a moment later
                workers.unregister(self._conn, self.id)
            except Exception:  # the connection is gone already: so is the lock
                pass
            self._conn.close()  # the lock goes with the connection


def per_host(settings: Settings) -> int:
    """Entries of one host one claim may take: those that fit in the horizon."""
    if settings.per_host_delay <= 0:
        return settings.batch_size
    return max(1, min(settings.batch_size, math.ceil(settings.frontier_horizon / settings.per_host_delay)))


def claim(conn: psycopg.Connection, worker_id: int, settings: Settings,
          entry_ids: Sequence[int] | None = None, out: BatchResult | None = None) -> list[PageJob]:
    """Lease up to ``batch_size`` entries to the worker (one short transaction). Pending
    entries that already have ``max_strikes`` strikes (max_strikes was lowered) are
    quarantined here, and counted in ``out`` (failed, quarantined)."""
    with conn.transaction():
        found = entry_store.candidates(conn, scan=settings.frontier_scan, horizon=settings.frontier_horizon,
                                       entry_ids=entry_ids)
        worn = [c.id for c in found if c.strikes >= settings.max_strikes]
        limit = per_host(settings)
        picked = sorted((c for c in found if c.strikes < settings.max_strikes
                         and (c.host is None or (c.open and c.rank <= limit))),
                        key=lambda c: (c.rank, c.id))[:settings.batch_size]
        # lock order (storage.locks): host rows first, then the entries (SKIP LOCKED)
        hosts = host_store.lock(conn, [c.host for c in picked if c.host])
        locked = set(entry_store.lock_free(conn, [c.id for c in picked] + worn))
        quarantined = entry_store.quarantine(conn, [i for i in worn if i in locked], settings.max_strikes)
        if out is not None and quarantined:
            out.failed += quarantined
            out.quarantined += quarantined
        picked = [c for c in picked if c.id in locked]
        slots, ends = {}, {}
        for c in picked:
            host = hosts.get(c.host) if c.host else None
            if host is None:  # no link: nothing to fetch
                slots[c.id] = None
                continue
            if host.deferred:  # deferred since the candidates were read
                continue
            delay = host_delay(settings, host.crawl_delay)
            start = ends.get(c.host, host.free_at)
            slots[c.id] = start if delay > 0 else None
            ends[c.host] = start + timedelta(seconds=delay)
        host_store.reserve(conn, {h: end for h, end in ends.items() if end > hosts[h].free_at})
        return entry_store.lease(conn, worker_id, settings.lease_seconds, slots) if slots else []


def next_opening(conn: psycopg.Connection, settings: Settings,
                 entry_ids: Sequence[int] | None = None) -> float | None:
    """Seconds until a claim could hand something out again; None when nothing is due."""
    with conn.transaction():
        return host_store.next_opening(conn, settings.frontier_horizon, entry_ids)
