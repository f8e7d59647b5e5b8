"""The console's FastAPI app: server-rendered pages (Jinja2, autoescape) and a JSON API.

Imported lazily by ``plugins/newsflow_console.py`` on the first request, in the API server
only. Every route requires a signed-in Airflow user (app-level dependency) and read access
to the newsflow DAGs; actions require edit access and, for cookie-authenticated form posts,
a same-origin request with a CSRF token (:mod:`.security`). Actions are
``newsflow.operations`` functions; every query is a ``newsflow.storage`` function.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow.api_fastapi.core_api.security import GetUserDep, get_user

from ... import operations as ops
from ... import health
from ...health import plural, span
from ...models import FEED_STATES, StaleRule
from ...storage import articles as article_store
from ...storage import audit
from ...storage import entries as entry_store
from ...storage import feeds as feed_store
from ...storage import fetch_log, run_counts, task_failures
from ...storage import stories as story_store
from . import backend, charts, security
from .security import INGEST_DAG, MAINTENANCE_DAG, POLL_DAG, can_edit_entries, can_edit_feeds, can_read

app = FastAPI(title="newsflow ops console", dependencies=[Depends(get_user), can_read],
              docs_url=None, redoc_url=None, openapi_url=None)


@app.middleware("http")
async def _frame_only_in_airflow(request: Request, call_next) -> Response:
    """Clickjacking: the pages act on a click with the ambient Airflow session (SameSite=Lax
    lets a page on another port of the same host frame them). Only the Airflow UI, which
    is served from this very origin (or the configured [api] base_url), may frame them.
    Set on every response, refusals included."""
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = "frame-ancestors " + " ".join(security.frame_ancestors(request))
    response.headers["X-Frame-Options"] = "SAMEORIGIN"  # browsers without CSP level 2
    return response

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
_BACK = re.compile(r"(|feeds|feeds/\d+|stories|stories/\d+|pipeline)(\?[\w=&%+.\-]*)?")


def _root(request: Request) -> str:
    """The relative way from this page back to the console's root (``../`` per level),
    so every link works under any mount point and Airflow base URL."""
    path = request.url.path[len(request.scope.get("root_path", "")):] or "/"
    return "../" * max(0, path.count("/") - 1)


def _page(request: Request, user, template: str, **values: Any) -> HTMLResponse:
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


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _done(request: Request, action, back: str) -> Response:
    """After an action: JSON for API clients, else POST -> 303 -> the page, with the action."""
    if _wants_json(request):
        return JSONResponse(jsonable_encoder({"action": dataclasses.asdict(action), "message": action.summary()}))
    target = back if _BACK.fullmatch(back or "") else ""
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{_root(request)}{target}{sep}action={action.id}", status.HTTP_303_SEE_OTHER)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Inside the UI's iframe a bare JSON error is useless: say what to do instead."""
    if _wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    advice = {401: "Your Airflow session has ended: reload the page to sign in again.",
              403: "Your Airflow user may not do this (it needs permission to edit the newsflow DAGs), "
                   "or the form is too old: reload the page and try again."}.get(exc.status_code, "")
    body = _templates.get_template("error.html").render(status=exc.status_code, detail=str(exc.detail),
                                                        advice=advice, root=_root(request))
    return HTMLResponse(body, status_code=exc.status_code)


# --- Feeds ---------------------------------------------------------------------------------------

def _feeds_query(state: str | None, q: str | None, sort: str, page: int) -> dict:
    if state and state not in FEED_STATES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown state {state!r}")
    if sort not in feed_store.HEALTH_SORTS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown sort {sort!r}")
    current = backend.settings()
    size = current.console_page_size
    with backend.connection() as conn:
        rows, counts = feed_store.health(conn, StaleRule.from_settings(current), state=state or None,
                                         q=(q or "").strip() or None, sort=sort, limit=size,
                                         offset=(max(1, page) - 1) * size)
    total = counts.get(state, 0) if state else sum(counts.values())
    return {"feeds": rows, "counts": counts, "total": total, "page": max(1, page),
            "pages": max(1, math.ceil(total / size)), "state": state or "", "q": q or "", "sort": sort}


@app.get("/", response_class=HTMLResponse)
@app.get("/feeds", response_class=HTMLResponse)
def feeds_page(request: Request, user: GetUserDep, state: str | None = None, q: str | None = None,
               sort: str = "state", page: int = 1):
    data = _feeds_query(state, q, sort, page)
    link = lambda **kw: "feeds?" + urlencode({k: v for k, v in {  # noqa: E731
        "state": data["state"], "q": data["q"], "sort": data["sort"], **kw}.items() if v not in ("", None, 1)})
    return _page(request, user, "feeds.html", nav="feeds", link=link, sorts=feed_store.HEALTH_SORTS, **data)


@app.get("/api/feeds")
def feeds_api(state: str | None = None, q: str | None = None, sort: str = "state", page: int = 1):
    data = _feeds_query(state, q, sort, page)
    data["feeds"] = [_feed_json(f) for f in data["feeds"]]
    return JSONResponse(jsonable_encoder(data))


def _feed_json(feed) -> dict:
    """A FeedStatus as the API gives it: its fields, its label and why it is in its state."""
    return {**dataclasses.asdict(feed), "label": feed.label, "reason": health.reason(feed)}


def _feed_detail(feed_id: int, entries_page: int) -> dict:
    current = backend.settings()
    now = datetime.now(timezone.utc)
    bucket = timedelta(hours=max(1, current.console_history_days * 24 // 84))  # ~84 slots
    n = math.ceil(timedelta(days=current.console_history_days) / bucket)
    since = (now - bucket * (n - 1)).replace(minute=0, second=0, microsecond=0)
    size = current.console_page_size
    with backend.connection() as conn:
        rows, _ = feed_store.health(conn, StaleRule.from_settings(current), ids=[feed_id])
        if not rows:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no feed {feed_id}")
        history = fetch_log.feed_history(conn, feed_id, since=since, bucket_seconds=int(bucket.total_seconds()))
        polls = fetch_log.feed_polls(conn, feed_id, limit=20)
        entries = entry_store.of_feed(conn, feed_id, limit=size, offset=(max(1, entries_page) - 1) * size)
        actions = audit.recent(conn, feed_id=feed_id, limit=size)
        asked = audit.last_run_started(conn, feed_id, "poll now")
        result = fetch_log.feed_polls(conn, feed_id, limit=1, since=asked.at) if asked else []
    return {"feed": rows[0], "chart": charts.feed_history(history, since, bucket, n), "history_days":
            current.console_history_days, "bucket_hours": int(bucket.total_seconds() // 3600), "polls": polls,
            "entries": entries, "entries_page": max(1, entries_page), "page_size": size, "actions": actions,
            "asked": asked, "asked_result": result[0] if result else None}


# Run states after which nothing changes any more (Airflow's DagRunState).
_RUN_ENDED = {"success", "failed"}


def _follow(request: Request, data: dict) -> dict | None:
    """The feed's latest "Poll now": its run's state (Airflow's API, as the user) and, once
    the run ended, what the poll found. While the run is queued or running the page reloads
    itself every NEWSFLOW_CONSOLE_FOLLOW_REFRESH seconds."""
    asked = data["asked"]
    if asked is None:
        return None
    try:
        run = backend.AirflowAPI(request, backend.settings()).run(asked.dag_id, asked.dag_run_id)
        state, error = run.get("state") or "queued", None
    except backend.AirflowAPIError as exc:
        state, error = "unknown", str(exc)
    ended = state in _RUN_ENDED
    return {"action": asked, "state": state, "error": error, "ended": ended,
            "result": data["asked_result"] if ended else None,
            "refresh": None if ended or error else backend.settings().console_follow_refresh}


@app.get("/feeds/{feed_id}", response_class=HTMLResponse)
def feed_page(request: Request, user: GetUserDep, feed_id: int, entries_page: int = 1):
    data = _feed_detail(feed_id, entries_page)
    return _page(request, user, "feed.html", nav="feeds", follow=_follow(request, data), **data)


@app.get("/api/feeds/{feed_id}")
def feed_api(request: Request, feed_id: int, entries_page: int = 1):
    data = _feed_detail(feed_id, entries_page)
    feed = data["feed"]
    follow = _follow(request, data)
    return JSONResponse(jsonable_encoder({
        "feed": _feed_json(feed),
        "polls": data["polls"], "entries": data["entries"],
        "actions": [dataclasses.asdict(a) | {"message": a.summary()} for a in data["actions"]],
        "poll_now": follow and {k: v for k, v in follow.items() if k != "action"}
        | {"dag_run_id": follow["action"].dag_run_id, "asked_at": follow["action"].at}}))


# --- actions -------------------------------------------------------------------------------------
# Plain (threadpool) handlers: they query the database and may call Airflow's API, which is
# this very server, so they must not block its event loop.

def _act(request: Request, action, back: str) -> Response:
    try:
        with backend.connection() as conn:
            done = action(conn)
    except ops.OperationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _done(request, done, back)


@app.post("/feeds/{feed_id}/poll", dependencies=[can_edit_feeds, Depends(security.require_csrf)])
def poll_now(request: Request, user: GetUserDep, feed_id: int, back: str = Form("")):
    """Poll now: the feed is made due and a run of the poll DAG for it is triggered through
    Airflow's REST API as this user (if that fails, the next scheduled run takes it)."""
    api = backend.AirflowAPI(request, backend.settings())
    # asked before the transaction: only the trigger, which the audit row describes, runs
    # while the feed's row is locked
    paused = " (the DAG is paused: it runs once unpaused)" if _paused(api) else ""

    def trigger(feed: dict) -> ops.Started:
        try:
            run = api.trigger(POLL_DAG, {"feed": str(feed["id"])},
                              note=f"Poll now: {feed['label']}, from the newsflow console by {user.get_name()}")
        except backend.AirflowAPIError as exc:
            return ops.Started(f"{exc}; the feed is due: the next scheduled poll takes it")
        return ops.Started(f"run {run['dag_run_id']} of {POLL_DAG} {run.get('state') or 'queued'}{paused}; "
                           "this page shows its outcome", POLL_DAG, run["dag_run_id"])

    return _act(request, lambda conn: ops.poll_now(conn, feed_id, actor=user.get_name(), source=ops.CONSOLE,
                                                   trigger=trigger), back or f"feeds/{feed_id}")


def _paused(api: backend.AirflowAPI, dag_id: str = POLL_DAG) -> bool:
    try:
        return bool(api.dag(dag_id).get("is_paused"))
    except backend.AirflowAPIError:
        return False


def _ingest_now(request: Request, user) -> ops.Trigger:
    """Requeued entries are loaded at once: a run of the ingest DAG through Airflow's API,
    as this user. Should that fail, the next scheduled poll announces the due entries
    (the asset that starts ingestion), so nobody has to trigger anything."""
    api = backend.AirflowAPI(request, backend.settings())
    paused = " (the DAG is paused: it runs once unpaused)" if _paused(api, INGEST_DAG) else ""

    def trigger(feed: dict) -> ops.Started:
        try:
            run = api.trigger(INGEST_DAG, {}, note=f"Requeue: {feed['label']}, from the newsflow console "
                                                   f"by {user.get_name()}")
        except backend.AirflowAPIError as exc:
            return ops.Started(f"{exc}; {ops.INGEST_LATER.text}")
        return ops.Started(f"run {run['dag_run_id']} of {INGEST_DAG} {run.get('state') or 'queued'} to load "
                           f"them{paused}", INGEST_DAG, run["dag_run_id"])

    return trigger


@app.post("/feeds/{feed_id}/enable", dependencies=[can_edit_feeds, Depends(security.require_csrf)])
def enable(request: Request, user: GetUserDep, feed_id: int, back: str = Form("")):
    return _act(request, lambda conn: ops.enable(conn, feed_id, actor=user.get_name(), source=ops.CONSOLE),
                back or f"feeds/{feed_id}")


@app.post("/feeds/{feed_id}/disable", dependencies=[can_edit_feeds, Depends(security.require_csrf)])
def disable(request: Request, user: GetUserDep, feed_id: int, reason: str = Form(""), back: str = Form("")):
    return _act(request, lambda conn: ops.disable(conn, feed_id, reason, actor=user.get_name(),
                                                  source=ops.CONSOLE), back or f"feeds/{feed_id}")


@app.post("/feeds/{feed_id}/requeue-failed", dependencies=[can_edit_entries, Depends(security.require_csrf)])
def requeue_failed(request: Request, user: GetUserDep, feed_id: int, back: str = Form("")):
    trigger = _ingest_now(request, user)
    return _act(request, lambda conn: ops.requeue_failed(conn, feed_id, actor=user.get_name(), source=ops.CONSOLE,
                                                         trigger=trigger), back or f"feeds/{feed_id}")


@app.post("/entries/{entry_id}/requeue", dependencies=[can_edit_entries, Depends(security.require_csrf)])
def requeue_entry(request: Request, user: GetUserDep, entry_id: int, back: str = Form("")):
    trigger = _ingest_now(request, user)
    return _act(request, lambda conn: ops.requeue_entry(conn, entry_id, actor=user.get_name(), source=ops.CONSOLE,
                                                        trigger=trigger), back or "pipeline")


# --- Stories -------------------------------------------------------------------------------------

def _stories(q: str | None, all_stories: bool, page: int) -> dict:
    size = backend.settings().console_page_size
    with backend.connection() as conn:
        rows = story_store.latest(conn, q=(q or "").strip() or None, syndicated_only=not all_stories,
                                  limit=size + 1, offset=(max(1, page) - 1) * size)
    return {"stories": rows[:size], "more": len(rows) > size, "q": q or "", "all": all_stories,
            "page": max(1, page)}


@app.get("/stories", response_class=HTMLResponse)
def stories_page(request: Request, user: GetUserDep, q: str | None = None, all: bool = False, page: int = 1):
    data = _stories(q, all, page)
    link = lambda **kw: "stories?" + urlencode({k: v for k, v in {  # noqa: E731
        "q": data["q"], "all": "1" if data["all"] else "", **kw}.items() if v not in ("", None, 1)})
    return _page(request, user, "stories.html", nav="stories", link=link, **data)


@app.get("/api/stories")
def stories_api(q: str | None = None, all: bool = False, page: int = 1):
    return JSONResponse(jsonable_encoder(_stories(q, all, page)))


def _story(story_id: int) -> dict:
    with backend.connection() as conn:
        story = story_store.get(conn, story_id)
        if story is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no story {story_id}")
        return {"story": story, "outlets": story_store.outlets(conn, story_id),
                "articles": article_store.of_story(conn, story_id),
                "same_event": events_pages.same_event(conn, story_id)}


@app.get("/stories/{story_id}", response_class=HTMLResponse)
def story_page(request: Request, user: GetUserDep, story_id: int):
    return _page(request, user, "story.html", nav="stories", **_story(story_id))


@app.get("/api/stories/{story_id}")
def story_api(story_id: int):
    return JSONResponse(jsonable_encoder(_story(story_id)))


# --- Pipeline ------------------------------------------------------------------------------------

def _pipeline(request: Request, failed_page: int) -> dict:
    current = backend.settings()
    size = current.console_page_size
    api = backend.AirflowAPI(request, current)
    runs, runs_error = {}, None
    for dag_id in (POLL_DAG, INGEST_DAG, MAINTENANCE_DAG):
        try:
            runs[dag_id] = api.runs(dag_id, current.console_runs)
        except backend.AirflowAPIError as exc:
            runs[dag_id], runs_error = [], str(exc)
    with backend.connection() as conn:
        hours = article_store.loaded_per_hour(conn, current.console_pipeline_hours)
        queue = entry_store.queue_counts(conn)
        failed = entry_store.failed_latest(conn, limit=size, offset=(max(1, failed_page) - 1) * size)
        pending = entry_store.pending_latest(conn, limit=size)
        for dag_id, dag_runs in runs.items():
            counts = run_counts.for_runs(conn, dag_id, [r["dag_run_id"] for r in dag_runs])
            failures = task_failures.for_runs(conn, dag_id, [r["dag_run_id"] for r in dag_runs])
            for r in dag_runs:
                r["counts"] = _run_summary(dag_id, counts.get(r["dag_run_id"], []))
                r["failures"] = failures.get(r["dag_run_id"], [])
                start, end = (datetime.fromisoformat(r[k]) if r.get(k) else None for k in ("start_date", "end_date"))
                r["took"] = span((end - start).total_seconds()) if start and end else ""
    return {"chart": charts.per_hour(hours), "hours": current.console_pipeline_hours,
            "loaded": sum(h["articles"] for h in hours), "queue": queue, "failed": failed, "pending": pending,
            "failed_page": max(1, failed_page), "page_size": size, "runs": runs, "runs_error": runs_error}


# What each DAG's run is summed up by: (task, count, words), from news.run_counts.
_RUN_COUNTS = {
    POLL_DAG: [("poll_shard", "feeds", "feeds polled"), ("poll_shard", "new_entries", "new entries"),
               ("poll_shard", "failed", "failed"), ("poll_shard", "not_modified", "not modified")],
    INGEST_DAG: [("ingest_worker", "claimed", "entries"), ("ingest_worker", "loaded", "new articles"),
                 ("ingest_worker", "exact_duplicates", "exact duplicates"),
                 ("ingest_worker", "near_duplicates", "joined a story"), ("ingest_worker", "failed", "failed")],
    MAINTENANCE_DAG: [("feed_health", state, state) for state in FEED_STATES]
    + [("feed_health", "newly_stale", "newly stale")],
}


def _run_summary(dag_id: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    parts = []
    for task_id, key, words in _RUN_COUNTS[dag_id]:
        values = [r["counts"].get(key) for r in rows if r["task_id"] == task_id]
        if any(v is not None for v in values):
            parts.append(f"{sum(v or 0 for v in values)} {words}")
    if dag_id == POLL_DAG:
        # a shard that failed reports no counts: say how many planned feeds that left out
        planned = sum(r["counts"].get("due_feeds") or 0 for r in rows if r["task_id"] == "plan_poll")
        polled = sum(r["counts"].get("feeds") or 0 for r in rows if r["task_id"] == "poll_shard")
        if any(r["task_id"] == "plan_poll" for r in rows):
            parts.insert(0, f"{plural(planned, 'feed', 'feeds')} due")
            if polled < planned:
                parts.insert(1, f"{planned - polled} not polled (a shard failed or has not finished)")
    return ", ".join(parts)


@app.get("/pipeline", response_class=HTMLResponse)
def pipeline_page(request: Request, user: GetUserDep, failed_page: int = 1):
    return _page(request, user, "pipeline.html", nav="pipeline", **_pipeline(request, failed_page))


@app.get("/api/pipeline")
def pipeline_api(request: Request, failed_page: int = 1):
    data = _pipeline(request, failed_page)
    data.pop("chart")
    return JSONResponse(jsonable_encoder(data))


# --- assets --------------------------------------------------------------------------------------

def _asset(name: str, media_type: str) -> Response:
    body = (resources.files("newsflow.airflow.console") / "static" / name).read_bytes()
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


@app.get("/console.css")
def stylesheet() -> Response:
    return _asset("console.css", "text/css")


@app.get("/icon.svg")
def icon() -> Response:
    return _asset("icon.svg", "image/svg+xml")


@app.get("/api/whoami")
def whoami(user: GetUserDep) -> dict:
    return {"username": user.get_name(), "can_edit_feeds": security.may(user, "PUT", POLL_DAG),
            "can_edit_entries": security.may(user, "PUT", INGEST_DAG)}


from . import events_pages  # noqa: E402  (the Events routes, issue 17; imports this module)
