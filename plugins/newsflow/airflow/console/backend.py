"""What the console's routes need besides the request: settings and the news database
(a small connection pool per API-server process), and Airflow's REST API (runs of the
DAGs, triggering a poll) called with the signed-in user's own token."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import quote, urljoin

import psycopg
from fastapi import Request
from psycopg.rows import dict_row

from ... import db
from ...config import Settings
from .. import context

_lock = threading.Lock()
_state: dict[str, Any] = {"settings": None, "read_at": 0.0, "pool": None, "url": None}


def settings() -> Settings:
    """The settings in force (env, Airflow Variables, connection newsflow_db), re-read every
    NEWSFLOW_CONSOLE_SETTINGS_TTL seconds."""
    import airflow.sdk  # noqa: F401  (in the API server: Variables and connections come from Airflow)

    with _lock:
        current = _state["settings"]
        if current is None or time.monotonic() - _state["read_at"] > current.console_settings_ttl:
            current = context.settings()
            _state.update(settings=current, read_at=time.monotonic())
        return current


def _pool():
    from psycopg_pool import ConnectionPool

    current = settings()
    with _lock:
        url = db.resolve_url(current)
        if _state["pool"] is None or _state["url"] != url:
            db.upgrade(url)  # the console writes the audit trail: the schema must be current
            old = _state["pool"]
            _state["pool"] = ConnectionPool(url, min_size=1, max_size=4, open=True, name="newsflow-console",
                                            kwargs={"row_factory": dict_row,
                                                    "application_name": "newsflow-console"})
            _state["url"] = url
            if old is not None:
                old.close()
        return _state["pool"]


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A pooled connection in a transaction (committed when the block succeeds)."""
    with _pool().connection() as conn:
        yield conn


class AirflowAPIError(RuntimeError):
    pass


class AirflowAPI:
    """Airflow's public REST API (``/api/v2``), called as the signed-in user: the user's
    own token is forwarded, so Airflow checks that user's permissions itself.

    Base URL: NEWSFLOW_CONSOLE_API_URL, else ``[api] base_url``, else the origin the
    request came to."""

    def __init__(self, request: Request, current: Settings):
        from airflow.configuration import conf

        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        base = current.console_api_url or conf.get("api", "base_url", fallback="") or \
            f"{request.url.scheme}://{request.headers.get('host', '127.0.0.1')}"
        self.base = base.rstrip("/") + "/"
        auth = request.headers.get("authorization", "")
        self.token = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
        self.timeout = current.console_api_timeout

    def _call(self, method: str, path: str, **kw) -> Any:
        import httpx

        try:
            response = httpx.request(method, urljoin(self.base, path.lstrip("/")), timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self.token}"}, **kw)
        except httpx.HTTPError as exc:
            raise AirflowAPIError(f"Airflow's API at {self.base} did not answer: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:300]
            raise AirflowAPIError(f"Airflow's API refused ({response.status_code}): {detail}")
        return response.json()

    def trigger(self, dag_id: str, conf: dict, note: str) -> dict:
        """A manual run of ``dag_id`` (POST /api/v2/dags/{dag_id}/dagRuns)."""
        return self._call("POST", f"api/v2/dags/{dag_id}/dagRuns",
                          json={"logical_date": None, "conf": conf, "note": note})

    def runs(self, dag_id: str, limit: int) -> list[dict]:
        """The latest runs of ``dag_id``, newest first."""
        return self._call("GET", f"api/v2/dags/{dag_id}/dagRuns",
                          params={"order_by": "-run_after", "limit": limit})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        """One run of ``dag_id`` (its state, start and end)."""
        return self._call("GET", f"api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def dag(self, dag_id: str) -> dict:
        return self._call("GET", f"api/v2/dags/{dag_id}")
