"""A real Airflow API server with the newsflow console plugin loaded, for the console's
tests: its own AIRFLOW_HOME, a migrated SQLite metadata database with the DAGs serialized,
SimpleAuthManager with an admin and a viewer (fixed passwords), a free loopback port, and
the news database as connection ``newsflow_db`` in the metadata database (listed under
Admin → Connections, as ``make airflow`` creates it). Stopped (its process group) on exit.

    with ConsoleServer(home, news_dsn) as server:
        admin = server.client("admin")          # httpx client with the admin's bearer token
        server.token("viewer"), server.base      # http://127.0.0.1:<port>
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import airflow_harness as harness  # noqa: E402

PASSWORDS = {"admin": "admin-pw", "viewer": "viewer-pw"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleServer:
    def __init__(self, home: Path, news_dsn: str, **extra_env: str):
        self.home = Path(home)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (self.home / "passwords.json").write_text(json.dumps(PASSWORDS))
        self.news_dsn = news_dsn
        self.env = harness.airflow_env(
            self.home, None,  # newsflow_db is a connection in the metadata DB, as `make airflow` makes it
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:ADMIN,viewer:VIEWER",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.home / "passwords.json"),
            # fixed secrets: tokens and the console's CSRF tokens verify in every worker
            AIRFLOW__API_AUTH__JWT_SECRET="console-test-jwt-secret-" + "0123456789" * 5,
            AIRFLOW__API__SECRET_KEY="console-test-api-secret-0123456789",
            AIRFLOW__API__BASE_URL=self.base + "/",
            AIRFLOW__API__EXPOSE_CONFIG="False",
            **extra_env)
        self.proc: subprocess.Popen | None = None
        self.log = self.home / "api-server.log"

    def _airflow(self, *args: str) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        proc = subprocess.run([airflow, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

    def __enter__(self) -> "ConsoleServer":
        from newsflow.airflow.context import connection_json

        harness.migrate(self.env)
        self._airflow("connections", "add", "newsflow_db", "--conn-json", connection_json(self.news_dsn))
        self._airflow("dags", "reserialize")  # the DAGs in the metadata DB (no scheduler here)
        airflow = str(Path(sys.executable).with_name("airflow"))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port),
                                          "--workers", "1"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.__exit__()
        raise RuntimeError(f"api-server not up after 180 s:\n{self.log.read_text()[-4000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its worker
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def token(self, user: str) -> str:
        r = httpx.post(f"{self.base}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=30)
        r.raise_for_status()
        return r.json()["access_token"]

    def client(self, user: str | None = None, headers: dict | None = None, **kw) -> httpx.Client:
        """An httpx client for the server: with ``user``'s bearer token, or anonymous."""
        headers = {**({"Authorization": f"Bearer {self.token(user)}"} if user else {}), **(headers or {})}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60, **kw)
