"""SQL for worker identity: news.worker_seq and a session advisory lock per worker.

A worker (one ingesting process, or one Airflow task) takes a fresh id from
``news.worker_seq`` and holds the advisory lock (WORKER_LOCK_NS, id) on a connection of
its own for as long as it works. Its leases (news.entries.lease_owner) are live exactly
while that lock is held: when the process dies, however it dies, PostgreSQL drops the
connection and the lock, and the entries are free for the next worker at once. The
connection is idle outside any transaction, so idle-in-transaction timeouts never hit it.
"""

from __future__ import annotations

import psycopg

WORKER_LOCK_NS = 0x6E66  # "nf": the first key of every worker lock

# The ids of live workers, for a CTE (pg_locks and pg_stat_activity's user columns are
# readable by every role). pg_locks is cluster-wide: only this database's locks count (a
# worker 7 of another database on the same server is not ours). Only sessions of a role
# that may write news.entries count: any login can take any advisory key, and a reader
# holding a dead worker's key must not keep that worker's leases alive.
LIVE_OWNERS_SQL = f"""
    SELECT l.objid::bigint AS owner FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = {WORKER_LOCK_NS} AND l.objsubid = 2 AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND has_table_privilege(a.usesysid, 'news.entries', 'UPDATE')"""


def register(conn: psycopg.Connection) -> int:
    """A new worker id, locked by this (autocommit) connection until it closes.

    Tried, never waited for: any login can take any advisory key, and a reader holding
    the key of the next id must not stall a writer; the next id is taken instead."""
    while True:
        row = conn.execute("""
            SELECT w.id, pg_try_advisory_lock(%s, w.id) AS mine
            FROM (SELECT nextval('news.worker_seq')::integer AS id) w""", (WORKER_LOCK_NS,)).fetchone()
        if row["mine"]:
            return row["id"]


def unregister(conn: psycopg.Connection, worker_id: int) -> None:
    """Let go of the worker lock now (its leases are free for the next claim at once)."""
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (WORKER_LOCK_NS, worker_id))
