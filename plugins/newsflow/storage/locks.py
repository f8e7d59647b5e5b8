"""Advisory locks: the transaction-scoped locks that serialise writers where a row lock
cannot (there is no row yet)."""

from __future__ import annotations

import psycopg

# Held while a batch writes articles (and while stories are rebuilt): dedup decisions of
# two workers must see each other's results, or two copies of a new story would each
# start their own story. Writes are milliseconds; fetching and extraction happen outside.
LOAD_LOCK_KEY = 0x6E657773  # "news"


def take_load_lock(conn: psycopg.Connection) -> None:
    """Wait for the load lock; it is released when the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_KEY,))
