-- 002: what Airflow needs from the news database.
-- Forward-only: never edit a migration that has shipped; add a new numbered file.

-- One row per failed task attempt, written by the DAGs' on_failure_callback
-- (newsflow.airflow_support.record_failure). Operators read it next to the Airflow UI:
-- it outlives Airflow's own log retention and can be queried with the news data.
CREATE TABLE IF NOT EXISTS news.task_failures (
    id            bigserial   PRIMARY KEY,
    dag_id        text        NOT NULL,
    task_id       text        NOT NULL,
    run_id        text,
    map_index     integer     NOT NULL DEFAULT -1,
    try_number    integer,
    logical_date  timestamptz,
    exception     text,                              -- type and message, truncated
    log_url       text,
    notified      boolean     NOT NULL DEFAULT false, -- a webhook accepted the notice
    failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS task_failures_time_idx ON news.task_failures (failed_at DESC);
CREATE INDEX IF NOT EXISTS task_failures_task_idx ON news.task_failures (dag_id, task_id, failed_at DESC);
