"""What operators do to feeds and entries, in one place for the console (Airflow UI), the
command line and the DAGs: poll now, re-enable, disable with a reason, requeue an entry or
the failed entries of a feed, apply the feeds file. Every action is recorded in
``news.operator_actions`` (who, when, what), in the caller's transaction, and returned as
an :class:`OperatorAction` whose ``summary()`` is the message people see.

Functions take an open connection and never commit (like ``storage``); a refused action
raises :class:`OperationError` with a message that says what to do instead.
"""

from __future__ import annotations

import getpass
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

import psycopg

from .health import plural
from .models import FeedSpec, FeedSync, OperatorAction, feed_label
from .registry import feed_url_key
from .storage import audit
from .storage import entries as entry_store
from .storage import feeds as feed_store

CONSOLE, CLI, FILE, AIRFLOW = "console", "cli", "feeds file", "airflow"


class OperationError(ValueError):
    """An action that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Started:
    """What an action set going: the words the audit row (and the flash) ends with, and the
    Airflow run it triggered, if any (the console follows that run's state)."""
    text: str
    dag_id: str | None = None
    dag_run_id: str | None = None


# Called with the feed (a dict with id and label) once the action is done in the database.
Trigger = Callable[[dict], Started]

# Without a trigger, due work is still picked up by itself: the scheduled poll polls a due
# feed, and it announces due pending entries (the asset newsflow://news/entries), which
# starts ingestion.
POLL_LATER = Started("due now: the next scheduled poll takes it")
INGEST_LATER = Started("loaded by the next ingest run (under Airflow: the next scheduled poll announces them)")


def cli_actor() -> str:
    """Who runs a command-line action: the OS user."""
    try:
        return getpass.getuser()
    except Exception:  # no user name (containers without a passwd entry)
        return "unknown"


def resolve(conn: psycopg.Connection, ref: str | int) -> dict:
    """The one feed a reference names (id, ``feed 7 (...)``, URL, name); refused when none
    or several match."""
    matches = feed_store.find(conn, str(ref))
    if not matches:
        raise OperationError(f"no feed matches {str(ref)!r} (give its id, URL or name)")
    exact = [m for m in matches if str(m["id"]) == str(ref).strip()]
    if len(matches) > 1 and not exact:
        names = "; ".join(feed_label(m["id"], m["publisher"], m["name"]) for m in matches)
        raise OperationError(f"{str(ref)!r} names several feeds: {names}; give the id")
    feed = (exact or matches)[0]
    feed["label"] = feed_label(feed["id"], feed["publisher"], feed["name"])
    return feed


def enabled_feed(conn: psycopg.Connection, ref: str | int, *, hint: str = "re-enable it first") -> dict:
    """The feed a reference names, refused when it is disabled (``hint``: what to do)."""
    feed = resolve(conn, ref)
    if not feed["enabled"]:
        raise OperationError(f"{feed['label']} is disabled "
                             f"({feed['disabled_reason'] or 'no reason recorded'}); {hint}")
    return feed


def _record(conn, *, actor: str, source: str, action: str, feed: dict | None = None,
            entry_id: int | None = None, detail: str = "", started: Started | None = None) -> OperatorAction:
    return audit.record(conn, OperatorAction(
        actor=actor, source=source, action=action, feed_id=feed["id"] if feed else None,
        entry_id=entry_id, detail=detail, feed=feed["label"] if feed else None,
        dag_id=started.dag_id if started else None, dag_run_id=started.dag_run_id if started else None))


def enable(conn: psycopg.Connection, ref: str | int, *, actor: str, source: str) -> OperatorAction:
    """Re-enable a feed: clears its errors and disabled reason; it is due at once."""
    feed = resolve(conn, ref)
    before = feed_store.enable(conn, feed["id"])
    if before["enabled"]:
        detail = "was enabled; errors cleared"
    else:
        detail = f"was disabled: {before['disabled_reason'] or 'no reason recorded'}"
        if before["disabled_by"] == "file":
            detail += ("; the feeds file still says `enabled: false`: its next sync disables the "
                       "feed again unless the file changes")
    return _record(conn, actor=actor, source=source, action="enable", feed=feed,
                   detail=f"{detail}; {POLL_LATER.text}")


def disable(conn: psycopg.Connection, ref: str | int, reason: str, *, actor: str,
            source: str) -> OperatorAction:
    """Disable a feed with a reason; it stays disabled until an operator re-enables it."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise OperationError("say why the feed is disabled (the reason is shown on the Feeds page)")
    feed = resolve(conn, ref)
    feed_store.disable(conn, feed["id"], f"disabled by {actor}: {reason}")
    return _record(conn, actor=actor, source=source, action="disable", feed=feed, detail=reason)


def poll_now(conn: psycopg.Connection, ref: str | int, *, actor: str, source: str,
             trigger: Trigger | None = None) -> OperatorAction:
    """Make an enabled feed due now. ``trigger`` (the console: a run of the poll DAG for
    this feed through Airflow's REST API) is called with the feed and returns what it did,
    which the audit row keeps. A disabled feed is refused: re-enable it first."""
    feed = enabled_feed(conn, ref)
    feed_store.make_due(conn, feed["id"])
    started = trigger(feed) if trigger else POLL_LATER
    return _record(conn, actor=actor, source=source, action="poll now", feed=feed, detail=started.text,
                   started=started)


def requeue_entry(conn: psycopg.Connection, entry_id: int, *, actor: str, source: str,
                  trigger: Trigger | None = None) -> OperatorAction:
    """Put one entry back in the queue (a failed one, or a loaded one to re-ingest it).
    ``trigger`` (the console: a run of the ingest DAG) starts loading it at once; without
    one the next scheduled poll announces it."""
    entry = entry_store.get(conn, int(entry_id))
    if entry is None:
        raise OperationError(f"no entry {entry_id}")
    if entry["status"] == "pending":
        raise OperationError(f"entry {entry_id} is already pending (attempt {entry['attempts']})")
    entry_store.requeue(conn, entry_ids=[entry["id"]], include_loaded=True)
    feed = resolve(conn, entry["feed_id"])
    detail = f"{entry['status']}" + (f": {entry['last_error']}" if entry["last_error"] else "")
    started = trigger(feed) if trigger else INGEST_LATER
    return _record(conn, actor=actor, source=source, action="requeue entry", feed=feed, entry_id=entry["id"],
                   detail=f"{entry['title'] or entry['link'] or ''} (was {detail}); {started.text}",
                   started=started)


def requeue_failed(conn: psycopg.Connection, ref: str | int, *, actor: str, source: str,
                   trigger: Trigger | None = None) -> OperatorAction:
    """Put every failed entry of a feed back in the queue (``trigger``: as requeue_entry)."""
    feed = resolve(conn, ref)
    n = entry_store.requeue_failed(conn, feed["id"])
    if n == 0:
        raise OperationError(f"{feed['label']} has no failed entries")
    started = trigger(feed) if trigger else INGEST_LATER
    return _record(conn, actor=actor, source=source, action="requeue failed entries", feed=feed,
                   detail=f"{plural(n, 'entry', 'entries')} queued again; {started.text}", started=started)


def requeue(conn: psycopg.Connection, *, entry_ids: Sequence[int] = (), url: str | None = None,
            since: datetime | None = None, until: datetime | None = None, include_loaded: bool = False,
            allow_deleted: bool = False, actor: str, source: str) -> tuple[int, OperatorAction | None]:
    """Entries by id, link or date range back in the queue (`newsflow requeue`, the ingest
    DAG's Params). Returns how many, and the action recorded (None when nothing matched)."""
    n = entry_store.requeue(conn, entry_ids=entry_ids, url=url, since=since, until=until,
                            include_loaded=include_loaded, allow_deleted=allow_deleted)
    if n == 0:
        return 0, None
    what = ", ".join(filter(None, [
        f"entries {', '.join(map(str, entry_ids))}" if entry_ids else "",
        f"url {url}" if url else "", f"since {since:%Y-%m-%d %H:%M}" if since else "",
        f"until {until:%Y-%m-%d %H:%M}" if until else "", "loaded ones too" if include_loaded else "",
        "deleted articles allowed back" if allow_deleted else ""]))
    return n, _record(conn, actor=actor, source=source, action="requeue",
                      entry_id=entry_ids[0] if len(entry_ids) == 1 else None,
                      detail=f"{plural(n, 'entry', 'entries')} queued again ({what})")


def apply_feeds_file(conn: psycopg.Connection, specs: Sequence[FeedSpec], *, lock_timeout: float,
                     stop: threading.Event | None = None) -> FeedSync:
    """Bring the feeds table in line with the file and record the feeds the file enabled or
    disabled (``storage.feeds.update_declared``: what `enabled` means). Concurrent syncs
    wait for each other, at most ``lock_timeout`` seconds (then the sync lock is named
    busy, 55P03), and a set ``stop`` ends the wait. Specs are matched to known feeds by
    the URL each was declared with, else its current URL, both in canonical spelling
    (``registry.feed_url_key``)."""
    feed_store.lock_for_sync(conn, lock_timeout, stop)
    by_declared: dict[str, int] = {}
    by_url: dict[str, int] = {}
    for row in feed_store.declared(conn):
        by_declared.setdefault(feed_url_key(row["declared"]), row["id"])
        by_url.setdefault(feed_url_key(row["url"]), row["id"])
    known = [by_declared.get(s.url) or by_url.get(s.url) for s in specs]
    enabled, disabled = feed_store.update_declared(conn, [(f, s) for f, s in zip(known, specs, strict=True) if f])
    added = feed_store.insert_declared(conn, [s for f, s in zip(known, specs, strict=True) if not f])
    ids = [f or added.get(s.url) for f, s in zip(known, specs, strict=True)]
    names = feed_store.labels(conn, enabled + disabled) if enabled or disabled else {}
    for action, changed in (("enable", enabled), ("disable", disabled)):
        for feed_id in changed:
            _record(conn, actor="feeds file", source=FILE, action=action,
                    feed={"id": feed_id, "label": names[feed_id]},
                    detail="`enabled: true` in the feeds file" if action == "enable"
                    else "`enabled: false` in the feeds file")
    return FeedSync(inserted=len(added), updated=sum(1 for f in known if f), feed_ids=[i for i in ids if i],
                    enabled_ids=enabled, disabled_ids=disabled, labels=names)
