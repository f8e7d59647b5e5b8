"""Daily upkeep: feed rhythm and health report (stale episodes), retention of raw data,
dedup window, ANALYZE."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import db, health
from .config import Settings
from .models import FeedStatus, StaleRule
from .storage import changes, dedup_index, feed_rhythm, schema
from .storage import entries as entry_store
from .storage import feeds as feed_store
from .storage import fetch_log
from .storage.locks import take_write_locks

TABLES = ["news.feeds", "news.entries", "news.articles", "news.stories",
          "news.dedup_signatures", "news.dedup_bands", "news.fetch_log",
          "news.story_outlets", "news.changes"]


@dataclass
class FeedHealth:
    """The daily health check (``maintenance.check_health``): every feed's state, and the
    stale episodes not reported before."""
    rhythm_measured: int
    groups: dict[str, list[FeedStatus]]  # by state
    newly_stale: list[FeedStatus]

    def counts(self) -> dict[str, int]:
        return {state: len(feeds) for state, feeds in sorted(self.groups.items())}

    def lines(self) -> list[str]:
        """One line per failing, stale, deferred or disabled feed, with why; then each
        newly stale one."""
        return ([health.line(row) for state in ("failing", "stale", "deferred", "disabled")
                 for row in self.groups.get(state, [])]
                + [f"newly stale: {health.line(feed)}" for feed in self.newly_stale])

    def summary(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in self.counts().items()) or "no feeds"
        return f"feed health: {states}; {len(self.newly_stale)} newly stale; rhythm measured for {self.rhythm_measured} feeds"


def measure_rhythm(url: str, settings: Settings) -> int:
    """Measure every feed's rhythm from its own history again; returns feeds measured."""
    with db.transaction(url, settings.lock_timeout) as conn:
        return feed_rhythm.refresh(conn, arrivals=settings.rhythm_arrivals,
                                   lookback_days=settings.rhythm_lookback_days)


def health_report(url: str, settings: Settings) -> dict[str, list[FeedStatus]]:
    """Feeds grouped by state: failing, disabled, stale, deferred, new, healthy."""
    with db.connect(url) as conn:
        rows, _ = feed_store.health(conn, StaleRule.from_settings(settings))
    report: dict[str, list[FeedStatus]] = {}
    for row in rows:
        report.setdefault(row.state, []).append(row)
    return report


def new_stale_episodes(url: str, report: dict[str, list[FeedStatus]]) -> list[FeedStatus]:
    """The stale feeds of ``report`` whose episode (the quiet spell since their last arrival
    of new entries) was not reported before; they count as reported from now on."""
    stale = report.get("stale", [])
    with db.transaction(url) as conn:
        fresh = set(feed_rhythm.claim_episodes(
            conn, {f.id: f.last_arrival_at or f.created_at for f in stale}))
    return [f for f in stale if f.id in fresh]


def check_health(url: str, settings: Settings) -> FeedHealth:
    """Measure every feed's rhythm, group the feeds by state, and claim the stale episodes
    not reported before (each is reported once: the caller reports them)."""
    measured = measure_rhythm(url, settings)
    groups = health_report(url, settings)
    return FeedHealth(rhythm_measured=measured, groups=groups, newly_stale=new_stale_episodes(url, groups))


def retention(url: str, settings: Settings, stop: threading.Event | None = None) -> dict[str, int]:
    with db.transaction(url, settings.lock_timeout) as conn:
        # deleting entries that carried an article refreshes its story's outlets: the
        # writers' lock order applies (storage.locks); the waits are bounded, a stop ends them
        take_write_locks(conn, timeout=settings.lock_timeout, stop=stop)
        window_start = datetime.now(timezone.utc) - timedelta(days=settings.dedup_window_days * 2)
        return {
            "fetch_log_rows": fetch_log.purge(conn, settings.retention_days),
            "failed_entries": entry_store.purge(conn, settings.retention_days),
            # the index only needs the window (twice, for articles dated in the future of
            # others); articles themselves are kept
            "dedup_signatures": dedup_index.purge(conn, window_start),
            "change_rows": (changes.purge(conn, settings.changes_retention_days)
                            if settings.changes_retention_days > 0 else 0),
        }



def analyze(url: str) -> list[str]:
    with db.connect(url, autocommit=True) as conn:
        schema.analyze(conn, TABLES)
    return TABLES
