"""The functions the Airflow DAG tasks call, one per task.

Each takes and returns plain JSON values (ids and counts, never article text), so what
travels through XCom stays small. They resolve the database and settings themselves
(:mod:`.context`: connection ``newsflow_db``, Variables, env), and call the pipeline
stages of this package; they hold no pipeline logic of their own and run the same way
from a plain Python shell, which is how the tests call some of them.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from .. import db
from . import context

log = logging.getLogger(__name__)


def _context(settings=None):
    settings = settings or context.settings()
    return settings, context.database_url(settings)


# --- newsflow_poll_feeds -------------------------------------------------------------------

def sync_feeds(feeds_file: str | None = None) -> dict[str, Any]:
    """Sync the feeds table from the feeds file (Variable/env), when one is configured."""
    from ..pipeline import sync_file

    path = feeds_file or context.feeds_file()
    if not path:
        log.warning("no feeds file configured (Variable %s / env %s): using the feeds table as is",
                    context.FEEDS_FILE_VARIABLE, context.FEEDS_FILE_ENV)
        return {"file": None, "inserted": 0, "updated": 0}
    _, url = _context()
    result = sync_file(url, path)
    for warning in result.warnings:
        log.warning("%s", warning)
    log.info("feeds file %s: %s", path, result.summary())
    return {"file": str(path), "inserted": result.inserted, "updated": result.updated,
            "unchanged": result.unchanged, "feeds": len(result.feed_ids)}


def plan_poll(feed_id: int | None = None, force: bool = False, shards: int = 4) -> list[list[int]]:
    """The feeds to poll now, split into at most ``shards`` lists of feed ids.

    ``feed_id``: that feed only, due or not (manual "poll this feed now");
    ``force``: every enabled feed; otherwise the due ones (own interval, error backoff).
    """
    from ..poll import select_feeds, shard

    _, url = _context()
    with db.connect(url) as conn:
        feeds = select_feeds(conn, feed_ids=[int(feed_id)] if feed_id else None, force=force)
    plan = shard(feeds, shards)
    log.info("%d feed(s) to poll in %d shard(s)", len(feeds), len(plan))
    return plan


def poll_shard(feed_ids: Sequence[int]) -> dict[str, int]:
    """Poll one shard of feeds; every outcome is recorded in the database, none raises."""
    from ..poll import poll_feeds, select_feeds

    settings, url = _context()
    with db.connect(url) as conn:
        feeds = select_feeds(conn, feed_ids=list(feed_ids))
    outcomes = poll_feeds(url, settings, feeds)
    for o in outcomes:
        (log.warning if o.error else log.info)("feed %s: %s", o.feed_id, o.summary())
    return {"feeds": len(outcomes), "new_entries": sum(o.new_entries for o in outcomes),
            "failed": sum(1 for o in outcomes if o.error),
            "not_modified": sum(1 for o in outcomes if o.not_modified)}


def summarize(results: Sequence[dict[str, int]] | None) -> dict[str, int]:
    """Add up per-shard (or per-worker) counts; ``first_*``/``last_*`` ids take min/max."""
    total: dict[str, int] = {}
    for r in results or []:
        for k, v in (r or {}).items():
            if not isinstance(v, int) or isinstance(v, bool):
                continue
            if k.startswith("first_"):
                total[k] = min(total.get(k) or v, v) if v else total.get(k, 0)
            elif k.startswith("last_"):
                total[k] = max(total.get(k, 0), v)
            else:
                total[k] = total.get(k, 0) + v
    return total


# --- newsflow_ingest_articles -------------------------------------------------------------

def requeue(entry_id: int | None = None, url: str | None = None, since: str | None = None,
            until: str | None = None, include_loaded: bool = False) -> dict[str, Any]:
    """Put entries back in the queue for a manual run; nothing to do when no Param is set.

    One entry (by id) or one URL is re-ingested even when already loaded; a date range
    (backfill) takes already-loaded entries only with ``include_loaded``.
    """
    from ..normalize import to_utc
    from ..storage import entries as entry_store

    if not (entry_id or url or since or until):
        return {"requeued": 0, "entry_ids": []}
    lo, hi = to_utc(since) if since else None, to_utc(until) if until else None
    if (since and lo is None) or (until and hi is None):
        raise ValueError(f"not a date: since={since!r} until={until!r}")
    _, db_url = _context()
    with db.transaction(db_url) as conn:
        n = entry_store.requeue(conn, entry_ids=[int(entry_id)] if entry_id else [], url=url or None,
                                since=lo, until=hi,
                                include_loaded=bool(include_loaded or entry_id or url))
    log.info("%d entries queued again (entry=%s url=%s since=%s until=%s)", n, entry_id, url, lo, hi)
    if n == 0 and (entry_id or url):
        raise ValueError(f"no entry matches entry_id={entry_id!r} url={url!r}")
    return {"requeued": n, "entry_ids": [int(entry_id)] if entry_id else []}


def plan_workers(workers: int | None) -> list[int]:
    """The worker labels to fan ingestion out to (one mapped task each)."""
    return list(range(max(1, int(workers or 1))))


def ingest(max_batches: int | None = None, entry_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Claim, fetch, extract (process pool), dedup and load pending entries, batch by batch.

    Safe to run several at once (task mapping, overlapping DAG runs, Celery workers):
    every batch claims its entries with FOR UPDATE SKIP LOCKED.
    """
    from ..ingest import ingest_pending

    context.allow_child_processes()
    settings, url = _context()
    result = ingest_pending(url, settings, max_batches=max_batches,
                            entry_ids=list(entry_ids) if entry_ids else None,
                            progress=lambda b: log.info("batch: %s", b.summary()))
    for error in result.errors[:50]:
        log.warning("%s", error)
    log.info("ingested: %s", result.summary())
    return {**result.counts(),
            "first_article_id": min(result.article_ids, default=0),
            "last_article_id": max(result.article_ids, default=0)}


# --- newsflow_maintenance -----------------------------------------------------------------

def health_report() -> dict[str, int]:
    """Log every failing, stale and disabled feed with its reason; return counts by health."""
    from ..maintenance import health_report as report
    from ..maintenance import unhealthy

    _, url = _context()
    groups = report(url)
    for line in unhealthy(groups):
        log.warning("%s", line)
    counts = {k: len(v) for k, v in sorted(groups.items())}
    log.info("feed health: %s", counts or "no feeds")
    return counts


def retention() -> dict[str, int]:
    from ..maintenance import retention as purge

    settings, url = _context()
    result = purge(url, settings)
    log.info("retention (%d days): %s", settings.retention_days, result)
    return result


def analyze() -> int:
    from ..maintenance import analyze as run

    _, url = _context()
    return len(run(url))
