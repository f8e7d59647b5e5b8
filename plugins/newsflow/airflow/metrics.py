"""newsflow's metrics, sent through Airflow's own metrics setup (StatsD, Datadog StatsD or
OpenTelemetry: whichever ``[metrics]`` configures; nothing at all when none is): the task
runner initialises ``airflow.sdk.observability.stats`` and these functions only call it.

Names (with Airflow's ``[metrics] statsd_prefix``, ``airflow.`` by default, in front); the
list is in docs/airflow.md:

    newsflow.feeds.polled / .failed / .not_modified / .deferred     counters, per poll shard
    newsflow.entries.new                                             counter
    newsflow.articles.loaded / .from_feed_text                       counters, per ingest worker
    newsflow.duplicates.exact / .near                                counters
    newsflow.entries.retry / .failed                                 counters (page attempts)
    newsflow.fetch_errors.feed.<kind> / .page.<kind>                 counters by ErrorKind (tag kind)
    newsflow.entries.pending / .failed_total                         gauges, after each ingest worker
    newsflow.feeds.state.<state>                                     gauges, by the maintenance run
    newsflow.stage.<stage>                                           timers: sync_feeds, plan_poll,
                                                                     poll, ingest, feed_health, ...
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, Mapping, Sequence

from ..models import BatchResult, PollOutcome, PollRound
from . import context

log = logging.getLogger(__name__)


def _stats():
    # plain Python (the CLI, tests): no metrics, and no Airflow import, which would turn
    # every later settings lookup of this process into an Airflow one (context._in_airflow)
    if not context._in_airflow():
        return None
    try:
        from airflow.sdk.observability import stats
    except ImportError:
        return None
    return stats


def incr(name: str, count: int = 1, tags: Mapping[str, str] | None = None) -> None:
    if count and (stats := _stats()) is not None:
        try:
            stats.incr(name, count=count, tags=dict(tags or {}))
        except Exception as exc:  # metrics never fail a task
            log.debug("metric %s not sent: %s", name, exc)


def gauge(name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
    if (stats := _stats()) is not None:
        try:
            stats.gauge(name, value, tags=dict(tags or {}))
        except Exception as exc:
            log.debug("metric %s not sent: %s", name, exc)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one stage (a task's work) as ``newsflow.stage.<name>``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if (stats := _stats()) is not None:
            try:
                stats.timing(f"newsflow.stage.{name}", timedelta(seconds=time.perf_counter() - started))
            except Exception as exc:
                log.debug("timer %s not sent: %s", name, exc)


def polled(outcomes: Sequence[PollOutcome]) -> None:
    tally = PollRound.of(outcomes)
    incr("newsflow.feeds.polled", tally.feeds - tally.deferred)  # requested of their servers
    incr("newsflow.feeds.failed", tally.failed)
    incr("newsflow.feeds.not_modified", tally.not_modified)
    incr("newsflow.feeds.deferred", tally.deferred)
    incr("newsflow.entries.new", tally.new_entries)
    kinds: dict[str, int] = {}
    for o in outcomes:
        if o.failed:
            key = o.error_kind.value if o.error_kind else "parse"
            kinds[key] = kinds.get(key, 0) + 1
    for kind, n in kinds.items():
        incr(f"newsflow.fetch_errors.feed.{kind}", n, {"kind": kind, "stage": "feed"})


def ingested(result: BatchResult, queue: Mapping[str, int] | None = None) -> None:
    incr("newsflow.articles.loaded", result.loaded)
    incr("newsflow.articles.from_feed_text", result.fallbacks)
    incr("newsflow.duplicates.exact", result.exact_duplicates)
    incr("newsflow.duplicates.near", result.near_duplicates)
    incr("newsflow.entries.retry", result.retry)
    incr("newsflow.entries.failed", result.failed)
    for kind, n in result.error_kinds.items():
        incr(f"newsflow.fetch_errors.page.{kind}", n, {"kind": kind, "stage": "page"})
    if queue is not None:
        gauge("newsflow.entries.pending", queue["pending_due"] + queue["pending_waiting"])
        gauge("newsflow.entries.failed_total", queue["failed"])


def feed_states(counts: Mapping[str, int]) -> None:
    from ..models import FEED_STATES

    for state in FEED_STATES:
        gauge(f"newsflow.feeds.state.{state}", counts.get(state, 0), {"state": state})
