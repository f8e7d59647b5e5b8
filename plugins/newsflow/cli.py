"""The `newsflow` command: the pipeline in-process, without Airflow.

    newsflow db upgrade                 apply migrations (idempotent)
    newsflow run --feeds FEEDS.yaml     sync feeds, poll all, ingest all pending, summary
    newsflow demo                       serve the sample world on loopback and run a pass
    newsflow feeds status|sync|enable|disable   (enable/disable: recorded, like the console's)
    newsflow poll / newsflow ingest     one stage at a time
    newsflow requeue                    re-ingest an entry, a URL or a date range
    newsflow purge                      delete articles (tombstones; they do not come back)
    newsflow search "QUERY"             ranked full-text search (read-only)
    newsflow export --since-seq N       the change feed with each entity, to jsonl/csv/parquet (read-only)
    newsflow dedup rebuild [--since D]  re-cluster stories
    newsflow events rebuild [--since D] re-cluster stories into events (resumable)
    newsflow maintenance                health report, retention, ANALYZE
    newsflow config                     every setting, its env var and value

Longer than the stage modules on purpose: one short function per subcommand, argument
parsing and output only (the work is in the stages and ``operations``), kept in one file
so the commands and their options read together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import warnings
from datetime import datetime
from pathlib import Path
from typing import Sequence

import psycopg

from . import db, dberrors, health, readers, upgrade
from .config import Settings, describe
from .health import plural
from .models import Interrupted
from .redaction import redact
from .registry import FeedsFileError


# Exit codes (docs/politeness.md, "Failure handling"): 0 the command did its work (failed
# feeds and pages are recorded, not fatal); 1 a requested thing was not found; 2 a
# configuration or database error, with one line saying what to check; 130 / 143 stopped by
# SIGINT / SIGTERM after in-flight work was finished or given back.
EXIT_OK, EXIT_NOT_FOUND, EXIT_ERROR = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via pgserver
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pgserver", "httpx", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_ERROR
    args.stop = threading.Event()
    received = _stop_on_signals(args.stop)
    settings = None
    try:
        settings = Settings.from_env()
        code = args.func(args, settings) or EXIT_OK
    except Interrupted:
        code = EXIT_OK  # replaced below by the signal's code
    except (FeedsFileError, db.DatabaseError, ValueError) as exc:
        print(f"newsflow: error: {redact(str(exc), keep_user=True)}", file=sys.stderr)
        code = EXIT_ERROR
    except (psycopg.Error, dberrors.RetriesExhausted) as exc:
        # one line naming what happened (deadlock, timeout, read-only, refused, ...)
        where = (settings.database_url if settings and settings.database_url
                 else f"the embedded PostgreSQL in {settings.data_dir if settings else '.newsflow'}")
        print(f"newsflow: {dberrors.explain(exc, where)}", file=sys.stderr)
        code = EXIT_ERROR
    if received:
        signum = received[0]
        print(f"newsflow: stopped by {signal.Signals(signum).name}: claimed work was finished or given "
              "back; pending work stays queued for the next run", file=sys.stderr)
        code = 128 + signum
    return _exit(code)


def _stop_on_signals(stop: threading.Event) -> list[int]:
    """SIGINT/SIGTERM: stop claiming work and wind down (a second one forces the exit).
    Returns the list the received signal numbers are appended to."""
    received: list[int] = []

    def handler(signum, _frame) -> None:
        if received:
            os._exit(128 + signum)  # asked twice: leave now (leases lapse with the connection)
        received.append(signum)
        stop.set()
        print(f"newsflow: {signal.Signals(signum).name} received: finishing or giving back "
              "in-flight work (again to force)", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handler)
    return received


def _exit(code: int) -> int:
    """Return ``code``, unless fetch threads abandoned by a stop are still waiting on a
    server (bounded by their timeouts, up to a minute): then leave now. Everything that
    matters is committed or given back by this point."""
    lingering = [t for t in threading.enumerate() if t is not threading.current_thread()
                 and not t.daemon and t.is_alive()]
    if lingering and code >= 128:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _url(settings: Settings) -> str:
    """For commands that write: the database, migrated to this code."""
    return upgrade.ready(settings)


def _read_url(settings: Settings) -> str:
    """For commands that only read: never migrates (works for a read-only login)."""
    return db.readable(settings)


# --- commands ---------------------------------------------------------------------------

def cmd_db(args, settings: Settings) -> int:
    if args.action == "upgrade":
        url = db.resolve_url(settings)
        applied = db.upgrade(url)
        print(f"database {db.redact(url)}: " +
              (f"applied {', '.join(applied)}" if applied else "up to date") +
              f" (schema version {db.current_version(url)})")
        note = readers.reader_role_note(url)
        if note:
            _echo(f"note: {note}")
    elif args.action == "grant-reader":
        if not args.role:
            raise ValueError("db grant-reader needs the login role to grant read access to")
        url = _url(settings)
        print(readers.grant_reader(url, args.role))
    elif args.action == "url":
        print(db.resolve_url(settings))
    elif args.action == "stop":
        stopped = db.stop_embedded(settings.data_dir)
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def cmd_run(args, settings: Settings) -> int:
    from .pipeline import run_once

    report = run_once(settings, args.feeds, force=not args.due_only, echo=_echo, stop=args.stop)
    print(report.summary())
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from .pipeline import run_once
    from .sampleworld import SAMPLE_DIR, SampleServer

    # The sample world is served on loopback; politeness toward our own test server is
    # lifted explicitly (and said so), never by default.
    settings = settings.replace(allow_private_networks=True, per_host_delay=0.0,
                                per_host_concurrency=max(settings.per_host_concurrency, 4))
    _echo("demo: serving the sample news world on loopback "
          "(private networks allowed, per-host delay 0 for this server only)")
    try:
        server = SampleServer(port=settings.demo_port)
    except OSError as exc:
        raise ValueError(f"cannot serve the sample world on 127.0.0.1:{settings.demo_port} ({exc}); "
                         "set NEWSFLOW_DEMO_PORT to a free port") from None
    with server:
        feeds_file = server.render_feeds_file(SAMPLE_DIR / "feeds.yaml",
                                              Path(settings.data_dir) / "demo-feeds.yaml")
        _echo(f"demo: sample world at {server.base}; feeds file {feeds_file}")
        report = run_once(settings, feeds_file, force=True, echo=_echo, stop=args.stop)
    from .events import overview_text

    print(report.summary())
    print("\n" + overview_text(upgrade.ready(settings)))  # the level above stories: events, citations
    print("\nRun `make demo` again: nothing is duplicated (feeds answer 304, entries are known).")
    return 0


def cmd_feeds(args, settings: Settings) -> int:
    from . import operations as ops
    from .models import StaleRule
    from .storage import feeds as feed_store

    url = _read_url(settings) if args.action == "status" else _url(settings)
    if args.action == "sync":
        from .pipeline import sync_file  # the pipeline's imports, for this action only

        result = sync_file(url, args.file, lock_timeout=settings.lock_timeout, stop=args.stop)
        for warning in result.warnings:
            _echo(f"warning: {warning}")
        print(f"feeds file {args.file}: {result.summary()}")
        return 0
    if args.action in ("enable", "disable"):
        try:
            with db.transaction(url, settings.lock_timeout) as conn:
                if args.action == "enable":
                    action = ops.enable(conn, args.feed, actor=ops.cli_actor(), source=ops.CLI)
                else:
                    action = ops.disable(conn, args.feed, args.reason or "", actor=ops.cli_actor(),
                                         source=ops.CLI)
        except ops.OperationError as exc:
            print(f"newsflow: {exc}", file=sys.stderr)
            return 1
        print(action.summary())
        return 0
    try:
        with db.connect(url) as conn:
            rows, counts = feed_store.health(conn, StaleRule.from_settings(settings), sort="id")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise db.DatabaseError("`feeds status` reads newsflow's internal tables (schema news), which this login "
                               "may not read: use a read-only operator login (pg_read_all_data, or SELECT on "
                               "schema news); consumers read news_api.feed_status") from exc
    if not rows:
        print("no feeds; add some with `newsflow feeds sync FEEDS.yaml`")
        return 0
    print(f"{'id':>4} {'state':8} {'status':>6} {'errs':>4} {'entries':>7} {'pending':>7} "
          f"{'next poll (UTC)':19}  feed / url / why")
    for r in rows:
        next_poll = r.next_poll_at.strftime("%Y-%m-%d %H:%M:%S") if r.enabled else "-"
        print(f"{r.id:>4} {r.state:8} {r.last_status or '-':>6} {r.consecutive_errors:>4} "
              f"{r.entries:>7} {r.pending:>7} {next_poll:19}  {r.name or r.publisher}  {r.url}")
        why = health.reason(r)
        if why:
            print(f"{'':>62}  ! {why}")
    print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0


def cmd_poll(args, settings: Settings) -> int:
    from . import operations as ops
    from .models import PollRound
    from .poll import poll_feeds, select_feeds

    url = _url(settings)
    ids = None
    if args.feed:
        try:
            with db.transaction(url, settings.lock_timeout) as conn:  # recorded like the console's "poll now"
                ids = [ops.poll_now(conn, ref, actor=ops.cli_actor(), source=ops.CLI,
                                    trigger=lambda f: ops.Started("polled by this command")).feed_id
                       for ref in args.feed]
        except ops.OperationError as exc:
            print(f"newsflow: {exc}", file=sys.stderr)
            return 1
    with db.connect(url) as conn:
        feeds = select_feeds(conn, feed_ids=ids, force=args.all)
    labels = {f.id: f.label for f in feeds}
    outcomes = poll_feeds(url, settings, feeds, stop=args.stop)
    for o in outcomes:
        print(f"{labels.get(o.feed_id, o.feed_id)}: {o.summary()}")
    print(PollRound.of(outcomes).summary())
    return 0


def cmd_ingest(args, settings: Settings) -> int:
    from .ingest import ingest_pending

    url = _url(settings)
    result = ingest_pending(url, settings, max_batches=args.max_batches,
                            progress=lambda b: _echo(f"batch: {b.summary()}"), stop=args.stop)
    print(result.summary())
    return 0


def cmd_requeue(args, settings: Settings) -> int:
    from . import operations as ops

    url = _url(settings)
    try:
        with db.transaction(url, settings.lock_timeout) as conn:
            if args.feed:
                print(ops.requeue_failed(conn, args.feed, actor=ops.cli_actor(), source=ops.CLI).summary())
                return 0
            n, _ = ops.requeue(conn, entry_ids=args.entry or [], url=args.url, since=args.since,
                               until=args.until, include_loaded=args.include_loaded,
                               allow_deleted=args.allow_deleted, actor=ops.cli_actor(), source=ops.CLI)
    except ops.OperationError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return 1
    print(f"{plural(n, 'entry', 'entries')} queued again" + (" (deleted articles may be loaded again)" if args.allow_deleted else ""))
    return 0


def cmd_purge(args, settings: Settings) -> int:
    from .corrections import purge

    if not (args.article or args.url):
        raise ValueError("purge needs --article ID or --url URL")
    url = _url(settings)
    deleted = purge(url, article_ids=args.article or [], article_url=args.url, reason=args.reason,
                    lock_timeout=settings.lock_timeout, stop=args.stop)
    if not deleted:
        print("no article matches")
        return EXIT_NOT_FOUND
    print(f"{len(deleted)} article(s) deleted ({', '.join(map(str, deleted))}): tombstones written; "
          "later feed items will not load them again (requeue --allow-deleted does)")
    return 0


def cmd_search(args, settings: Settings) -> int:
    from .storage import consumer

    url = _read_url(settings)
    with db.connect(url) as conn:
        hits = consumer.search(conn, args.query, since=args.since, until=args.until, language=args.language,
                               publisher=args.publisher, limit=args.limit or settings.search_limit,
                               candidates=settings.search_candidates)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(json.dumps([hit.as_json() for hit in hits], ensure_ascii=False, indent=2))
    for hit in hits:
        if fmt == "jsonl":
            print(json.dumps(hit.as_json(), ensure_ascii=False))
        elif fmt == "text":
            print(hit.summary())
    _echo(f"{len(hits)} result(s)")
    return 0 if hits else EXIT_NOT_FOUND


def cmd_export(args, settings: Settings) -> int:
    from .export import export

    url = _read_url(settings)
    result = export(url, settings, since_seq=args.since_seq, until_seq=args.until_seq, fmt=args.format,
                    output=args.output,
                    progress=lambda done, total: _echo(f"  exported {done:,} of {total:,} change rows"))
    _echo(result.summary())
    return 0


def cmd_dedup(args, settings: Settings) -> int:
    from .recluster import rebuild

    url = _url(settings)
    result = rebuild(url, settings, since=args.since,
                     progress=lambda i, n: _echo(f"  re-clustered {i}/{n} articles"), stop=args.stop)
    print(f"{result['articles']} articles re-clustered into {result['stories']} stories "
          f"({result['old_stories_removed']} old stories removed; {result['events_placed']} placed in events)")
    return 0


def cmd_events(args, settings: Settings) -> int:
    from .events import rebuild

    url = _url(settings)
    result = rebuild(url, settings, since=args.since,
                     progress=lambda i, n: _echo(f"  placed {i}/{n} stories"), stop=args.stop)
    print(f"{result['stories']} stories placed into {result['events']} events "
          f"({result['moved']} changed event, {result['merged']} events merged)")
    return 0


def cmd_maintenance(args, settings: Settings) -> int:
    from .maintenance import analyze, check_health, retention

    url = _url(settings)
    report = check_health(url, settings)
    for line in report.lines():
        print(line)
    print(report.summary())
    print("retention:", retention(url, settings, stop=args.stop))
    print("analyzed:", len(analyze(url)), "tables")
    return 0


def cmd_config(args, settings: Settings) -> int:
    if args.markdown:
        from .config import documentation

        print("| setting | default | meaning |\n|---|---|---|")
        for env, _, default, meaning in documentation():
            print(f"| `{env}` | `{default!r}` | {meaning} |")
        return 0
    for env, kind, default in describe():
        value = getattr(settings, env.removeprefix("NEWSFLOW_").lower())
        shown = redact(value, keep_user=True) if isinstance(value, str) else value  # URL or key=value DSN
        marker = "" if value == default else "   (set)"
        print(f"{env:36} {kind:6} {shown!r}{marker}")
    return 0


def _date(value: str) -> datetime:
    from .normalize import to_utc

    parsed = to_utc(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not a date: {value!r}")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="newsflow", description="News ingestion into PostgreSQL.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(metavar="COMMAND")

    s = sub.add_parser("db", help="database: upgrade (migrations), url, stop (embedded server), "
                                  "grant-reader ROLE (read access to news_api)")
    s.add_argument("action", choices=["upgrade", "url", "stop", "grant-reader"])
    s.add_argument("role", nargs="?", help="grant-reader: the login role to make a reader")
    s.set_defaults(func=cmd_db)

    s = sub.add_parser("run", help="one full pass: sync the feeds file, poll its feeds, ingest, summary")
    s.add_argument("--feeds", required=True, help="FEEDS.yaml")
    s.add_argument("--due-only", action="store_true", help="poll only those of its feeds that are due")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="run a pass over the bundled sample news world")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("feeds", help="feeds: status (default), sync FILE, enable FEED, disable FEED --reason R")
    s.add_argument("action", nargs="?", default="status", choices=["status", "sync", "enable", "disable"])
    s.add_argument("target", nargs="?", help="FEEDS.yaml for sync; feed id, URL or name for enable/disable")
    s.add_argument("--reason", help="disable: why (shown on the Feeds page and in the audit trail)")
    s.set_defaults(func=lambda a, st: cmd_feeds(_feeds_args(a, s), st))

    s = sub.add_parser("poll", help="poll due feeds (or --feed FEED ..., or --all)")
    s.add_argument("--feed", action="append", help="feed id, URL or name: poll it now (repeatable)")
    s.add_argument("--all", action="store_true", help="every enabled feed, due or not")
    s.set_defaults(func=cmd_poll)

    s = sub.add_parser("ingest", help="fetch, extract, dedup and load pending entries")
    s.add_argument("--max-batches", type=int)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("requeue", help="queue entries again: --entry ID, --url URL, --since/--until, "
                                       "--feed FEED (its failed entries)")
    s.add_argument("--entry", type=int, action="append")
    s.add_argument("--feed", help="feed id, URL or name: every failed entry of that feed")
    s.add_argument("--url")
    s.add_argument("--since", type=_date)
    s.add_argument("--until", type=_date)
    s.add_argument("--include-loaded", action="store_true",
                   help="also entries already loaded (their page is fetched again; a changed text is a correction)")
    s.add_argument("--allow-deleted", action="store_true",
                   help="an article deleted before (newsflow purge) may be loaded again from these entries")
    s.set_defaults(func=cmd_requeue)

    s = sub.add_parser("purge", help="delete articles: --article ID | --url URL, --reason TEXT (tombstones)")
    s.add_argument("--article", type=int, action="append", help="article id (repeatable)")
    s.add_argument("--url", help="canonical URL or feed link of the article")
    s.add_argument("--reason", required=True, help="why (consumers see it in news_api.tombstones)")
    s.set_defaults(func=cmd_purge)

    s = sub.add_parser("search", help='ranked full-text search: "words", "a phrase", OR, -not (read-only)')
    s.add_argument("query")
    s.add_argument("--since", type=_date, help="only articles at or after this date")
    s.add_argument("--until", type=_date, help="only articles before this date")
    s.add_argument("--language", help="parse the query in this language and return only its articles (en, de, ...)")
    s.add_argument("--publisher", help="only this publisher's articles")
    s.add_argument("--limit", type=int, help="results (default NEWSFLOW_SEARCH_LIMIT)")
    s.add_argument("--format", choices=["text", "json", "jsonl"], default="text",
                   help="text (default), json (one array) or jsonl (one object a line): the columns of "
                        "news_api.search_hit, times in ISO 8601 UTC")
    s.add_argument("--json", action="store_true", help="same as --format json")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("export", help="the change feed with each entity, streamed (read-only)")
    s.add_argument("--since-seq", type=int, default=0, help="export changes after this seq (default 0: all)")
    s.add_argument("--until-seq", type=int, help="up to this seq (default: the last change at the start)")
    s.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl")
    s.add_argument("--output", default="-", help="file, or - for standard output (default)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("dedup", help="dedup rebuild [--since DATE]: re-cluster stories")
    s.add_argument("action", choices=["rebuild"])
    s.add_argument("--since", type=_date)
    s.set_defaults(func=cmd_dedup)

    s = sub.add_parser("events", help="events rebuild [--since DATE]: re-cluster stories into events")
    s.add_argument("action", choices=["rebuild"])
    s.add_argument("--since", type=_date)
    s.set_defaults(func=cmd_events)

    s = sub.add_parser("maintenance", help="feed health report, retention, ANALYZE")
    s.set_defaults(func=cmd_maintenance)

    s = sub.add_parser("config", help="list settings (NEWSFLOW_* env vars) and values")
    s.add_argument("--markdown", action="store_true", help="the documented defaults as a Markdown table")
    s.set_defaults(func=cmd_config)
    return p


def _feeds_args(args, parser):
    if args.action == "sync":
        if not args.target:
            parser.error("feeds sync needs a FEEDS.yaml path")
        args.file = args.target
    elif args.action in ("enable", "disable"):
        if not args.target:
            parser.error(f"feeds {args.action} needs a feed id, URL or name")
        if args.action == "disable" and not args.reason:
            parser.error("feeds disable needs --reason (shown on the Feeds page and in the audit trail)")
        args.feed = args.target
    return args


if __name__ == "__main__":
    sys.exit(main())
