"""SQL for news.task_failures: failed Airflow task attempts, kept with the news data."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

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


def for_runs(conn: psycopg.Connection, dag_id: str, run_ids: Sequence[str]) -> dict[str, list[dict]]:
    """run id -> the latest failed attempt of each of its tasks (task, map index, try,
    error, whether Airflow retries it), in task order: what the Pipeline page names."""
    out: dict[str, list[dict]] = {}
    for r in conn.execute("""
            SELECT DISTINCT ON (run_id, task_id, map_index)
                   run_id, task_id, map_index, try_number, exception, final, failed_at
            FROM news.task_failures WHERE dag_id = %s AND run_id = ANY(%s)
            ORDER BY run_id, task_id, map_index, failed_at DESC, id DESC""", (dag_id, list(run_ids))):
        out.setdefault(r["run_id"], []).append(r)
    return out


def count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM news.task_failures").fetchone()["n"]
