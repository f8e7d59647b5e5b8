"""
### newsflow: poll feeds

Every few minutes (env `NEWSFLOW_POLL_SCHEDULE`, a cron expression, default every
5 minutes) this DAG:

1. **sync_feeds**: updates the feeds table from the feeds file (Variable
   `newsflow_feeds_file`, else env `NEWSFLOW_FEEDS_FILE`; without one, the table is used
   as is). Feeds removed from the file are reported, never deleted. `enabled: false` in
   the file disables a feed; `enabled: true` enables again only a feed the file itself
   disabled: a feed newsflow disabled after errors stays disabled until an operator
   re-enables it (Newsflow → Feeds).
2. **plan_poll**: selects the feeds that are *due*: each feed has its own interval
   (adapted to the publisher's ttl/max-age and to how often it changes) and, after
   errors, an exponential backoff; disabled feeds are skipped. They are split into a
   few **shards** (hosts spread across shards).
3. **poll_shard** (mapped, one task per shard, named by its feeds, pool
   `newsflow_http`): conditional GETs, parse, store new entries. A broken feed never
   fails the task: its error is recorded on the feed and shown in **Newsflow → Feeds**;
   a feed disabled after repeated failures is named in the log
   ("feed 7 (Example News - World) disabled after 10 consecutive failures: HTTP 404;
   re-enable in Feeds").
   With no feed due, the run has one shard labelled **0 feeds due** that polls nothing
   (its log says when the next feed is due).
4. **announce_new_entries**: emits the asset `newsflow://news/entries`, which starts
   `newsflow_ingest_articles`, **when new entries were stored or pending entries are
   due** (requeued in Newsflow → Feeds or by `newsflow requeue`, re-fetched after a
   correction, or due for a retry): due work is always picked up within one poll
   interval, with no manual trigger. Otherwise it is skipped and its log says why.
5. **fail_run_if_a_task_failed**: skipped when all went well; fails the run when any
   task above failed.

#### Manual runs (Trigger DAG w/ config)

A plain **Trigger** (no config) does what a scheduled run does: it polls the feeds that
are **due now**, which may be none (the run then shows a shard named *0 feeds due*). To
poll regardless of schedules:

* `feed`: poll this one feed now, due or not: its id, name or URL as the Feeds page
  shows them (or use **Poll now** on the feed's page in Newsflow → Feeds).
* `force`: poll every enabled feed, due or not.
* `shards`: how many parallel poll tasks (default env `NEWSFLOW_POLL_SHARDS`, 4).

Runs never overlap (`max_active_runs=1`): two polls of one feed at once would race
on its conditional-GET state.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, task

from newsflow_common import (DEFAULT_ARGS, ENTRIES, FAILURES_DOC, HTTP_POOL, START_DATE, env_int,
                             run_watcher)


@dag(
    dag_id="newsflow_poll_feeds",
    dag_display_name="newsflow: poll feeds",
    description="Poll due news feeds in shards; announce new entries (asset newsflow://news/entries).",
    doc_md=__doc__ + FAILURES_DOC,
    schedule=os.environ.get("NEWSFLOW_POLL_SCHEDULE", "*/5 * * * *"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args=DEFAULT_ARGS,
    tags=["newsflow", "ingestion", "feeds"],
    params={
        "feed": Param(None, type=["null", "string"], minLength=1, maxLength=2000,
                      title="Feed to poll now (id, name or URL)",
                      description="Poll this one feed now, due or not: its id (7), its name "
                                  "(Example News - World) or its URL, as Newsflow → Feeds shows them. "
                                  "A disabled feed is refused: re-enable it in Feeds first."),
        "force": Param(False, type="boolean", title="Poll every enabled feed",
                       description="Ignore each feed's schedule and backoff."),
        "shards": Param(env_int("NEWSFLOW_POLL_SHARDS", 4), type="integer", minimum=1, maximum=32,
                        title="Shards", description="Parallel poll tasks (each polls several feeds)."),
    },
)
def newsflow_poll_feeds():

    @task(execution_timeout=timedelta(minutes=5))
    def sync_feeds() -> dict:
        from newsflow.airflow import tasks

        return tasks.sync_feeds()

    @task(execution_timeout=timedelta(minutes=5))
    def plan_poll(params=None) -> list[list[int]]:
        from airflow.sdk.exceptions import AirflowFailException
        from newsflow.airflow import tasks
        from newsflow.operations import OperationError

        try:
            return tasks.plan_poll(feed=params.get("feed"), force=bool(params.get("force")),
                                   shards=int(params.get("shards") or 4))
        except OperationError as exc:  # a wrong or disabled feed: retrying will not help
            raise AirflowFailException(str(exc)) from exc

    # The label comes with the shard (plan_poll names its feeds), so the grid shows it from
    # the first try on, also for a shard that fails or waits for a retry.
    @task(pool=HTTP_POOL, execution_timeout=timedelta(minutes=20),
          map_index_template="{{ task.op_kwargs['label'] }}")
    def poll_shard(feed_ids: list[int], label: str = "") -> dict:
        from newsflow.airflow import tasks

        return tasks.poll_shard(feed_ids)

    # all_done: entries stored by the shards that worked are announced even when another
    # shard failed (that shard is red, and the watcher below fails the run).
    @task(outlets=[ENTRIES], trigger_rule="all_done", retries=0)
    def announce_new_entries(results, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException
        from newsflow.airflow import tasks

        total, skip = tasks.announce_entries(results)
        if skip:
            # A skipped task emits no asset event: ingestion is not started for nothing.
            raise AirflowSkipException(skip)
        outlet_events[ENTRIES].extra = {"new_entries": total.get("new_entries", 0), "feeds": total.get("feeds", 0),
                                        "due_pending": total["due_pending"]}
        return total

    synced = sync_feeds()
    plan = plan_poll()
    synced >> plan
    shards = poll_shard.expand_kwargs(plan)
    announced = announce_new_entries(shards)
    [synced, plan, shards, announced] >> run_watcher()


newsflow_poll_feeds()
