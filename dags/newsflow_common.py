"""Shared definitions of the newsflow DAGs: assets, default task arguments, callback.

Standard library and ``airflow.sdk`` only: this module is imported at DAG parse time,
so it must not touch a database, the network or a heavy library. The pipeline itself
(``newsflow``, in ``plugins/``) is imported inside the tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, task

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

    record_failure(context, final=True)


def on_task_retry(context) -> None:
    """Every task's on_retry_callback: each failed attempt that Airflow retries is logged and
    recorded too (news.task_failures, final = false), with its try number."""
    from newsflow.airflow.callbacks import record_failure

    record_failure(context, final=False)


DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # 1, 2, 4 minutes ...
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
    "on_retry_callback": on_task_retry,
}

WATCHER_TASK_ID = "fail_run_if_a_task_failed"


def run_watcher():
    """The last task of a DAG: it runs only when a task it follows failed
    (trigger_rule one_failed) and then fails, so the run is *failed*, never green with a red
    task inside. Skipped (the usual case) means nothing failed. Every task whose failure
    must fail the run has to be upstream of it: one_failed looks at direct upstreams only.
    Its own failure is not recorded again (the failed task already was)."""
    @task(task_id=WATCHER_TASK_ID, trigger_rule="one_failed", retries=0,
          execution_timeout=timedelta(minutes=2), on_failure_callback=None, on_retry_callback=None)
    def fail_run_if_a_task_failed() -> None:
        from airflow.sdk.exceptions import AirflowFailException
        from newsflow.airflow import tasks

        failed = tasks.failed_tasks()
        raise AirflowFailException(f"{', '.join(failed) or 'a task of this run'} failed: the run is "
                                   "marked failed; read that task's log")

    return fail_run_if_a_task_failed()

FAILURES_DOC = """
### When a task fails

* A run is **failed** whenever one of its tasks failed: the last task,
  `fail_run_if_a_task_failed`, runs only then and fails the run (it is *skipped* in a
  good run). A green run means nothing failed.
* Every failed attempt is logged and recorded in the news database with its try number
  (`SELECT * FROM news.task_failures ORDER BY failed_at DESC`; `final` marks the last
  attempt). When the Variable or env var `NEWSFLOW_FAILURE_WEBHOOK` is set, the final
  failure is posted to that URL.
* Tasks retry 3 times with exponential backoff (1, 2, 4 minutes) before they fail.
* `cannot connect to PostgreSQL`: check the connection `newsflow_db`. It is defined
  either under **Admin → Connections** (what `make airflow` creates) or by an environment
  variable `AIRFLOW_CONN_NEWSFLOW_DB` on every Airflow component; a connection defined
  by an environment variable works but is **not listed** under Admin → Connections.
* A task that waits for a long time in *scheduled* state: the pool `newsflow_http`
  has no free slot (Admin → Pools).
* Feeds that fail, went stale or were disabled: **Newsflow → Feeds** in the left
  navigation bar (re-enable, poll now, requeue there).
* See docs/airflow.md in the repository for the full runbook.
"""
