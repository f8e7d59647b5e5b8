"""How the console renders a page: the Jinja2 environment (autoescape: every value from a
feed is escaped), its filters, and the frame every page shares (user, CSRF token, what the
user may do, the action just taken). One home for the routes of ``app.py`` and
``events_pages.py`` alike, so neither imports the other's internals.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from ... import health
from ...health import plural, span
from ...models import FEED_STATES
from ...storage import audit
from . import backend, security
from .security import INGEST_DAG, POLL_DAG

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("newsflow.airflow.console", "templates"),
    autoescape=True,  # every value from a feed (titles, errors, URLs) is escaped
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if value else "-"


def _stamp(value: datetime | None) -> str:
    """To the second: the audit trail (two clicks in one minute must be told apart)."""
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if value else "-"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    return f"in {span(-seconds)}" if seconds < 0 else f"{span(seconds)} ago"


def _due(value: datetime | None) -> str:
    """When a poll is due: "in 3 min", or "overdue by 42 s" (never "42 s ago": it has not happened)."""
    if value is None:
        return "not scheduled"
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    return f"in {span(-seconds)}" if seconds < 0 else f"overdue by {span(seconds)}"


_templates.filters.update(when=_when, stamp=_stamp, ago=_ago, due=_due, span=span, plural=plural,
                          reason=health.reason, disabled_by=health.disabled_by)
_STATE_HELP = {
    "failing": "errors since its last success; polled again after a backoff",
    "disabled": "not polled; the reason says who disabled it and what enables it again",
    "stale": "answers, but no new entry for much longer than its usual rhythm",
    "deferred": "its host asked newsflow to wait (HTTP 429/503 with Retry-After)",
    "new": "added, or re-enabled, and not polled (successfully) since",
    "healthy": "answering, bringing entries at its usual rhythm",
}


def _root(request: Request) -> str:
    """The relative way from this page back to the console's root (``../`` per level),
    so every link works under any mount point and Airflow base URL."""
    path = request.url.path[len(request.scope.get("root_path", "")):] or "/"
    return "../" * max(0, path.count("/") - 1)


def page(request: Request, user, template: str, **values: Any) -> HTMLResponse:
    action = None
    if (action_id := request.query_params.get("action", "")).isdigit():
        with backend.connection() as conn:  # the message shown is the audit row, never the URL's text
            action = audit.get(conn, int(action_id))
    body = _templates.get_template(template).render(
        root=_root(request), user=user.get_name(), action=action, states=FEED_STATES,
        state_help=_STATE_HELP, csrf=security.csrf_token(user.get_name()),
        can_edit_feeds=security.may(user, "PUT", POLL_DAG),
        can_edit_entries=security.may(user, "PUT", INGEST_DAG),
        settings=backend.settings(), **values)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})
