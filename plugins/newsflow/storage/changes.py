"""SQL for news.changes: the change feed consumers follow (migration 010).

The rows are written by triggers on news.articles and news.stories, in the transaction
of the change, under the changes lock (``storage.locks``), so ``seq`` grows in commit
order. A transaction that changes anything sends one ``NOTIFY news_changes`` whose
payload is the last ``seq`` it wrote, delivered after its commit. Consumers read the view
``news_api.changes``; this module reads the same view, so it works for a reader login.
"""

from __future__ import annotations

import psycopg

def latest_seq(conn: psycopg.Connection) -> int:
    """The highest seq visible now (0 when the log is empty)."""
    return conn.execute("SELECT coalesce(max(seq), 0) AS seq FROM news_api.changes").fetchone()["seq"]


def count_between(conn: psycopg.Connection, since_seq: int, until_seq: int) -> int:
    """Change rows with since_seq < seq <= until_seq (an index range of news.changes)."""
    return conn.execute("SELECT count(*) AS n FROM news_api.changes WHERE seq > %s AND seq <= %s",
                        (since_seq, until_seq)).fetchone()["n"]


def purge(conn: psycopg.Connection, older_than_days: int) -> int:
    """Drop change rows older than the retention (a consumer whose cursor is below the
    oldest row left must resync in full)."""
    return conn.execute("DELETE FROM news.changes WHERE changed_at < now() - make_interval(days => %s)",
                        (older_than_days,)).rowcount
