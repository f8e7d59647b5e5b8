"""DAG integrity: every file in dags/ imports cleanly in a real DagBag (own AIRFLOW_HOME,
throwaway metadata DB, in a subprocess so Airflow's configuration is set before import),
each DAG carries what operators rely on, and parsing is cheap (< 1 s per file)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import airflow_harness as harness  # noqa: E402

pytestmark = pytest.mark.airflow

DAG_IDS = {"newsflow_poll_feeds", "newsflow_ingest_articles", "newsflow_maintenance"}
DAG_FILES = sorted(p for p in harness.DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    return harness.run(harness.airflow_env(home), "parse", timeout=180)


def test_every_file_imports_without_errors(parsed):
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS
    parsed_files = {s["file"] for s in parsed["stats"]}
    ignored = {"newsflow_common.py"}  # listed in dags/.airflowignore: shared module, no DAG
    assert parsed_files == {p.name for p in DAG_FILES} - ignored


def test_no_pipeline_import_at_parse_time(parsed):
    # the package (psycopg, trafilatura, numpy ...) is imported inside tasks only
    assert parsed["newsflow_imported"] == []


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_only_airflow_sdk_and_stdlib(path):
    allowed = set(sys.stdlib_module_names) | {"airflow", "newsflow_common"}
    tree = ast.parse(path.read_text())
    for node in tree.body:  # module level only; tasks import the package in their bodies
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            assert name.split(".")[0] in allowed, f"{path.name}: module-level import of {name}"
            if name.startswith("airflow"):
                assert name == "airflow.sdk" or name.startswith("airflow.sdk."), f"{path.name}: {name}"


WATCHER = "fail_run_if_a_task_failed"


def test_every_dag_is_operable(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert "newsflow" in dag["tags"], dag_id
        assert dag["owner"] == "newsflow", dag_id
        assert "When a task fails" in dag["doc_md"] and len(dag["doc_md"]) > 500, dag_id
        assert "`" not in dag["description"], dag_id  # shown as plain text in the DAG list
        for task_id, t in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert t["owner"] == "newsflow", where
            assert t["execution_timeout"], where
            if task_id == WATCHER:  # its failure is the run's verdict; the failed task reported
                assert not t["on_failure_callback"] and t["retries"] == 0, where
                continue
            # every failed attempt is recorded: the last one and those Airflow retries
            assert t["on_failure_callback"] and t["on_retry_callback"], where
            if not task_id.startswith("announce_"):  # announcing is cheap and idempotent
                assert t["retries"] >= 2 and t["retry_exponential_backoff"] > 0, where


@pytest.mark.parametrize("dag_id", ["newsflow_poll_feeds", "newsflow_ingest_articles"])
def test_a_failed_task_fails_the_run(parsed, dag_id):
    # announce_* may end skipped (trigger rule all_done), which alone would leave a run with a
    # failed task green: the watcher follows every task directly (one_failed sees direct
    # upstreams only) and fails the run.
    tasks = parsed["dags"][dag_id]["tasks"]
    assert tasks[WATCHER]["trigger_rule"] == "one_failed"
    assert tasks[WATCHER]["downstream"] == []
    assert {t for t, v in tasks.items() if WATCHER in v["downstream"]} == set(tasks) - {WATCHER}


def test_maintenance_is_a_chain(parsed):
    # no all_done task: any failure leaves the last task upstream_failed, so the run fails
    tasks = parsed["dags"]["newsflow_maintenance"]["tasks"]
    assert {t["trigger_rule"] for t in tasks.values()} == {"all_success"}
    assert sum(1 for t in tasks.values() if not t["downstream"]) == 1


def test_params_are_validated_in_the_trigger_form(parsed):
    poll, ingest = parsed["dags"]["newsflow_poll_feeds"], parsed["dags"]["newsflow_ingest_articles"]
    feed = poll["param_schemas"]["feed"]
    assert "name" in feed["title"] and "id" in feed["title"]  # a feed by name, not only "#7"
    for name in ("since", "until"):
        assert ingest["param_schemas"][name]["format"] == "date"  # the form refuses "last tuesday"
    for dag in (poll, ingest):
        for name, schema in dag["param_schemas"].items():
            assert "`" not in schema.get("description", "") + schema.get("title", ""), name


def test_schedules_pools_params_and_assets(parsed):
    poll, ingest, maint = (parsed["dags"][d] for d in
                           ("newsflow_poll_feeds", "newsflow_ingest_articles", "newsflow_maintenance"))
    # overlap is unsafe for polling (conditional-GET state) and maintenance
    assert poll["max_active_runs"] == 1 and maint["max_active_runs"] == 1
    assert {"feed", "force", "shards"} <= set(poll["params"])
    assert {"entry_id", "url", "since", "until", "include_loaded", "workers"} <= set(ingest["params"])
    # outbound HTTP is bounded by the pool; mapped tasks are named
    for dag, task in ((poll, "poll_shard"), (ingest, "ingest_worker")):
        assert dag["tasks"][task]["pool"] == "newsflow_http"
        assert dag["tasks"][task]["map_index_template"]
    assert poll["tasks"]["announce_new_entries"]["outlets"] == ["newsflow://news/entries"]
    assert ingest["tasks"]["announce_new_articles"]["outlets"] == ["newsflow://news/articles"]
    assert ingest["schedule"].startswith("Asset"), ingest["schedule"]
    assert maint["schedule"].startswith("Cron") and poll["schedule"].startswith("Cron")


# --- how tasks find the database and settings (plain Python: no Airflow task context) ------

def test_connection_and_variable_overrides_from_env(monkeypatch):
    from newsflow.airflow import context as support

    monkeypatch.delenv("NEWSFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("NEWSFLOW_FEEDS_FILE", raising=False)

    monkeypatch.setenv("AIRFLOW_CONN_NEWSFLOW_DB",
                       '{"conn_type": "postgres", "host": "/tmp/pg sock", "login": "news", '
                       '"password": "s3cret", "schema": "newsflow", "extra": {"sslmode": "disable", "cursor": "x"}}')
    monkeypatch.setenv("AIRFLOW_VAR_NEWSFLOW_BATCH_SIZE", "7")
    monkeypatch.setenv("NEWSFLOW_BATCH_SIZE", "3")  # the Variable wins over the env var
    monkeypatch.setenv("AIRFLOW_VAR_NEWSFLOW_FEEDS_FILE", "/srv/f.yaml")
    from psycopg.conninfo import conninfo_to_dict

    s = support.settings()
    assert s.batch_size == 7
    assert conninfo_to_dict(s.database_url) == {"host": "/tmp/pg sock", "user": "news", "password": "s3cret",
                                                "dbname": "newsflow", "sslmode": "disable"}
    monkeypatch.setenv("AIRFLOW_CONN_NEWSFLOW_DB", "postgresql://u:p%40ss@db.example:5433/news?sslmode=require")
    assert conninfo_to_dict(support.connection_url()) == {"host": "db.example", "port": "5433", "user": "u",
                                                          "password": "p@ss", "dbname": "news",
                                                          "sslmode": "require"}
    monkeypatch.delenv("AIRFLOW_CONN_NEWSFLOW_DB")
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", "postgresql://fallback/db")
    assert support.settings().database_url == "postgresql://fallback/db"
    assert support.feeds_file() == "/srv/f.yaml"  # Variable newsflow_feeds_file (env-backed)
    monkeypatch.delenv("AIRFLOW_VAR_NEWSFLOW_FEEDS_FILE")
    monkeypatch.setenv("NEWSFLOW_FEEDS_FILE", "/etc/feeds.yaml")
    assert support.feeds_file() == "/etc/feeds.yaml"


def test_console_plugin_is_registered_and_light(tmp_path):
    # Every Airflow process (task processes included) imports the plugins folder: the console
    # plugin must not pull in FastAPI, Airflow's API-server security or the console itself.
    import json
    import subprocess

    code = """if True:
        import json, sys
        import newsflow_console as p
        plugin = p.NewsflowConsolePlugin
        print(json.dumps({"apps": [{k: v for k, v in a.items() if k != "app"} for a in plugin.fastapi_apps],
                          "views": plugin.external_views,
                          "heavy": sorted(m for m in sys.modules if m.startswith(("fastapi", "newsflow.",
                                          "airflow.api_fastapi.core_api.security")))}))"""
    env = harness.airflow_env(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["heavy"] == []
    assert found["apps"] == [{"url_prefix": "/newsflow", "name": "newsflow ops console"}]
    [view] = found["views"]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == (
        "Newsflow", "newsflow/", "newsflow", "nav")
