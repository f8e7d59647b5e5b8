"""Advisory locks: the transaction-scoped locks that serialise writers where a row lock
cannot (there is no row yet).

Lock order, so that writers never deadlock: a transaction that writes articles or
stories takes the **load lock** first, then the **changes lock**. The changes lock is
also taken by the triggers of migration 010 (``news.changes_lock()``) the moment a
transaction writes a change; a writer that takes it explicitly (to stamp its rows with
the clock under it) does so right after the load lock, before anything else.
"""

from __future__ import annotations

import psycopg

# Held while a batch writes articles (and while stories are rebuilt): dedup decisions of
# two workers must see each other's results, or two copies of a new story would each
# start their own story. Writes are milliseconds; fetching and extraction happen outside.
LOAD_LOCK_KEY = 0x6E657773  # "news"

# The changes lock is held from a transaction's first change (news.changes) until it
# ends: change numbers become visible in commit order, and rows stamped with
# clock_timestamp() under it are never dated before a change another transaction has
# already made visible. Its key (7234316872524351041) is written once, in
# news.changes_lock() (migration 010), which is the only way anything takes it.


def take_load_lock(conn: psycopg.Connection) -> None:
    """Wait for the load lock; it is released when the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))


def take_changes_lock(conn: psycopg.Connection) -> None:
    """Wait for the changes lock (after the load lock); released when the transaction ends."""
    conn.execute("SELECT news.changes_lock()")


def take_write_locks(conn: psycopg.Connection) -> None:
    """Both, in the one order every writer of articles and stories uses."""
    take_load_lock(conn)
    take_changes_lock(conn)
