"""Where an Airflow task finds its database, settings and feeds file.

* Database: the Airflow connection ``newsflow_db`` (Admin → Connections, an
  ``AIRFLOW_CONN_NEWSFLOW_DB`` environment variable, or any secrets backend: Airflow's own
  ``Connection.get`` resolves it), else ``NEWSFLOW_DATABASE_URL``, else the embedded server.
* Settings: ``Settings.from_env()`` and then Airflow Variables named like the env vars
  (a Variable ``NEWSFLOW_BATCH_SIZE`` overrides the env var of the same name).
* Feeds file: Variable ``newsflow_feeds_file``, else env ``NEWSFLOW_FEEDS_FILE``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ..config import ENV_PREFIX, Settings, describe

log = logging.getLogger(__name__)

CONN_ID = "newsflow_db"
FEEDS_FILE_VARIABLE = "newsflow_feeds_file"
FEEDS_FILE_ENV = "NEWSFLOW_FEEDS_FILE"
_SETTING_NAMES = {env for env, _, _ in describe()}
# libpq keywords an Airflow connection's extra may carry; Airflow-specific extras
# (cursor, iam, ...) are not libpq's and are dropped.
_LIBPQ_EXTRAS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout",
                 "application_name", "options", "target_session_attrs", "host"}


def _in_airflow() -> bool:
    """True inside an Airflow task or callback (the task SDK is loaded there).

    Plain Python callers (tests, the `newsflow` command) never import Airflow through
    Variable lookups: importing it would initialise its configuration under ~/airflow.
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
    """A libpq URL for the Airflow connection, or None when it is not defined.

    Airflow's ``Connection.get`` reads it wherever it is kept (environment variable in URI
    or JSON form, metadata database inside a task, secrets backend); only the mapping of
    its fields to libpq keywords is ours.
    """
    if "AIRFLOW_CONN_" + conn_id.upper() not in os.environ and not _in_airflow():
        return None  # plain Python without the env connection: nothing to ask Airflow
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException
    from psycopg.conninfo import make_conninfo

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    extra = {k: v for k, v in (conn.extra_dejson or {}).items() if k in _LIBPQ_EXTRAS}
    params = {"host": conn.host or extra.pop("host", None), "port": conn.port, "user": conn.login,
              "password": conn.password, "dbname": conn.schema, **extra}
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
    from .. import upgrade

    return upgrade.ready(current or settings())


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


def connection_json(dsn: str) -> str:
    """The JSON form of an Airflow connection (``AIRFLOW_CONN_NEWSFLOW_DB``) for a libpq
    DSN (URL or key=value; the host may be a socket directory). For launchers and tests."""
    import json

    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    return json.dumps({"conn_type": "postgres", "host": p.get("host"), "login": p.get("user"),
                       "password": p.get("password"), "schema": p.get("dbname"),
                       "port": int(p["port"]) if p.get("port") else None})
