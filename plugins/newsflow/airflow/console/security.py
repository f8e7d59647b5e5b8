"""Who may see and do what in the console: Airflow's own authentication and permissions.

Airflow mounts plugin apps without any authentication, so every route here depends on
Airflow's ``get_user`` (the UI's ``_token`` cookie or an ``Authorization: Bearer`` token,
through the configured auth manager: the same login as the UI). Reading requires read
access to the newsflow DAGs; actions require permission to edit them (feeds: the poll
DAG; entries: the ingest DAG). Anonymous requests get 401, forged tokens 403.

Form posts ride on the ambient cookie, so they must also come from our own page: a
same-origin request (Sec-Fetch-Site, Origin or Referer) with a CSRF token bound to the
user (HMAC with the API server's JWT secret, valid for 1-2 hours). Requests with an
explicit Bearer token are not exposed to CSRF and skip that check.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

POLL_DAG = "newsflow_poll_feeds"
INGEST_DAG = "newsflow_ingest_articles"
MAINTENANCE_DAG = "newsflow_maintenance"
CSRF_FIELD = "csrf_token"

# Route dependencies, as Airflow's own API declares them.
can_read = Depends(requires_access_dag(method="GET", param_dag_id=POLL_DAG))
can_edit_feeds = Depends(requires_access_dag(method="PUT", param_dag_id=POLL_DAG))
can_edit_entries = Depends(requires_access_dag(method="PUT", param_dag_id=INGEST_DAG))


def may(user, method: str, dag_id: str) -> bool:
    """What the page offers (buttons); the routes check again through the dependencies."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    return get_auth_manager().is_authorized_dag(
        method=method, details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)), user=user)


def _secret() -> bytes:
    from airflow.configuration import conf

    # The same in every API-server worker: [api_auth] jwt_secret must be (tokens would not
    # validate across workers otherwise); [api] secret_key is random per process when unset.
    return (conf.get("api_auth", "jwt_secret", fallback="") or conf.get("api", "secret_key")).encode()


def csrf_token(username: str, bucket: int | None = None) -> str:
    bucket = int(time.time() // 3600) if bucket is None else bucket
    mac = hmac.new(_secret(), f"newsflow-console:{username}:{bucket}".encode(), hashlib.sha256)
    return f"{bucket}.{mac.hexdigest()}"


def _valid(username: str, token: str) -> bool:
    bucket, _, _ = token.partition(".")
    if not bucket.isdigit() or int(time.time() // 3600) - int(bucket) not in (0, 1):
        return False
    return hmac.compare_digest(csrf_token(username, int(bucket)), token)


def _origins(request: Request) -> set[str]:
    from airflow.configuration import conf

    origins = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if base := conf.get("api", "base_url", fallback=""):
        parts = urlsplit(base)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def frame_ancestors(request: Request) -> list[str]:
    """Who may frame the console: the Airflow UI, i.e. this origin ('self') and the origin
    of [api] base_url when the UI is reached under another name (a proxy). Nothing else:
    not another port of the same host."""
    from airflow.configuration import conf

    allowed = ["'self'"]
    if base := conf.get("api", "base_url", fallback=""):
        parts = urlsplit(base)
        if parts.scheme in ("http", "https") and parts.netloc:
            allowed.append(f"{parts.scheme}://{parts.netloc}")
    return allowed


async def require_csrf(request: Request, user: GetUserDep) -> None:
    """Refuse cross-site posts that ride on the ambient cookie."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # an explicit credential is not ambient: no CSRF exposure
    if request.headers.get("sec-fetch-site") not in (None, "same-origin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-site request refused")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or f"{urlsplit(origin).scheme}://{urlsplit(origin).netloc}" not in _origins(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-origin request refused (no or foreign Origin)")
    form = await request.form()  # parsed once; the route reads it again from the cache
    if not _valid(user.get_name(), str(form.get(CSRF_FIELD, ""))):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Bad or expired form token: reload the page")
