"""Coordination locks: the transaction-scoped locks that serialise writers where a row
lock on the data cannot (there is no row yet). They are row locks on news.locks
(migration 012), which only the owner of schema news may lock: a reader login cannot
take them and stall the writers (advisory keys, used before, any login could take).

Lock order (docs/politeness.md, "Lock order"), so that writers never deadlock: a
transaction takes, in this order and never back up,

1. the **load lock**, then the **changes lock** (writers of articles and stories);
2. rows of news.hosts, sorted by host;
3. rows of news.feeds, by id;
4. rows of news.entries, by id (a claim's ``SKIP LOCKED`` never waits);
5. articles, stories and what hangs off them (only under the load lock).

The changes lock is also taken by the triggers of migration 010 (``news.changes_lock()``)
the moment a transaction writes a change; a writer that takes it explicitly (to stamp
its rows with the clock under it) does so right after the load lock, before anything else.
"""

from __future__ import annotations

import threading
import time

import psycopg
import psycopg.errors

from ..models import Interrupted

# rows of news.locks taken by name here; the "changes" row is locked only by news.changes_lock()
LOAD, FEEDS_SYNC = "load", "feeds_sync"
_WAIT_STEP = 0.05  # seconds between two tries of a lock taken with a stop event


def take(conn: psycopg.Connection, name: str, *, timeout: float | None = None,
         stop: threading.Event | None = None) -> None:
    """Lock the coordination row ``name`` until the transaction ends.

    Without ``timeout``/``stop``: a plain wait (bounded by the session's lock_timeout).
    With them: tried every 50 ms (``SKIP LOCKED``, so the wait holds nothing and can be
    left), ``Interrupted`` when ``stop`` is set, LockNotAvailable (55P03, retried like a
    deadlock: dberrors) after ``timeout`` seconds."""
    if timeout is None and stop is None:
        conn.execute("SELECT name FROM news.locks WHERE name = %s FOR UPDATE", (name,))
        return
    deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
    while True:
        row = conn.execute("SELECT name FROM news.locks WHERE name = %s FOR UPDATE SKIP LOCKED",
                           (name,)).fetchone()
        if row is not None:
            return
        if stop is not None and stop.is_set():
            raise Interrupted(f"stopped while waiting for the {name} lock")
        if time.monotonic() >= deadline:
            raise psycopg.errors.LockNotAvailable(
                f"the {name} lock was held by another session for more than {timeout:g}s")
        if stop is not None:
            stop.wait(_WAIT_STEP)
        else:
            time.sleep(_WAIT_STEP)


def take_load_lock(conn: psycopg.Connection, *, timeout: float | None = None,
                   stop: threading.Event | None = None) -> None:
    """Wait for the load lock; it is released when the transaction ends."""
    take(conn, LOAD, timeout=timeout, stop=stop)


def take_changes_lock(conn: psycopg.Connection) -> None:
    """Wait for the changes lock (after the load lock); released when the transaction ends."""
    conn.execute("SELECT news.changes_lock()")


def take_write_locks(conn: psycopg.Connection, *, timeout: float | None = None,
                     stop: threading.Event | None = None) -> None:
    """Both, in the one order every writer of articles and stories uses."""
    take_load_lock(conn, timeout=timeout, stop=stop)
    take_changes_lock(conn)
