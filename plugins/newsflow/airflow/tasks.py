"""The functions the Airflow DAG tasks call, one per task.

Each takes and returns plain JSON values (ids and counts, never article text), so what
travels through XCom stays small. They resolve the database and settings themselves
(:mod:`.context`: connection ``newsflow_db``, Variables, env), and call the pipeline
stages of this package; they hold no pipeline logic of their own and run the same way
from a plain Python shell, which is how the tests call some of them.

Every task ends with one ``summary: ...`` log line, sends its metrics (:mod:`.metrics`)
and, inside Airflow, keeps its counts in ``news.run_counts`` for the console's Pipeline
page. Feeds are named in logs as ``feed 7 (Example News - World)``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from .. import db
from ..health import plural
from . import context, metrics

log = logging.getLogger(__name__)


def _context():
    settings = context.settings()
    return settings, context.database_url(settings)


def _airflow_context() -> dict | None:
    """The running task's Airflow context; None outside a task (plain Python, tests)."""
    if not context._in_airflow():
        return None
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:
        return None


def _finish(counts: dict[str, Any], summary: str, url: str | None) -> dict[str, Any]:
    """The task's one-line summary, and its counts kept by run (news.run_counts)."""
    log.info("summary: %s", summary)
    ctx = _airflow_context()
    ti = ctx.get("ti") if ctx else None
    if ti is not None and url:
        from ..storage import run_counts

        try:
            with db.transaction(url) as conn:
                run_counts.record(conn, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                                  map_index=ti.map_index if ti.map_index is not None else -1,
                                  counts=counts)
        except Exception as exc:  # counts are for the console; never fail the task for them
            log.warning("could not keep this task's counts in news.run_counts: %s", exc)
    return counts


def set_map_label(key: str, text: str) -> None:
    """A value the task's ``map_index_template`` renders (the label of a mapped task)."""
    ctx = _airflow_context()
    if ctx is not None:
        ctx[key] = text


def failed_tasks() -> list[str]:
    """The tasks of this run that failed (for the watcher task's message); [] if unknown."""
    ctx = _airflow_context()
    ti = ctx.get("ti") if ctx else None
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id])
    except Exception as exc:
        log.debug("task states unavailable: %s", exc)
        return []
    # {run_id: {task_id or "<task_id>_<map_index>": state}}
    return sorted(key for run in (states or {}).values() if isinstance(run, dict)
                  for key, state in run.items() if str(state) in ("failed", "TaskInstanceState.FAILED"))


# --- newsflow_poll_feeds -------------------------------------------------------------------

def sync_feeds(feeds_file: str | None = None) -> dict[str, Any]:
    """Sync the feeds table from the feeds file (Variable/env), when one is configured."""
    from ..pipeline import sync_file

    path = feeds_file or context.feeds_file()
    if not path:
        log.warning("no feeds file configured (Variable %s / env %s): using the feeds table as is",
                    context.FEEDS_FILE_VARIABLE, context.FEEDS_FILE_ENV)
        return _finish({"file": None, "feeds_added": 0, "feeds_updated": 0},
                       "no feeds file: the feeds table is used as it is", None)
    with metrics.stage("sync_feeds"):
        settings, url = _context()
        result = sync_file(url, path, lock_timeout=settings.lock_timeout)
        for warning in result.warnings:
            log.warning("%s", warning)
        for feed_id in result.disabled_ids:
            log.warning("%s disabled by the feeds file (enabled: false)", result.labels[feed_id])
        for feed_id in result.enabled_ids:
            log.info("%s enabled again by the feeds file (enabled: true)", result.labels[feed_id])
    counts = {"file": str(path), "feeds_added": result.inserted, "feeds_updated": result.updated,
              "unchanged": result.unchanged, "feeds": len(result.feed_ids),
              "enabled_by_file": len(result.enabled_ids), "disabled_by_file": len(result.disabled_ids)}
    return _finish(counts, f"feeds file {path}: {result.summary()}", url)


def plan_poll(feed: str | int | None = None, force: bool = False, shards: int = 4) -> list[dict[str, Any]]:
    """The feeds to poll now, split into at most ``shards`` shards: ``{"feed_ids": [...],
    "label": "feed 7 (Example News - World), ..."}``. The label names the shard in the grid
    from the start (the map index template reads it from the task's arguments), so a shard
    that fails or waits for a retry is named by its feeds too, never "0".

    ``feed`` (id, URL or name): that feed only, due or not (manual "poll this feed now");
    refused with a clear message when it is disabled. ``force``: every enabled feed;
    otherwise the due ones (own interval, error backoff). No feed due: one empty shard
    labelled "0 feeds due", so the run says so in the grid (and its log says when the next
    feed is due).
    """
    from ..operations import enabled_feed
    from ..poll import select_feeds, shard
    from ..storage import feeds as feed_store

    with metrics.stage("plan_poll"):
        _, url = _context()
        with db.connect(url) as conn:
            if feed not in (None, ""):
                wanted = enabled_feed(conn, feed, hint="re-enable it in Feeds (Newsflow in the Airflow UI) first")
                feeds = select_feeds(conn, feed_ids=[wanted["id"]])
                log.info("polling %s now, as requested", wanted["label"])
            else:
                feeds = select_feeds(conn, force=force)
            next_due = feed_store.next_due(conn) if not feeds else None
        plan = shard(feeds, shards)
    what = "every enabled feed" if force else "due feeds"
    _finish({"due_feeds": len(feeds), "shards": len(plan)},
            f"{len(feeds)} feed(s) to poll in {len(plan)} shard(s)"
            + ("" if feed not in (None, "") else f" ({what})"), url)
    if not plan:
        when = (f"the next is due at {next_due:%Y-%m-%d %H:%M:%S} UTC" if next_due
                else "no enabled feed has a poll scheduled")
        log.info("0 feeds due: nothing to poll now (%s); trigger with force=true to poll every enabled "
                 "feed, or feed=<id or name> for one", when)
        return [{"feed_ids": [], "label": NO_FEED_DUE}]
    by_id = {f.id: f for f in feeds}
    return [{"feed_ids": ids, "label": shard_label([by_id[i] for i in ids])} for ids in plan]


NO_FEED_DUE = "0 feeds due"


def shard_label(feeds: Sequence) -> str:
    """How a poll shard is named in the grid: its feeds by name."""
    if len(feeds) <= 2:
        return ", ".join(f.label for f in feeds) or "no feeds"
    return f"{len(feeds)} feeds: " + ", ".join(f.name or f.publisher for f in feeds[:2]) + ", ..."


def poll_shard(feed_ids: Sequence[int]) -> dict[str, int]:
    """Poll one shard of feeds; every outcome is recorded in the database, none raises.
    An empty shard (no feed due) polls nothing and says so."""
    from ..models import PollRound
    from ..poll import poll_feeds, select_feeds

    context.allow_child_processes()  # a large shard parses its documents in worker processes
    settings, url = _context()
    if not feed_ids:
        return _finish(PollRound.of([]).counts(), f"{NO_FEED_DUE}: nothing polled", url)
    with db.connect(url) as conn:
        feeds = select_feeds(conn, feed_ids=list(feed_ids))
    set_map_label("shard_label", shard_label(feeds))
    labels = {f.id: f.label for f in feeds}
    with metrics.stage("poll"):
        outcomes = poll_feeds(url, settings, feeds)
    for o in outcomes:
        (log.warning if o.error and not o.deferred else log.info)(
            "%s: %s", labels.get(o.feed_id, f"feed {o.feed_id}"), o.summary())
    metrics.polled(outcomes)
    tally = PollRound.of(outcomes)
    return _finish(tally.counts(), tally.summary(), url)


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


def announce(results: Sequence[dict[str, int]] | None, key: str, what: str) -> tuple[dict[str, int], str | None]:
    """The counts to announce (asset event), or why not: ``(total, skip_reason)``. The
    reason is logged here, so a skipped announce task says why in its log."""
    total = summarize(results)
    counts = ", ".join(f"{k} {v}" for k, v in total.items())
    if not total.get(key):
        reason = (f"nothing to announce: no {what} ({counts})" if total
                  else f"nothing to announce: no {what} (no task reported counts)")
        log.info("%s; the asset event is not emitted", reason)
        return total, reason
    log.info("summary: announcing %d %s (%s)", total[key], what, counts)
    return total, None


def announce_entries(results: Sequence[dict[str, int]] | None) -> tuple[dict[str, int], str | None]:
    """What the poll run announces (the asset that starts ingestion): its new entries, and
    also due pending entries no worker holds. Those are entries an operator requeued, a
    correction requeued, or a retry made due again: no new entry would ever announce them,
    so without this they would wait for the next new entry of any feed."""
    from ..storage import entries as entry_store

    total = summarize(results)
    _, url = _context()
    with db.connect(url) as conn:
        total["due_pending"] = entry_store.due_waiting(conn)
    if total.get("new_entries") or total["due_pending"]:
        log.info("summary: announcing %s and %s due (requeued, corrected or retried): ingestion starts",
                 plural(total.get("new_entries", 0), "new entry", "new entries"),
                 plural(total["due_pending"], "pending entry", "pending entries"))
        return total, None
    counts = ", ".join(f"{k} {v}" for k, v in total.items())
    reason = f"nothing to announce: no new entries and no pending entry due ({counts})"
    log.info("%s; the asset event is not emitted", reason)
    return total, reason


# --- newsflow_ingest_articles -------------------------------------------------------------

def requeue(entry_id: int | None = None, url: str | None = None, since: str | None = None,
            until: str | None = None, include_loaded: bool = False) -> dict[str, Any]:
    """Put entries back in the queue for a manual run; nothing to do when no Param is set.

    One entry (by id) or one URL is re-ingest even when already loaded; a date range
    (backfill) takes already-loaded entries only with ``include_loaded``. Recorded in the
    operator audit trail with the user who triggered the run.
    """
    from ..normalize import to_utc
    from ..operations import AIRFLOW
    from ..operations import requeue as requeue_entries

    if not (entry_id or url or since or until):
        return _finish({"requeued": 0}, "no entries to requeue (no Param set)", None)
    lo, hi = to_utc(since) if since else None, to_utc(until) if until else None
    if (since and lo is None) or (until and hi is None):
        raise ValueError(f"not a date: since={since!r} until={until!r}")
    ctx = _airflow_context() or {}
    run = ctx.get("dag_run")
    actor = getattr(run, "triggering_user_name", None) or "airflow"
    _, db_url = _context()
    with db.transaction(db_url) as conn:
        n, _ = requeue_entries(conn, entry_ids=[int(entry_id)] if entry_id else [], url=url or None,
                               since=lo, until=hi, include_loaded=bool(include_loaded or entry_id or url),
                               actor=actor, source=AIRFLOW)
    if n == 0 and (entry_id or url):
        raise ValueError(f"no entry matches entry_id={entry_id!r} url={url!r}")
    return _finish({"requeued": n}, f"{plural(n, 'entry', 'entries')} queued again (entry={entry_id} url={url} "
                                    f"since={lo} until={hi})", db_url)


def plan_workers(workers: int | None) -> list[int]:
    """The worker labels to fan ingestion out to (one mapped task each)."""
    labels = list(range(max(1, int(workers or 1))))
    log.info("summary: %d ingest worker(s) to start", len(labels))
    return labels


def ingest(max_batches: int | None = None, entry_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Claim, fetch, extract (process pool), dedup and load pending entries, batch by batch.

    Safe to run several at once (task mapping, overlapping DAG runs, Celery workers):
    every batch claims its entries with FOR UPDATE SKIP LOCKED.
    """
    from ..ingest import ingest_pending
    from ..storage import entries as entry_store

    context.allow_child_processes()
    settings, url = _context()
    with metrics.stage("ingest"):
        result = ingest_pending(url, settings, max_batches=max_batches,
                                entry_ids=list(entry_ids) if entry_ids else None,
                                progress=lambda b: log.info("batch: %s", b.summary()))
    for error in result.errors[:50]:
        log.warning("%s", error)
    with db.connect(url) as conn:
        queue = entry_store.queue_counts(conn)
    metrics.ingested(result, queue)
    counts = {**result.counts(),
              "first_article_id": min(result.article_ids, default=0),
              "last_article_id": max(result.article_ids, default=0)}
    return _finish(counts, f"{result.summary()}; queue now {queue['pending_due']} due, "
                           f"{queue['pending_waiting']} waiting for a retry, {queue['failed']} failed", url)


# --- newsflow_maintenance -----------------------------------------------------------------

def health_report() -> dict[str, int]:
    """Measure each feed's rhythm, log every failing, stale, deferred and disabled feed with
    why, report each new stale episode once (log and webhook); return counts by state."""
    from ..health import reason
    from ..maintenance import check_health
    from . import callbacks

    settings, url = _context()
    with metrics.stage("feed_health"):
        health = check_health(url, settings)
        for line in health.lines():
            log.warning("%s", line)
        webhook = callbacks.webhook_url()
        notified = 0
        for feed in health.newly_stale:
            if webhook:
                notified += callbacks.notify(webhook, f"newsflow: {feed.label} went stale: {reason(feed)}", {
                    "event": "feed_stale", "feed_id": feed.id, "feed": feed.label, "url": feed.url,
                    "last_arrival_at": feed.last_arrival_at, "rhythm_seconds": feed.rhythm_seconds})
    counts = health.counts()
    metrics.feed_states(counts)
    counts.update(newly_stale=len(health.newly_stale), rhythm_measured=health.rhythm_measured)
    return _finish(counts, health.summary() + (f" ({notified} posted to the webhook)" if webhook else ""), url)


def retention() -> dict[str, int]:
    from ..maintenance import retention as purge

    settings, url = _context()
    with metrics.stage("retention"):
        result = purge(url, settings)
    return _finish(result, f"retention ({settings.retention_days} days): "
                           + ", ".join(f"{k} {v}" for k, v in result.items()), url)


def analyze() -> int:
    from ..maintenance import analyze as run

    _, url = _context()
    with metrics.stage("analyze"):
        tables = run(url)
    _finish({"tables_analyzed": len(tables)}, f"ANALYZE on {len(tables)} tables", url)
    return len(tables)
