"""
### newsflow: ingest articles

Starts whenever `newsflow_poll_feeds` announces new entries (asset
`newsflow://news/entries`; no timer). It:

1. **requeue_requested**: only for manual runs with Params (below): puts entries back
   in the queue. Does nothing on asset-triggered runs.
2. **plan_workers**: how many ingest workers to start (Param `workers`).
3. **ingest_worker** (mapped, `workers` tasks, pool `newsflow_http`): claims due
   pending entries in batches (`SELECT ... FOR UPDATE SKIP LOCKED`), fetches their
   pages politely (robots.txt, per-host limits), extracts the text in a process pool,
   deduplicates (exact, then near-duplicate into stories) and loads, one transaction
   per batch. Workers, overlapping runs and Celery workers never take the same entry;
   a worker that dies releases its batch, which the next run processes again.
4. **announce_new_articles**: emits the asset `newsflow://news/articles` when new
   articles were loaded (skipped otherwise, and its log says why): downstream DAGs can
   schedule on it.
5. **fail_run_if_a_task_failed**: skipped when all went well; fails the run when any
   task above failed.

Failed pages are retried with backoff by later runs (entry `attempts`,
`next_attempt_at`); after `NEWSFLOW_MAX_ATTEMPTS` the entry is `failed` (or loaded from
the feed's own text when it has some).

#### Manual runs (Trigger DAG w/ config)

* `entry_id` or `url`: re-ingest that entry (even when already loaded).
* `since` / `until` (dates, YYYY-MM-DD): backfill, requeue the entries of that range
  (already-loaded ones only with `include_loaded`). The trigger form refuses anything
  that is not a date.
* Failed entries of one feed, or one entry: **Requeue** in Newsflow → Feeds.
* `workers`: parallel ingest tasks (default env `NEWSFLOW_INGEST_WORKERS`, 2).
* `max_batches`: stop each worker after this many batches.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from newsflow_common import (ARTICLES, DEFAULT_ARGS, ENTRIES, FAILURES_DOC, HTTP_POOL, START_DATE, env_int,
                             run_watcher)


@dag(
    dag_id="newsflow_ingest_articles",
    dag_display_name="newsflow: ingest articles",
    description="Fetch, extract, deduplicate and load pending entries; announce new articles.",
    doc_md=__doc__ + FAILURES_DOC,
    schedule=[ENTRIES],
    start_date=START_DATE,
    catchup=False,
    # Overlap is safe (SKIP LOCKED), but more than two runs only compete for the pool.
    max_active_runs=2,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["newsflow", "ingestion", "articles"],
    params={
        "entry_id": Param(None, type=["null", "integer"], minimum=1, title="Re-ingest entry id",
                          description="An entry id as Newsflow → Feeds shows it on the feed's page."),
        "url": Param(None, type=["null", "string"], format="uri", title="Re-ingest entry URL",
                     description="The entry link as it appeared in the feed."),
        "since": Param(None, type=["null", "string"], format="date", title="Backfill from (date, inclusive)",
                       description="YYYY-MM-DD: requeue the entries published (or first seen) on or after it."),
        "until": Param(None, type=["null", "string"], format="date", title="Backfill until (date, exclusive)",
                       description="YYYY-MM-DD: requeue the entries published (or first seen) before it."),
        "include_loaded": Param(False, type="boolean", title="Backfill also loaded entries"),
        "workers": Param(env_int("NEWSFLOW_INGEST_WORKERS", 2), type="integer", minimum=1, maximum=16,
                         title="Parallel ingest tasks"),
        "max_batches": Param(None, type=["null", "integer"], minimum=1, title="Batches per worker (limit)"),
    },
)
def newsflow_ingest_articles():

    @task(execution_timeout=timedelta(minutes=5))
    def requeue_requested(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from newsflow.airflow import tasks

        try:
            return tasks.requeue(entry_id=params.get("entry_id"), url=params.get("url"),
                                 since=params.get("since"), until=params.get("until"),
                                 include_loaded=bool(params.get("include_loaded")))
        except ValueError as exc:  # a wrong Param: retrying will not help
            raise AirflowFailException(str(exc)) from exc

    @task(execution_timeout=timedelta(minutes=1))
    def plan_workers(params=None) -> list[int]:
        from newsflow.airflow import tasks

        return tasks.plan_workers(params.get("workers"))

    @task(pool=HTTP_POOL, execution_timeout=timedelta(minutes=60),
          map_index_template="worker {{ worker_label }}")
    def ingest_worker(worker: int, params=None) -> dict:
        from newsflow.airflow import tasks

        tasks.set_map_label("worker_label", str(worker))
        return tasks.ingest(max_batches=params.get("max_batches"))

    @task(outlets=[ARTICLES], trigger_rule="all_done", retries=0)
    def announce_new_articles(results, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException
        from newsflow.airflow import tasks

        total, skip = tasks.announce(results, "loaded", "new articles")
        if skip:
            raise AirflowSkipException(skip)
        outlet_events[ARTICLES].extra = {"articles": total["loaded"],
                                         "first_article_id": total.get("first_article_id"),
                                         "last_article_id": total.get("last_article_id")}
        return total

    requeued = requeue_requested()
    workers = plan_workers()
    requeued >> workers
    ingested = ingest_worker.expand(worker=workers)
    announced = announce_new_articles(ingested)
    [requeued, workers, ingested, announced] >> run_watcher()


newsflow_ingest_articles()
