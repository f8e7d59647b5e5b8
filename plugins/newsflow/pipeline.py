"""One full pass of the pipeline, in-process: what `newsflow run` does.

The Airflow DAGs call the same stage functions (sync, poll, ingest) one task each.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import db, upgrade
from .config import Settings
from .httpclient import SafeClient
from .operations import apply_feeds_file
from .ingest import ingest_pending
from .models import (BatchResult, FeedSpec, FeedSync, Interrupted, PollOutcome, PollRound, StoryOverview,
                     Totals)
from .poll import poll_feeds, select_feeds
from . import registry
from .storage import articles as article_store
from .storage import feed_files as feed_file_store
from .storage import stories as story_store

log = logging.getLogger(__name__)

PASS_SUMMARY_STORIES = 20  # stories of each kind the pass summary lists (PassReport.summary)


@dataclass
class PassReport:
    """One full pass (`newsflow run`): what was synced, polled, ingested, and the result."""
    feeds_synced: FeedSync = field(default_factory=FeedSync)
    polls: list[PollOutcome] = field(default_factory=list)
    ingest: BatchResult = field(default_factory=BatchResult)
    totals: Totals = field(default_factory=Totals)
    stories: list[StoryOverview] = field(default_factory=list)

    @property
    def new_entries(self) -> int:
        return sum(p.new_entries for p in self.polls)

    @property
    def feeds_failed(self) -> list[PollOutcome]:
        return [p for p in self.polls if p.failed]

    @property
    def feeds_deferred(self) -> list[PollOutcome]:
        return [p for p in self.polls if p.deferred]

    def summary(self) -> str:
        """The pass report (``stories`` holds at most pipeline.PASS_SUMMARY_STORIES of each kind)."""
        lines = [
            "",
            "newsflow pass summary",
            "=====================",
            f"polling            {PollRound.of(self.polls).summary()}",
            f"entries processed  {self.ingest.summary()}",
            f"database totals    {self.totals.summary()}",
        ]
        for p in self.feeds_failed + self.feeds_deferred:
            lines.append(f"  feed {'deferred' if p.deferred else 'error'}: {p.url}: {p.error}")
        syndicated = [s for s in self.stories if s.outlet_count > 1]
        if syndicated:
            lines += ["", "Syndicated stories (one story, several outlets):"]
            for s in syndicated:
                lines += s.summary()
        singles = [s for s in self.stories if s.outlet_count == 1]
        if singles:
            lines += ["", f"Single-outlet stories: {self.totals.single_outlet or len(singles)}"]
            for s in singles:
                lines += s.summary()
        return "\n".join(lines)


def sync_feeds(url: str, specs: Sequence[FeedSpec], *, lock_timeout: float = Settings.lock_timeout,
               stop: threading.Event | None = None) -> FeedSync:
    """Upsert the declared feeds (one transaction; concurrent syncs wait for each other,
    at most ``lock_timeout`` seconds, NEWSFLOW_LOCK_TIMEOUT); what the file's `enabled`
    means: ``operations.apply_feeds_file``."""
    with db.transaction(url, lock_timeout) as conn:
        return apply_feeds_file(conn, specs, lock_timeout=lock_timeout, stop=stop)


def sync_file(url: str, path: str | Path, *, lock_timeout: float = Settings.lock_timeout,
              stop: threading.Event | None = None) -> FeedSync:
    """Sync a feeds file; a file whose bytes did not change since its last sync costs a
    hash and one query. Parsing happens with no transaction open. Lock waits: at most
    ``lock_timeout`` seconds each, ended by ``stop`` (``Interrupted``)."""
    raw, digest = registry.read_file(path)
    key = str(Path(path).resolve())
    with db.transaction(url) as conn:
        cached = feed_file_store.get(conn, key)
    if cached and cached[0] == digest:
        return FeedSync(feed_ids=cached[1], unchanged=True)
    parsed = registry.parse_file(path, raw)
    if stop is not None and stop.is_set():
        raise Interrupted("stopped before syncing the feeds file")
    with db.transaction(url, lock_timeout) as conn:
        result = apply_feeds_file(conn, parsed.specs, lock_timeout=lock_timeout, stop=stop)
        feed_file_store.put(conn, key, digest, result.feed_ids)
    result.warnings = parsed.warnings
    return result


def run_once(settings: Settings, feeds_file: str | Path | None = None, *, force: bool = True,
             echo: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> PassReport:
    """Sync the feeds file, poll its enabled feeds (all with ``force``, else the due ones;
    without a file: every feed in the table), then ingest every pending entry. A set
    ``stop`` ends the pass early (``Interrupted``); what was done stays done."""
    stop = stop or threading.Event()
    echo = echo or (lambda line: None)
    url = upgrade.ready(settings)
    report = PassReport()
    if feeds_file:
        report.feeds_synced = sync_file(url, feeds_file, lock_timeout=settings.lock_timeout, stop=stop)
        echo(f"feeds file {feeds_file}: {report.feeds_synced.summary()}")
        for warning in report.feeds_synced.warnings:
            echo(f"  warning: {warning}")
    with db.connect(url) as conn:
        feeds = select_feeds(conn, force=force)
        if feeds_file:  # the pass is about the feeds of this file, wherever they moved
            declared = set(report.feeds_synced.feed_ids)
            feeds = [f for f in feeds if f.id in declared]
    echo(f"polling {len(feeds)} feed(s)...")
    with SafeClient(settings) as client:
        def on_poll(o: PollOutcome) -> None:
            echo(f"  {o.summary()}")
        report.polls = poll_feeds(url, settings, feeds, client, progress=on_poll, stop=stop)
        if stop.is_set():
            raise Interrupted("stopped after polling")

        def on_batch(b: BatchResult) -> None:
            echo(f"  batch: {b.summary()}")
        echo("ingesting pending entries...")
        report.ingest = ingest_pending(url, settings, client=client, progress=on_batch, stop=stop)
    with db.connect(url) as conn:
        report.totals = article_store.totals(conn)
        report.stories = story_store.overview(conn, limit=PASS_SUMMARY_STORIES)
    return report
