"""One full pass of the pipeline, in-process: what `newsflow run` does.

The Airflow DAGs call the same stage functions (sync, poll, ingest) one task each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from . import db
from .config import Settings
from .httpclient import SafeClient
from .ingest import ingest_pending
from .models import BatchResult, FeedSpec, PassReport, PollOutcome
from .poll import poll_feeds, select_feeds
from .registry import load_feeds_file
from .storage import articles as article_store
from .storage import feeds as feed_store
from .storage import stories as story_store

log = logging.getLogger(__name__)


def sync_feeds(url: str, specs: Sequence[FeedSpec]) -> dict:
    """The feeds table from the file (what its `enabled` means: ``operations.apply_feeds_file``)."""
    from .operations import apply_feeds_file

    with db.transaction(url) as conn:
        return apply_feeds_file(conn, specs)


def run_once(settings: Settings, feeds_file: str | Path | None = None, *, force: bool = True,
             echo: Callable[[str], None] | None = None) -> PassReport:
    """Sync the feeds file, poll its enabled feeds (all with ``force``, else the due ones;
    without a file: every feed in the table), then ingest every pending entry."""
    echo = echo or (lambda line: None)
    url = db.ready(settings)
    report = PassReport()
    specs = load_feeds_file(feeds_file) if feeds_file else None
    if specs is not None:
        report.feeds_synced = sync_feeds(url, specs)
        echo(f"feeds file: {report.feeds_synced['inserted']} new, {report.feeds_synced['updated']} known")
    with db.connect(url) as conn:
        feeds = select_feeds(conn, force=force)
        if specs is not None:  # the pass is about the feeds of this file, wherever they moved
            declared = set(feed_store.ids_for(conn, specs))
            feeds = [f for f in feeds if f.id in declared]
    echo(f"polling {len(feeds)} feed(s)...")
    with SafeClient(settings) as client:
        def on_poll(o: PollOutcome) -> None:
            echo(f"  {o.summary()}")
        report.polls = poll_feeds(url, settings, feeds, client, progress=on_poll)

        def on_batch(b: BatchResult) -> None:
            echo(f"  batch: {b.summary()}")
        echo("ingesting pending entries...")
        report.ingest = ingest_pending(url, settings, client=client, progress=on_batch)
    with db.connect(url) as conn:
        report.totals = article_store.totals(conn)
        report.stories = story_store.overview(conn)
    return report
