"""SQL for news.run_counts: the counts each Airflow task returned, by DAG run (the console's
Pipeline page shows them next to the run states Airflow's REST API gives)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import psycopg
from psycopg.types.json import Jsonb


def record(conn: psycopg.Connection, *, dag_id: str, run_id: str, task_id: str, map_index: int,
           counts: Mapping[str, Any]) -> None:
    conn.execute("""
        INSERT INTO news.run_counts (dag_id, run_id, task_id, map_index, counts)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (dag_id, run_id, task_id, map_index)
        DO UPDATE SET counts = EXCLUDED.counts, recorded_at = now()""",
        (dag_id, run_id, task_id, map_index, Jsonb(dict(counts))))


def for_runs(conn: psycopg.Connection, dag_id: str, run_ids: Sequence[str]) -> dict[str, list[dict]]:
    """run id -> the counts of its tasks (task_id, map_index, counts)."""
    out: dict[str, list[dict]] = {}
    for r in conn.execute("""
            SELECT run_id, task_id, map_index, counts FROM news.run_counts
            WHERE dag_id = %s AND run_id = ANY(%s) ORDER BY run_id, task_id, map_index""",
            (dag_id, list(run_ids))):
        out.setdefault(r["run_id"], []).append(r)
    return out
