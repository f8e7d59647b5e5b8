"""Run Airflow in a subprocess for the tests: its configuration is read at import time,
so every test that needs Airflow starts a fresh interpreter with its own AIRFLOW_HOME.

    python tests/airflow_harness.py parse            DagBag of dags/: errors, stats, attributes
    python tests/airflow_harness.py test DAG_ID CONF  dag.test() one run; JSON report on stdout
    python tests/airflow_harness.py failure DAG TASK  the DAGs' failure and retry callbacks
    python tests/airflow_harness.py metrics FUNC ARGS one task function with Airflow's metrics set up

``test`` with env ``HARNESS_BREAK=<function of newsflow.airflow.tasks>`` makes that task fail
(AirflowFailException, so dag.test() does not wait for retries) in its first mapped
instance only: a broken poll shard among working ones.

The environment (AIRFLOW_HOME, metadata DB, dags folder, connection) is set by
:func:`airflow_env`, which the tests call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
MARK = "@@RESULT@@"


def airflow_env(home: Path, news_dsn: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for an Airflow subprocess with a throwaway SQLite metadata DB in ``home``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_", "AIRFLOW__", "NEWSFLOW_DATABASE_URL"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(DAGS)]),
        "PYTHONWARNINGS": "ignore",
    })
    if news_dsn:
        from newsflow.airflow.context import connection_json

        env["AIRFLOW_CONN_NEWSFLOW_DB"] = connection_json(news_dsn)
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, timeout: float = 600) -> dict:
    """Run this harness in a subprocess; return its JSON result (raises with its output)."""
    proc = subprocess.run([sys.executable, __file__, *args], env=env, cwd=str(REPO), capture_output=True,
                          text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            result["_output"] = proc.stdout[-400000:] + proc.stderr[-400000:]
            return result
    raise AssertionError(f"harness {args} failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-8000:]}\n{proc.stderr[-8000:]}")


def migrate(env: dict[str, str]) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    for cmd in ([airflow, "db", "migrate"],
                [airflow, "pools", "set", "newsflow_http", "4", "newsflow outbound HTTP"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            raise AssertionError(f"{' '.join(cmd[1:])} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


# --- inside the subprocess ---------------------------------------------------------------------

def _emit(result: dict) -> None:
    print(MARK + json.dumps(result, default=str), flush=True)


def cmd_parse() -> dict:
    from airflow.dag_processing.dagbag import BundleDagBag

    started = time.perf_counter()
    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder",
                       known_pools={"default_pool", "newsflow_http"})
    dags = {}
    for dag in bag.dags.values():
        dags[dag.dag_id] = {
            "fileloc": dag.fileloc, "tags": sorted(dag.tags), "owner": dag.owner,
            "doc_md": dag.doc_md or "", "max_active_runs": dag.max_active_runs,
            "params": sorted(dag.params.keys()),
            "param_schemas": {k: dag.params.get_param(k).schema for k in dag.params.keys()},
            "description": dag.description,
            "schedule": f"{type(dag.timetable).__name__} {getattr(dag.timetable, 'description', '')}",
            "tasks": {t.task_id: {"retries": t.retries, "owner": t.owner, "pool": t.pool,
                                  "execution_timeout": t.execution_timeout.total_seconds()
                                  if t.execution_timeout else None,
                                  "retry_exponential_backoff": float(t.retry_exponential_backoff or 0),
                                  "on_failure_callback": bool(t.on_failure_callback),
                                  "on_retry_callback": bool(t.on_retry_callback),
                                  "trigger_rule": getattr(t.trigger_rule, "value", str(t.trigger_rule)),
                                  "downstream": sorted(t.downstream_task_ids),
                                  "outlets": [getattr(o, "uri", str(o)) for o in t.outlets],
                                  "map_index_template": getattr(t, "map_index_template", None)}
                      for t in dag.tasks},
        }
    return {"import_errors": bag.import_errors, "dags": dags,
            "stats": [{"file": s.file, "seconds": s.duration.total_seconds(), "dags": s.dag_num}
                      for s in bag.dagbag_stats],
            "total_seconds": time.perf_counter() - started,
            "newsflow_imported": sorted(m for m in sys.modules if m == "newsflow" or m.startswith("newsflow."))}


def cmd_test(dag_id: str, conf: str) -> dict:
    from airflow import settings
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    if bag.import_errors:
        return {"import_errors": bag.import_errors}
    dag = bag.dags[dag_id]
    if os.environ.get("HARNESS_BREAK"):
        _break(os.environ["HARNESS_BREAK"])
    started = time.perf_counter()
    dr = dag.test(run_conf=json.loads(conf) if conf else None)
    seconds = time.perf_counter() - started
    session = settings.Session()
    tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                     TaskInstance.run_id == dr.run_id)).all()
    events = session.execute(
        select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_task_id)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == dr.run_id)).all()
    xcoms = session.execute(select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value")).all()
    return {
        "state": str(dr.state), "run_id": dr.run_id, "seconds": seconds,
        "tasks": {f"{ti.task_id}[{ti.map_index}]": {"state": str(ti.state), "rendered_map_index": ti.rendered_map_index}
                  for ti in tis},
        "asset_events": [{"uri": uri, "extra": extra, "task_id": task_id} for uri, extra, task_id in events],
        "xcom": [{"task_id": t, "map_index": m, "value": v if not isinstance(v, (bytes, str)) else str(v)}
                 for t, m, v in xcoms],
    }


def _break(name: str) -> None:
    """Make ``newsflow.airflow.tasks.<name>`` fail in its first mapped instance (dag.test()
    runs tasks in this process)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException
    from newsflow.airflow import tasks

    original = getattr(tasks, name)

    def broken(*args, **kwargs):
        if get_current_context()["ti"].map_index in (0, -1):
            raise AirflowFailException(f"harness: {name} broken on purpose")
        return original(*args, **kwargs)

    setattr(tasks, name, broken)


def cmd_failure(dag_id: str, task_id: str) -> dict:
    """Call the DAGs' on_retry_callback (try 1) and on_failure_callback (try 2) as Airflow
    would after two failed attempts."""
    from types import SimpleNamespace

    sys.path.insert(0, str(DAGS))
    from newsflow_common import on_task_failure, on_task_retry

    for try_number, callback in ((1, on_task_retry), (2, on_task_failure)):
        ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, run_id="manual__test", map_index=2,
                             try_number=try_number, log_url="http://localhost:8080/log")
        callback({"ti": ti, "exception": RuntimeError("boom: feed server on fire"), "logical_date": None})
    return {"called": True}


def cmd_metrics(function: str, kwargs: str) -> dict:
    """Call ``newsflow.airflow.tasks.<function>(**kwargs)`` with Airflow's metrics set up as
    the task runner sets them up (``[metrics]`` config from the env), then flush them."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils
    from newsflow.airflow import tasks

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    result = getattr(tasks, function)(**json.loads(kwargs or "{}"))
    try:
        from opentelemetry import metrics as otel_metrics

        otel_metrics.get_meter_provider().shutdown()  # exports what is pending
    except Exception as exc:  # not OpenTelemetry
        print(f"no OpenTelemetry provider to flush: {exc}")
    return {"result": result}


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "parse":
        _emit(cmd_parse())
    elif command == "failure":
        _emit(cmd_failure(*rest))
    elif command == "metrics":
        _emit(cmd_metrics(rest[0], rest[1] if len(rest) > 1 else ""))
    elif command == "test":
        _emit(cmd_test(rest[0], rest[1] if len(rest) > 1 else ""))
    else:
        raise SystemExit(f"unknown command {command}")
