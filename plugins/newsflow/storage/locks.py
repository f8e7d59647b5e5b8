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

Every wait here is bounded and can be left (docs/politeness.md, "Lock waits"): the row is
tried every 50 ms with ``SKIP LOCKED`` (the wait holds nothing), up to ``timeout`` seconds
(NEWSFLOW_LOCK_TIMEOUT), then :class:`LockBusy` (55P03) naming the lock; a set ``stop``
(SIGINT/SIGTERM) ends it with ``Interrupted``.
"""

from __future__ import annotations

import threading
import time

import psycopg
import psycopg.errors

from ..models import Interrupted

# rows of news.locks taken by name (the "changes" row also by news.changes_lock(), migration 012)
LOAD, CHANGES, FEEDS_SYNC = "load", "changes", "feeds_sync"
_WAIT_STEP = 0.05  # seconds between two tries of a coordination lock

# who takes each lock, for the one line an operator reads when it stayed busy
_HOLDERS = {
    LOAD: "held by ingest writes, `newsflow purge`, `newsflow dedup rebuild`, `newsflow events rebuild` and retention",
    CHANGES: "held by every transaction that changes articles, stories or entries",
    FEEDS_SYNC: "held while a feeds file is synced (`newsflow run`, `newsflow feeds sync`, the poll DAG)",
}


class LockBusy(psycopg.errors.LockNotAvailable):
    """A coordination lock still held by another session after ``timeout`` seconds
    (SQLSTATE 55P03, like a server-side lock_timeout: dberrors treats it alike)."""

    def __init__(self, name: str, timeout: float):
        super().__init__(f"the {name} lock (news.locks '{name}', {_HOLDERS.get(name, 'a newsflow lock')}) "
                         f"was held by another session for more than {timeout:g}s")


def take(conn: psycopg.Connection, name: str, *, timeout: float,
         stop: threading.Event | None = None) -> None:
    """Lock the coordination row ``name`` until the transaction ends.

    Tried every 50 ms (``SKIP LOCKED``, so the wait holds nothing and can be left):
    ``Interrupted`` when ``stop`` is set, :class:`LockBusy` (55P03, retried like a
    deadlock where a batch can be put back: dberrors) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute("SELECT name FROM news.locks WHERE name = %s FOR UPDATE SKIP LOCKED",
                           (name,)).fetchone()
        if row is not None:
            return
        if stop is not None and stop.is_set():
            raise Interrupted(f"stopped while waiting for the {name} lock")
        if time.monotonic() >= deadline:
            raise LockBusy(name, timeout)
        if stop is not None:
            stop.wait(_WAIT_STEP)
        else:
            time.sleep(_WAIT_STEP)


def take_write_locks(conn: psycopg.Connection, *, timeout: float,
                     stop: threading.Event | None = None) -> None:
    """The load lock, then the changes lock (the one order every writer of articles and
    stories uses), each wait bounded by ``timeout`` and ended by ``stop``. Taking the
    changes row here is the lock ``news.changes_lock()`` takes; the triggers then find it held."""
    take(conn, LOAD, timeout=timeout, stop=stop)
    take(conn, CHANGES, timeout=timeout, stop=stop)
