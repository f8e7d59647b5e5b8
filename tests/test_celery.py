"""Scaling out with CeleryExecutor.

* The compose file (the multi-machine path; no Docker engine here, so it is validated,
  not run): official Airflow 3 layout, shared JWT secret, mounts, this package installed.
* The ingest task's extraction process pool works inside a daemonic process, which is
  what a Celery prefork worker runs tasks in (found by `make celery-check`).
* A real Celery worker on the real Redis answers a ping (skipped without Redis).

The full run (scheduler, api-server, dag-processor, triggerer and a Celery worker
ingesting the sample world through the DAGs) is `make celery-check`; see docs/airflow.md.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import fetch_all

REPO = Path(__file__).resolve().parents[1]
REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- docker-compose.yml -------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_official_airflow3_services(compose):
    services = compose["services"]
    assert {"postgres", "newsdb", "redis", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-init"} <= set(services)
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    for name, svc in services.items():
        if name.startswith("airflow-"):
            assert svc["build"] == "." and svc["image"].startswith("newsflow-airflow:3.3"), name


def test_compose_environment_and_volumes(compose):
    common = compose["x-airflow-common"]
    env = common["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:") or "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # workers and api-server must share the secret that signs task tokens
    assert "AIRFLOW_JWT_SECRET" in env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "@newsdb:5432/newsflow" in env["AIRFLOW_CONN_NEWSFLOW_DB"]
    # the migrations are package data: no SQL folder to point at or mount
    assert "NEWSFLOW_SQL_DIR" not in env
    mounts = {v.split(":")[1] for v in common["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins"} <= mounts and "/opt/airflow/sql" not in mounts
    worker = compose["services"]["airflow-worker"]
    assert worker["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    init = compose["services"]["airflow-init"]["command"][-1]
    assert "airflow db migrate" in init and "pools set newsflow_http" in init and "newsflow db upgrade" in init


def test_dockerfile_installs_the_package_on_the_official_image():
    text = (REPO / "Dockerfile").read_text()
    assert "ARG AIRFLOW_VERSION=3.3.2" in text and "FROM apache/airflow:${AIRFLOW_VERSION}" in text
    assert "requirements.lock" in text and "pip install" in text and "/opt/newsflow" in text
    assert "NEWSFLOW_SQL_DIR" not in text  # the installed package carries its migrations


# --- the worker's process model ---------------------------------------------------------------

def _ingest_in_daemon(env: dict, queue) -> None:
    os.environ.update(env)
    try:
        from newsflow.airflow import tasks

        queue.put(tasks.ingest())
    except BaseException as exc:  # report, do not hang the parent
        queue.put(f"{type(exc).__name__}: {exc}")


def test_ingest_task_runs_in_a_daemonic_worker_process(settings, database_url, sample_feeds):
    from newsflow import db
    from newsflow.pipeline import sync_feeds
    from newsflow.poll import poll_feeds, select_feeds
    from newsflow.registry import parse_file

    sync_feeds(database_url, parse_file(sample_feeds).specs)
    with db.connect(database_url) as conn:
        poll_feeds(database_url, settings, select_feeds(conn, force=True))
    env = {"NEWSFLOW_DATABASE_URL": database_url, "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1",
           "NEWSFLOW_PER_HOST_DELAY": "0", "NEWSFLOW_EXTRACT_WORKERS": "2"}
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    # Celery's prefork pool runs tasks in daemonic processes like this one
    proc = ctx.Process(target=_ingest_in_daemon, args=(env, queue), daemon=True)
    proc.start()
    result = queue.get(timeout=180)
    proc.join(30)
    assert isinstance(result, dict), result
    assert result["claimed"] == 14 and result["loaded"] == 13
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 13


# --- a real Celery worker on the real Redis ---------------------------------------------------

@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.skipif(not _redis_up(), reason="Redis at 127.0.0.1:6379 unreachable")
def test_celery_worker_starts_and_answers_on_redis(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import airflow_harness as harness

    broker = "redis://127.0.0.1:6379/6"
    env = harness.airflow_env(tmp_path, AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
                              AIRFLOW__CELERY__BROKER_URL=broker,
                              AIRFLOW__CELERY__RESULT_BACKEND=f"db+sqlite:///{tmp_path}/celery.db",
                              AIRFLOW__CELERY__WORKER_CONCURRENCY="1")
    airflow = str(Path(sys.executable).with_name("airflow"))
    name = f"newsflow-test-{os.getpid()}@%h"
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([airflow, "celery", "worker", "--celery-hostname", name, "--concurrency", "1",
                               "--skip-serve-logs"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        celery = str(Path(sys.executable).with_name("celery"))
        deadline = time.monotonic() + 120
        answered = False
        while time.monotonic() < deadline and worker.poll() is None and not answered:
            time.sleep(3)
            ping = subprocess.run([celery, "--app", "airflow.providers.celery.executors.celery_executor.app",
                                   "inspect", "ping", "--timeout", "3"],
                                  env=env, capture_output=True, text=True, timeout=60)
            answered = "pong" in ping.stdout
        assert answered, (tmp_path / "worker.log").read_text()[-4000:]
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(60)


def _postgres_up(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not (_redis_up() and _postgres_up()),
                    reason="needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432")
def test_full_celery_stack_ingests_the_sample_world(tmp_path):
    """What `make celery-check` runs: every Airflow component plus one Celery worker, the
    poll DAG triggered, ingestion started by its asset, the sample world loaded."""
    url = os.environ.get("NEWSFLOW_CELERY_CHECK_DB", "postgresql://postgres@127.0.0.1:5432/postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    prefix = f"nf_celery_{os.getpid()}"  # databases of its own: two checkouts may test at once
    try:
        proc = subprocess.run(
            [sys.executable, str(REPO / "tools" / "airflow_standalone.py"), "--executor", "celery", "--check",
             "--fresh", "--port", str(_free_port()), "--home", str(tmp_path / "airflow_home"),
             "--database-url", url, "--broker", "redis://127.0.0.1:6379/7", "--timeout", "300",
             "--db-prefix", prefix],
            env=env, cwd=str(REPO), capture_output=True, text=True, timeout=560)
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as admin:
            for suffix in ("news", "airflow"):
                admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_{suffix}" WITH (FORCE)')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert '"ok": true' in proc.stdout
    print(proc.stdout)
