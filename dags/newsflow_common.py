"""Shared definitions of the newsflow DAGs: assets, default task arguments, callback.

Standard library and ``airflow.sdk`` only: this module is imported at DAG parse time,
so it must not touch a database, the network or a heavy library. The pipeline itself
(``newsflow``, in ``plugins/``) is imported inside the tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset

OWNER = "newsflow"
# Bounds concurrent outbound fetching (feed polls, article fetches) across all DAGs and
# workers: one slot per poll shard / ingest worker. `make airflow` creates it.
HTTP_POOL = "newsflow_http"
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)

# Emitted by newsflow_poll_feeds when a poll stored new entries; schedules ingestion.
ENTRIES = Asset(uri="newsflow://news/entries", name="newsflow_entries", group="newsflow")
# Emitted by newsflow_ingest_articles when new articles were loaded; for downstream DAGs.
ARTICLES = Asset(uri="newsflow://news/articles", name="newsflow_articles", group="newsflow")


def env_int(name: str, default: int) -> int:
    """An integer from the environment at parse time (no Variables: they cost a DB call)."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def on_task_failure(context) -> None:
    """Every task's on_failure_callback: log, row in news.task_failures, optional webhook."""
    from newsflow.airflow.callbacks import record_failure

    record_failure(context)


DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # 1, 2, 4 minutes ...
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
}

FAILURES_DOC = """
### When a task fails

* Every failed attempt is logged, recorded in the news database
  (`SELECT * FROM news.task_failures ORDER BY failed_at DESC`) and, when the Variable or
  env var `NEWSFLOW_FAILURE_WEBHOOK` is set, posted to that URL.
* Tasks retry 3 times with exponential backoff (1, 2, 4 minutes) before the run fails.
* `cannot connect to PostgreSQL`: check the connection `newsflow_db`
  (Admin → Connections, or env `AIRFLOW_CONN_NEWSFLOW_DB`).
* A task that waits for a long time in *scheduled* state: the pool `newsflow_http`
  has no free slot (Admin → Pools).
* See docs/airflow.md in the repository for the full runbook.
"""
