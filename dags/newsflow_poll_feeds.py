"""
### newsflow: poll feeds

Every few minutes (env `NEWSFLOW_POLL_SCHEDULE`, a cron expression, default every
5 minutes) this DAG:

1. **sync_feeds**: updates the feeds table from the feeds file (Variable
   `newsflow_feeds_file`, else env `NEWSFLOW_FEEDS_FILE`; without one, the table is used
   as is). Feeds removed from the file are reported, never deleted.
2. **plan_poll**: selects the feeds that are *due*: each feed has its own interval
   (adapted to the publisher's ttl/max-age and to how often it changes) and, after
   errors, an exponential backoff; feeds disabled after repeated failures are skipped.
   They are split into a few **shards** (hosts spread across shards).
3. **poll_shard** (mapped, one task per shard, pool `newsflow_http`): conditional GETs,
   parse, store new entries. A broken feed never fails the task: its error is recorded
   on the feed (see `newsflow feeds status` or the maintenance DAG's health report).
4. **announce_new_entries**: emits the asset `newsflow://news/entries` **only when new
   entries were stored** (skipped otherwise), which starts `newsflow_ingest_articles`.

#### Manual runs (Trigger DAG w/ config)

* `feed_id`: poll this one feed now, due or not.
* `force`: poll every enabled feed, due or not.
* `shards`: how many parallel poll tasks (default env `NEWSFLOW_POLL_SHARDS`, 4).

Runs never overlap (`max_active_runs=1`): two polls of one feed at once would race
on its conditional-GET state.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from newsflow_common import DEFAULT_ARGS, ENTRIES, FAILURES_DOC, HTTP_POOL, START_DATE, env_int


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
        "feed_id": Param(None, type=["null", "integer"], title="Feed id",
                         description="Poll this one feed now (id from `newsflow feeds status`), due or not."),
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
        from newsflow.airflow import tasks

        return tasks.plan_poll(feed_id=params.get("feed_id"), force=bool(params.get("force")),
                               shards=int(params.get("shards") or 4))

    @task(pool=HTTP_POOL, execution_timeout=timedelta(minutes=20),
          map_index_template="{{ shard_label }}")
    def poll_shard(feed_ids: list[int]) -> dict:
        from newsflow.airflow import tasks

        ids = sorted(feed_ids)
        get_current_context()["shard_label"] = (
            "feeds " + ", ".join(f"#{i}" for i in ids) if len(ids) <= 4
            else f"{len(ids)} feeds, #{ids[0]}..#{ids[-1]}")
        return tasks.poll_shard(feed_ids)

    # all_done: entries stored by the shards that worked are announced even when another
    # shard failed (that failure is recorded by the callback and shows in the grid).
    @task(outlets=[ENTRIES], trigger_rule="all_done", retries=0)
    def announce_new_entries(results, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException
        from newsflow.airflow import tasks

        total = tasks.summarize([r for r in results if r] if results is not None else [])
        if not total.get("new_entries"):
            # A skipped task emits no asset event: ingestion is not started for nothing.
            raise AirflowSkipException(f"no new entries ({total or 'no feed was due'})")
        outlet_events[ENTRIES].extra = {"new_entries": total["new_entries"], "feeds": total.get("feeds", 0)}
        return total

    plan = plan_poll()
    sync_feeds() >> plan
    announce_new_entries(poll_shard.expand(feed_ids=plan))


newsflow_poll_feeds()
