"""Run the newsflow DAGs in a local Airflow 3: ``make airflow`` (``python tools/airflow_standalone.py``).

Developer tooling, not part of the ``newsflow`` package: it needs this repository's
``dags/`` and ``plugins/`` folders.

What it sets up, like ``make demo`` plus Airflow:

* the embedded PostgreSQL (``.newsflow/pgdata``, unix socket only) holds the news data
  (the same database ``make demo`` uses) and, in its own database ``airflow``, Airflow's
  metadata: no SQLite;
* ``AIRFLOW_HOME=airflow_home/`` (git-ignored), this repository's ``dags/`` and
  ``plugins/`` (the Newsflow console in the UI's navigation), examples off, DAGs unpaused,
  the connection ``newsflow_db`` (stored in the metadata database, so it is listed under
  Admin → Connections) and the pool ``newsflow_http``;
* the sample news world served on loopback (port ``NEWSFLOW_DEMO_PORT``, 8765) with its
  feeds file as ``NEWSFLOW_FEEDS_FILE``, so the poll DAG has something to ingest
  (private networks allowed and no per-host delay, for this demo only);
* Airflow's components as child processes: api-server, scheduler, dag-processor,
  triggerer (LocalExecutor), or with ``--executor celery`` a Celery worker too.

It prints the UI URL and login and runs until Ctrl-C. ``--check`` instead waits until
the sample world is ingested through the DAGs, prints what landed, and stops (exit code
0 on success): that is ``make celery-check`` with ``--executor celery``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

from newsflow import db  # noqa: E402
from newsflow.airflow.context import connection_json  # noqa: E402
from newsflow.config import Settings  # noqa: E402
from newsflow.storage import articles as article_store  # noqa: E402
from newsflow.storage import task_failures  # noqa: E402
from pgscratch import ensure_database  # noqa: E402  (tools/, this script's folder)

COMPONENTS = ["api-server", "scheduler", "dag-processor", "triggerer"]
DAG_IDS = ["newsflow_poll_feeds", "newsflow_ingest_articles", "newsflow_maintenance"]


def _echo(line: str) -> None:
    print(f"airflow-standalone: {line}", file=sys.stderr, flush=True)


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def sqlalchemy_url(dsn: str) -> str:
    """The psycopg2 SQLAlchemy URL (Airflow's metadata connection) of a libpq ``dsn``."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    dbname = p.get("dbname") or "airflow"
    auth = quote(p.get("user") or "postgres") + (f":{quote(p['password'])}" if p.get("password") else "")
    host = p.get("host") or "localhost"
    if host.startswith("/"):  # unix socket directory (pgserver listens on nothing else)
        return f"postgresql+psycopg2://{auth}@/{dbname}?host={host}" + (f"&port={p['port']}" if p.get("port") else "")
    return f"postgresql+psycopg2://{auth}@{host}:{p.get('port') or 5432}/{dbname}"


class Stack:
    """Airflow's components as child processes sharing one environment."""

    def __init__(self, home: Path, env: dict[str, str], port: int, celery: bool):
        self.home, self.env, self.port, self.celery = home, env, port, celery
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = home / "logs" / "standalone"

    def airflow(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([_airflow_bin(), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        commands = {name: [name] for name in COMPONENTS}
        commands["api-server"] = ["api-server", "--port", str(self.port)]
        if self.celery:
            commands["celery-worker"] = ["celery", "worker", "--concurrency", "2"]
        for name, args in commands.items():
            log = open(self.logs / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen([_airflow_bin(), *args], env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
            _echo(f"started {name} (pid {self.procs[name].pid}, log {self.logs / (name + '.log')})")

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the component and its own children
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        _echo("stopped all components")

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def wait_healthy(self, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if dead := self.dead():
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.logs}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as r:
                    last = json.load(r)
                if all((last.get(c) or {}).get("status") == "healthy"
                       for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")):
                    return last
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(2)
        raise RuntimeError(f"Airflow not healthy after {timeout:.0f}s: {last}; see {self.logs}")

    def login(self) -> tuple[str, str] | None:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        if not path.exists():
            return None
        users = json.loads(path.read_text())
        user = "admin" if "admin" in users else next(iter(users))
        return user, users[user]

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        user, password = self.login() or ("admin", "")
        req = urllib.request.Request(f"{self.url}/auth/token", method="POST",
                                     data=json.dumps({"username": user, "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["access_token"]
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def build_env(home: Path, meta_url: str, feeds_file: Path, *, port: int, celery: bool,
              broker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    secret_file = home / ".jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if celery else "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__API__PORT": str(port),
        # one secret for every component (and worker) that signs or checks task tokens
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__API_AUTH__JWT_ISSUER": "newsflow-local",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "NEWSFLOW_FEEDS_FILE": str(feeds_file),
        "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1",  # the sample world is on loopback
        "NEWSFLOW_PER_HOST_DELAY": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "plugins"), env.get("PYTHONPATH")])),
    })
    env.pop("NEWSFLOW_DATABASE_URL", None)
    if celery:
        env["AIRFLOW__CELERY__BROKER_URL"] = broker
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + meta_url.replace("+psycopg2", "")
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "2"
    return env


def news_counts(news_dsn: str) -> dict:
    with db.connect(news_dsn) as conn:
        return {**vars(article_store.totals(conn)), "task_failures": task_failures.count(conn)}


def run_check(stack: Stack, news_dsn: str, timeout: float) -> int:
    """Trigger a poll, wait for the asset-triggered ingestion, report; 0 when it all landed."""
    started = time.monotonic()
    run = stack.api("/api/v2/dags/newsflow_poll_feeds/dagRuns", "POST",
                    {"logical_date": None, "conf": {"force": True}})
    _echo(f"triggered newsflow_poll_feeds run {run.get('dag_run_id')}")
    deadline = started + timeout
    counts = {}
    while time.monotonic() < deadline:
        if dead := stack.dead():
            _echo(f"component(s) exited: {dead}")
            return 1
        counts = news_counts(news_dsn)
        runs = stack.api("/api/v2/dags/newsflow_ingest_articles/dagRuns?order_by=-run_after&limit=5")
        states = [r["state"] for r in runs.get("dag_runs", [])]
        if counts["articles"] >= 13 and "success" in states:
            break
        time.sleep(3)
    elapsed = time.monotonic() - started
    runs = stack.api("/api/v2/dags/newsflow_ingest_articles/dagRuns?order_by=-run_after&limit=5")["dag_runs"]
    ingest_runs = [(r["dag_run_id"], r["run_type"], r["state"]) for r in runs]
    executor_info = ""
    if runs:
        tis = stack.api(f"/api/v2/dags/newsflow_ingest_articles/dagRuns/{runs[0]['dag_run_id']}/taskInstances")
        executor_info = "; ".join(f"{t['task_id']}[{t['map_index']}] {t['state']} on {t.get('hostname')} "
                                  f"(executor {t.get('executor') or stack.env['AIRFLOW__CORE__EXECUTOR']}, "
                                  f"queue {t.get('queue')})" for t in tis.get("task_instances", []))
    ok = counts.get("articles") == 13 and counts.get("entries") == 14 and counts.get("pending") == 0 \
        and counts.get("failed") == 0 and any(
        r[1] == "asset_triggered" and r[2] == "success" for r in ingest_runs)
    print(json.dumps({"ok": ok, "seconds_from_trigger": round(elapsed, 1), "news": counts,
                      "ingest_runs": ingest_runs, "ingest_tasks": executor_info}, indent=1))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/airflow_standalone.py", description=__doc__.split("\n")[0])
    p.add_argument("--executor", choices=["local", "celery"], default="local")
    p.add_argument("--port", type=int, default=int(os.environ.get("NEWSFLOW_AIRFLOW_PORT", 8080)))
    p.add_argument("--home", default=str(REPO_ROOT / "airflow_home"), help="AIRFLOW_HOME (git-ignored)")
    p.add_argument("--database-url", default=None,
                   help="PostgreSQL server for news data and Airflow metadata (default: embedded)")
    p.add_argument("--broker", default=os.environ.get("NEWSFLOW_CELERY_BROKER", "redis://127.0.0.1:6379/5"))
    p.add_argument("--check", action="store_true", help="ingest the sample world through the DAGs, then stop")
    p.add_argument("--fresh", action="store_true", help="start from empty databases (news and airflow)")
    p.add_argument("--db-prefix", default=None,
                   help="with --database-url: name the databases PREFIX_news and PREFIX_airflow "
                        "(default newsflow, or newsflow_check with --check)")
    p.add_argument("--timeout", type=float, default=600, help="--check: seconds to wait for ingestion")
    args = p.parse_args(argv)

    import warnings

    def _terminate(_signum, _frame):  # `kill` stops the components like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from newsflow.sampleworld import SAMPLE_DIR, SampleServer

    settings = Settings.from_env()
    home = Path(args.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    server_dsn = args.database_url or db.embedded_url(settings.data_dir)
    if args.database_url or args.fresh:
        # a server of our own choosing: separate databases, so the check starts from zero
        prefix = args.db_prefix or ("newsflow_check" if args.check else "newsflow")
        news_dsn = ensure_database(server_dsn, f"{prefix}_news", fresh=args.fresh)
        meta_dsn = ensure_database(server_dsn, f"{prefix}_airflow", fresh=args.fresh)
    else:
        news_dsn = server_dsn  # the same news database as `make demo`
        meta_dsn = ensure_database(server_dsn, "airflow")
    db.upgrade(news_dsn)
    meta_url = sqlalchemy_url(meta_dsn)

    try:
        sample = SampleServer(port=0 if args.check else settings.demo_port)
    except OSError as exc:
        _echo(f"cannot serve the sample world on 127.0.0.1:{settings.demo_port} ({exc}); "
              "set NEWSFLOW_DEMO_PORT to a free port")
        return 2
    with sample:
        feeds_file = sample.render_feeds_file(SAMPLE_DIR / "feeds.yaml", home / "demo-feeds.yaml")
        env = build_env(home, meta_url, feeds_file, port=args.port,
                        celery=args.executor == "celery", broker=args.broker)
        stack = Stack(home, env, args.port, celery=args.executor == "celery")
        _echo(f"sample world at {sample.base}; feeds file {feeds_file}")
        _echo(f"metadata database {db.redact(meta_url)}; news database {db.redact(news_dsn)}")
        _echo("airflow db migrate ...")
        stack.airflow("db", "migrate")
        stack.airflow("pools", "set", "newsflow_http", "4", "newsflow: concurrent outbound HTTP (polls, fetches)")
        # a connection in the metadata DB, visible (and editable) under Admin → Connections; an
        # AIRFLOW_CONN_NEWSFLOW_DB env var would work as well but is not listed there
        stack.airflow("connections", "delete", "newsflow_db", check=False)
        stack.airflow("connections", "add", "newsflow_db", "--conn-json", connection_json(news_dsn))
        stack.start()
        try:
            health = stack.wait_healthy()
            _echo(f"healthy: {', '.join(k for k in health)}")
            dags = stack.api("/api/v2/dags?dag_id_pattern=newsflow")
            deadline = time.monotonic() + 120
            while len(dags.get("dags", [])) < len(DAG_IDS) and time.monotonic() < deadline:
                time.sleep(3)
                dags = stack.api("/api/v2/dags?dag_id_pattern=newsflow")
            _echo("DAGs: " + ", ".join(f"{d['dag_id']}{' (paused)' if d['is_paused'] else ''}"
                                       for d in dags.get("dags", [])))
            if args.check:
                return run_check(stack, news_dsn, args.timeout)
            user, password = stack.login() or ("admin", "(see api-server log)")
            print(f"\nAirflow UI: {stack.url}   login: {user} / {password}\n"
                  f"Newsflow console: {stack.url}/plugin/newsflow (Newsflow in the left navigation bar)\n"
                  f"Executor: {env['AIRFLOW__CORE__EXECUTOR']}; logs in {stack.logs}\n"
                  "The poll DAG runs every 5 minutes (trigger it from the UI to start now); "
                  "ingestion follows on its asset.\nCtrl-C stops everything.", flush=True)
            while not stack.dead():
                time.sleep(2)
            _echo(f"component(s) exited: {stack.dead()}; stopping")
            return 1
        except KeyboardInterrupt:
            return 130 if args.check else 0
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
