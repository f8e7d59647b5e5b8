"""
### newsflow: maintenance

Daily upkeep of the news database:

1. **feed_health**: measures each feed's rhythm from its own history (the usual gap
   between arrivals of new entries), then logs every feed that is *failing* (errors
   since its last success; polled again after an exponential backoff), *stale* (it
   answers, but has brought no new entry for much longer than its rhythm), *deferred*
   (its host's Retry-After) or *disabled* (with the reason and who disabled it), and
   returns the counts by state. A feed that newly went stale is reported once per
   episode: a `newly stale` log line and, when `NEWSFLOW_FAILURE_WEBHOOK` is set, a
   notice there. It does not fail for unhealthy feeds: open **Newsflow → Feeds**, fix
   the feeds file or re-enable the feed once the publisher is back.
2. **retention**: deletes raw data older than `NEWSFLOW_RETENTION_DAYS` (fetch log,
   failed entries) and near-duplicate index rows outside the dedup window.
   Articles and stories are kept.
3. **analyze**: `ANALYZE` on the news tables, so the planner knows their new sizes.

A failed task fails the run (the tasks run one after the other). Runs never overlap
(`max_active_runs=1`). Safe to re-run at any time.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from newsflow_common import DEFAULT_ARGS, FAILURES_DOC, START_DATE


@dag(
    dag_id="newsflow_maintenance",
    dag_display_name="newsflow: maintenance",
    description="Feed health report, retention of raw data, ANALYZE.",
    doc_md=__doc__ + FAILURES_DOC,
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["newsflow", "maintenance"],
)
def newsflow_maintenance():

    @task(execution_timeout=timedelta(minutes=10))
    def feed_health() -> dict:
        from newsflow.airflow import tasks

        return tasks.health_report()

    @task(execution_timeout=timedelta(minutes=60))
    def retention() -> dict:
        from newsflow.airflow import tasks

        return tasks.retention()

    @task(execution_timeout=timedelta(minutes=30))
    def analyze() -> int:
        from newsflow.airflow import tasks

        return tasks.analyze()

    feed_health() >> retention() >> analyze()


newsflow_maintenance()
