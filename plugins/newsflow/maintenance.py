"""Daily upkeep: feed health report, retention of raw data, dedup window, ANALYZE."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from . import db
from .config import Settings
from .models import FeedStatus
from .storage import changes, dedup_index, schema
from .storage import entries as entry_store
from .storage import feeds as feed_store
from .storage import fetch_log
from .storage.locks import take_write_locks

TABLES = ["news.feeds", "news.entries", "news.articles", "news.stories",
          "news.dedup_signatures", "news.dedup_bands", "news.fetch_log",
          "news.story_outlets", "news.changes"]


def health_report(url: str) -> dict[str, list[FeedStatus]]:
    """Feeds grouped by health: failing, stale, disabled (with reasons), ok, new."""
    with db.connect(url) as conn:
        rows = feed_store.status(conn)
    report: dict[str, list[FeedStatus]] = {}
    for row in rows:
        report.setdefault(row.health, []).append(row)
    return report


def unhealthy(report: dict[str, list[FeedStatus]]) -> list[str]:
    """One line per failing, stale or disabled feed, with its reason."""
    return [f"{health:8} feed {row.id} {row.url} ({row.publisher}): {row.reason}"
            for health in ("failing", "stale", "disabled") for row in report.get(health, [])]


def retention(url: str, settings: Settings) -> dict[str, int]:
    with db.transaction(url) as conn:
        # deleting entries that carried an article refreshes its story's outlets: the
        # writers' lock order applies (storage.locks)
        take_write_locks(conn)
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


def reindex_signatures(url: str, settings: Settings, batch: int = 500) -> int:
    """Compute again, from the articles' text, the near-duplicate signatures an older
    fingerprint scheme stored (after an upgrade that changed it); returns how many."""
    from . import dedup

    done = 0
    while True:
        with db.transaction(url) as conn:
            rows = dedup_index.outdated(conn, batch)
            for row in rows:
                dedup_index.add(conn, row["article_id"], dedup.fingerprint(row["body"], settings),
                                row["published_at"])
        done += len(rows)
        if len(rows) < batch:
            return done


def analyze(url: str) -> list[str]:
    with db.connect(url, autocommit=True) as conn:
        schema.analyze(conn, TABLES)
    return TABLES
