"""SQL for news.task_failures: failed Airflow task attempts, kept with the news data."""

from __future__ import annotations

from typing import Any, Mapping

import psycopg


def record(conn: psycopg.Connection, failure: Mapping[str, Any], *, notified: bool,
           final: bool = True) -> None:
    """One failed attempt; ``final``: the task will not be retried."""
    conn.execute("""
        INSERT INTO news.task_failures (dag_id, task_id, run_id, map_index, try_number,
            logical_date, exception, log_url, notified, final)
        VALUES (%(dag_id)s, %(task_id)s, %(run_id)s, %(map_index)s, %(try_number)s,
                %(logical_date)s, %(exception)s, %(log_url)s, %(notified)s, %(final)s)""",
                 {**failure, "notified": notified, "final": final})


def count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM news.task_failures").fetchone()["n"]
