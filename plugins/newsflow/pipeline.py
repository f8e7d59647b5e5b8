"""One full pass of the pipeline, in-process: what `newsflow run` does.

The Airflow DAGs call the same stage functions (sync, poll, ingest) one task each.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import db
from .config import Settings
from .httpclient import SafeClient
from .ingest import BatchResult, ingest_pending
from .models import FeedSpec, PollOutcome
from .poll import poll_feeds, select_feeds
from .registry import load_feeds_file
from .storage import articles as article_store
from .storage import feeds as feed_store

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    feeds_synced: dict[str, int] = field(default_factory=dict)
    polls: list[PollOutcome] = field(default_factory=list)
    ingest: BatchResult = field(default_factory=BatchResult)
    totals: dict[str, int] = field(default_factory=dict)
    stories: list[dict] = field(default_factory=list)

    @property
    def new_entries(self) -> int:
        return sum(p.new_entries for p in self.polls)

    @property
    def feeds_failed(self) -> list[PollOutcome]:
        return [p for p in self.polls if p.error and not p.deferred]

    @property
    def feeds_deferred(self) -> list[PollOutcome]:
        return [p for p in self.polls if p.deferred]


def sync_feeds(url: str, specs: Sequence[FeedSpec]) -> dict[str, int]:
    with db.transaction(url) as conn:
        return feed_store.sync(conn, specs)


def run_once(settings: Settings, feeds_file: str | Path | None = None, *, force: bool = True,
             echo: Callable[[str], None] | None = None) -> PassReport:
    """Sync the feeds file, poll its enabled feeds (all with ``force``, else the due ones;
    without a file: every feed in the table), then ingest every pending entry."""
    echo = echo or (lambda line: None)
    url = db.resolve_url(settings)
    db.upgrade(url)
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
            state = (f"error: {o.error}" if o.error else "not modified" if o.not_modified
                     else f"{o.new_entries} new of {o.seen_entries}")
            echo(f"  [{o.status or '---'}] {o.url}  {state}")
        report.polls = poll_feeds(url, settings, feeds, client, progress=on_poll)

        def on_batch(b: BatchResult) -> None:
            echo(f"  batch: {b.claimed} entries -> {b.loaded} new articles, "
                 f"{b.exact_duplicates} exact duplicates, {b.fallbacks} from feed text, "
                 f"{b.retry} to retry, {b.failed} failed")
        echo("ingesting pending entries...")
        report.ingest = ingest_pending(url, settings, client=client, progress=on_batch)
    with db.connect(url) as conn:
        report.totals = article_store.counts(conn)
        report.stories = article_store.story_overview(conn)
    return report


def format_report(report: PassReport, max_stories: int = 20) -> str:
    t = report.totals
    lines = [
        "",
        "newsflow pass summary",
        "=====================",
        f"feeds polled       {len(report.polls)} ({len(report.feeds_failed)} failed, "
        f"{sum(p.not_modified for p in report.polls)} not modified, "
        f"{len(report.feeds_deferred)} deferred by their host's Retry-After)",
        f"new entries        {report.new_entries}",
        f"entries processed  {report.ingest.claimed} -> {report.ingest.loaded} new articles, "
        f"{report.ingest.exact_duplicates} exact duplicates, {report.ingest.near_duplicates} joined a story, "
        f"{report.ingest.fallbacks} from feed text, {report.ingest.retry} to retry, "
        f"{report.ingest.failed} failed",
        f"database totals    {t.get('feeds', 0)} feeds, {t.get('entries', 0)} entries "
        f"({t.get('pending', 0)} pending, {t.get('failed', 0)} failed), {t.get('articles', 0)} articles, "
        f"{t.get('stories', 0)} stories ({t.get('syndicated', 0)} carried by several outlets)",
    ]
    for p in report.feeds_failed + report.feeds_deferred:
        lines.append(f"  feed {'deferred' if p.deferred else 'error'}: {p.url}: {p.error}")
    syndicated = [s for s in report.stories if s["outlet_count"] > 1]
    if syndicated:
        lines += ["", "Syndicated stories (one story, several outlets):"]
        for s in syndicated[:max_stories]:
            origin = f"origin {s['origin_publisher']} ({s['origin_basis']})" if s["origin_publisher"] else ""
            lines.append(f"  #{s['id']} {s['title'] or '(untitled)'}")
            lines.append(f"      {s['outlet_count']} outlets, {s['article_count']} distinct texts, {origin}")
            lines.append(f"      carried by: {', '.join(s['members'])}")
    singles = [s for s in report.stories if s["outlet_count"] == 1]
    if singles:
        lines += ["", f"Single-outlet stories: {len(singles)}"]
        for s in singles[:max_stories]:
            lines.append(f"  #{s['id']} {s['title'] or '(untitled)'} — {s['members'][0]}")
    return "\n".join(lines)


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
