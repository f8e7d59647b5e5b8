"""What the Airflow DAGs need from their surroundings: the database, settings, failures.

Imported only inside running tasks and callbacks (never at DAG parse time), so it may
import Airflow's task SDK; nothing here contains pipeline logic.

* Database: the Airflow connection ``newsflow_db`` (e.g. ``AIRFLOW_CONN_NEWSFLOW_DB``),
  else ``NEWSFLOW_DATABASE_URL``, else the embedded server (``newsflow.db.resolve_url``).
* Settings: ``Settings.from_env()`` and then Airflow Variables named like the env vars
  (a Variable ``NEWSFLOW_FETCH_TIMEOUT`` overrides the env var of the same name).
* Feeds file: Variable ``newsflow_feeds_file``, else env ``NEWSFLOW_FEEDS_FILE``.
* Failures: :func:`record_failure` is every task's ``on_failure_callback``: it logs,
  writes a row to ``news.task_failures`` and, when the Variable or env var
  ``NEWSFLOW_FAILURE_WEBHOOK`` names a URL, POSTs a small JSON notice there.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from .config import ENV_PREFIX, Settings, describe

log = logging.getLogger(__name__)

CONN_ID = "newsflow_db"
FEEDS_FILE_VARIABLE = "newsflow_feeds_file"
FEEDS_FILE_ENV = "NEWSFLOW_FEEDS_FILE"
WEBHOOK_NAME = "NEWSFLOW_FAILURE_WEBHOOK"  # Variable or env var; unset = no notification
_SETTING_NAMES = {env for env, _, _ in describe()}


# --- Airflow lookups (each one tolerant of running outside a task) -----------------------

def _in_airflow() -> bool:
    """True inside an Airflow task or callback (the task SDK is loaded there).

    Plain Python callers (tests, `newsflow` command) never import Airflow through here:
    importing it would initialise its configuration under ~/airflow.
    """
    return "airflow.sdk" in sys.modules


def _variable(key: str) -> str | None:
    if not _in_airflow():
        return os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    try:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
    except Exception as exc:  # no task context (plain Python), or the API is unreachable
        log.debug("Airflow Variable %s unavailable: %s", key, exc)
        return os.environ.get(f"AIRFLOW_VAR_{key.upper()}")
    return None if value is None else str(value)


def variable_overrides() -> dict[str, str]:
    """Airflow Variables named like a ``NEWSFLOW_*`` setting, by setting name."""
    names = {k.removeprefix("AIRFLOW_VAR_") for k in os.environ
             if k.startswith("AIRFLOW_VAR_" + ENV_PREFIX)}
    try:  # Variables stored in the metadata database (one call, by prefix)
        if not _in_airflow():
            raise LookupError("not in an Airflow task")
        from airflow.sdk import Variable

        names.update(str(k).upper() for k in Variable.keys(prefix=ENV_PREFIX))
        names.update(str(k).upper() for k in Variable.keys(prefix=ENV_PREFIX.lower()))
    except Exception as exc:
        log.debug("cannot list Airflow Variables: %s", exc)
    overrides = {}
    for name in sorted(names & _SETTING_NAMES):
        value = _variable(name)
        if value is None:
            value = _variable(name.lower())
        if value not in (None, ""):
            overrides[name] = value
    return overrides


def connection_url(conn_id: str = CONN_ID) -> str | None:
    """A libpq URL built from the Airflow connection, or None when it is not defined."""
    try:
        if not _in_airflow():
            raise LookupError("not in an Airflow task")
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no task context
        log.debug("Airflow connection %s unavailable: %s", conn_id, exc)
        raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if not raw:
            return None
        return _url_from_env_connection(raw)
    if conn is None:
        return None
    return _url_from_parts(host=conn.host, port=conn.port, login=conn.login,
                           password=conn.password, schema=conn.schema, extra=conn.extra_dejson)


def _url_from_env_connection(raw: str) -> str:
    if raw.lstrip().startswith("{"):
        data = json.loads(raw)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return _url_from_parts(host=data.get("host"), port=data.get("port"), login=data.get("login"),
                               password=data.get("password"), schema=data.get("schema"), extra=extra)
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(raw)
    extra = dict(parse_qsl(parts.query))
    host = unquote(parts.hostname or "") or extra.pop("host", None)
    return _url_from_parts(host=host, port=parts.port, login=unquote(parts.username or "") or None,
                           password=unquote(parts.password or "") or None,
                           schema=unquote(parts.path.lstrip("/")) or None, extra=extra)


def _url_from_parts(*, host, port, login, password, schema, extra: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    # libpq keywords only; Airflow-specific extras (cursor, iam, ...) are dropped.
    libpq = {k: v for k, v in (extra or {}).items()
             if k in {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout",
                      "application_name", "options", "target_session_attrs", "host"}}
    params = {"host": host or libpq.pop("host", None), "port": port, "user": login,
              "password": password, "dbname": schema, **libpq}
    return make_conninfo("", **{k: str(v) for k, v in params.items() if v not in (None, "")})


def settings() -> Settings:
    """The pipeline settings for this task: env, then Variables, then the connection."""
    overrides: dict[str, Any] = {k.removeprefix(ENV_PREFIX).lower(): v
                                 for k, v in variable_overrides().items()}
    base = Settings.from_env(overrides)
    url = connection_url()
    if url:
        base = base.replace(database_url=url)
    return base


def database_url(current: Settings | None = None) -> str:
    """The news database, migrated (idempotent; an advisory lock serialises workers)."""
    from . import db

    url = db.resolve_url(current or settings())
    db.upgrade(url)
    return url


def feeds_file() -> str | None:
    return _variable(FEEDS_FILE_VARIABLE) or os.environ.get(FEEDS_FILE_ENV) or None


def allow_child_processes() -> None:
    """Let this task start the extraction process pool under a Celery worker.

    Celery's prefork pool marks its processes daemonic and Airflow forks the task from
    one, so multiprocessing (pebble) would refuse with "daemonic processes are not allowed
    to have children". The pool is closed (its workers joined) before the task ends.
    """
    import multiprocessing

    current = multiprocessing.current_process()
    if current._config.get("daemon"):
        current._config["daemon"] = False


# --- failures --------------------------------------------------------------------------------

def _ti_attr(ti, name: str, default=None):
    return getattr(ti, name, default) if ti is not None else default


def failure_record(context: dict) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    dag_run = context.get("dag_run")
    logical = context.get("logical_date") or _ti_attr(dag_run, "logical_date")
    return {
        "dag_id": _ti_attr(ti, "dag_id") or _ti_attr(context.get("dag"), "dag_id") or "?",
        "task_id": _ti_attr(ti, "task_id") or "?",
        "run_id": _ti_attr(ti, "run_id") or context.get("run_id"),
        "map_index": _ti_attr(ti, "map_index", -1) if _ti_attr(ti, "map_index", -1) is not None else -1,
        "try_number": _ti_attr(ti, "try_number"),
        "logical_date": logical,
        "exception": (f"{type(exc).__name__}: {exc}" if exc is not None else "unknown")[:4000],
        "log_url": _ti_attr(ti, "log_url"),
    }


def record_failure(context: dict) -> None:
    """on_failure_callback: log, record in news.task_failures, optionally notify.

    Never raises: a broken callback must not hide the task's own error.
    """
    record = failure_record(context)
    log.error("newsflow task failed: %(dag_id)s.%(task_id)s run %(run_id)s map %(map_index)s "
              "try %(try_number)s: %(exception)s", record)
    notified = False
    webhook = _variable(WEBHOOK_NAME) or os.environ.get(WEBHOOK_NAME)
    if webhook:
        notified = notify(webhook, record)
    try:
        from . import db

        url = database_url()
        with db.transaction(url) as conn:
            conn.execute("""
                INSERT INTO news.task_failures (dag_id, task_id, run_id, map_index, try_number,
                    logical_date, exception, log_url, notified)
                VALUES (%(dag_id)s, %(task_id)s, %(run_id)s, %(map_index)s, %(try_number)s,
                        %(logical_date)s, %(exception)s, %(log_url)s, %(notified)s)""",
                         {**record, "notified": notified})
    except Exception:
        log.exception("could not record the failure in news.task_failures")


def notify(webhook: str, record: dict[str, Any]) -> bool:
    """POST a JSON notice (Slack/Teams-style ``text`` plus the fields); True when accepted."""
    import httpx

    payload = {"text": (f"newsflow: {record['dag_id']}.{record['task_id']} failed "
                        f"(run {record['run_id']}, try {record['try_number']}): {record['exception'][:500]}"),
               **{k: (str(v) if v is not None else None) for k, v in record.items()}}
    try:
        response = httpx.post(webhook, json=payload, timeout=10.0)
        response.raise_for_status()
        return True
    except Exception as exc:
        log.warning("failure webhook %s did not accept the notice: %s", webhook.split("?")[0], exc)
        return False
