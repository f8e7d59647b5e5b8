"""The console's Events page (issue 17): events above stories — latest, biggest, those an
outlet covered — an event's stories with their outlets and citations, and the "Same event"
section of a story's page. Routes registered on the console app (imported at the end of
``app.py``); every query is a ``newsflow.storage`` function.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from airflow.api_fastapi.core_api.security import GetUserDep

from ...storage import citations as citation_store
from ...storage import events as event_store
from . import backend
from .app import _page, app


def _events(outlet: str | None, biggest: bool, page: int) -> dict:
    size = backend.settings().console_page_size
    page = max(1, page)
    outlet = (outlet or "").strip() or None
    with backend.connection() as conn:
        rows = event_store.latest(conn, outlet=outlet, biggest=biggest, min_stories=1 if outlet else 2,
                                  limit=size + 1, offset=(page - 1) * size)
    return {"events": rows[:size], "more": len(rows) > size, "outlet": outlet or "", "biggest": biggest,
            "page": page}


@app.get("/events", response_class=HTMLResponse)
def events_page(request: Request, user: GetUserDep, outlet: str | None = None, biggest: bool = False,
                page: int = 1):
    data = _events(outlet, biggest, page)
    link = lambda **kw: "events?" + urlencode({k: v for k, v in {  # noqa: E731
        "outlet": data["outlet"] or None, "biggest": 1 if data["biggest"] else None, **kw}.items() if v})
    return _page(request, user, "events.html", nav="events", link=link, **data)


@app.get("/api/events")
def events_api(outlet: str | None = None, biggest: bool = False, page: int = 1):
    return JSONResponse(jsonable_encoder(_events(outlet, biggest, page)))


def _event(event_id: int) -> dict:
    with backend.connection() as conn:
        event = event_store.get(conn, event_id)
        if event is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {event_id}")
        return {"event": event, "stories": event_store.stories(conn, event_id),
                "citations": citation_store.of_event(conn, event_id)}


@app.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, user: GetUserDep, event_id: int):
    return _page(request, user, "event.html", nav="events", **_event(event_id))


@app.get("/api/events/{event_id}")
def event_api(event_id: int):
    return JSONResponse(jsonable_encoder(_event(event_id)))


def same_event(conn, story_id: int) -> dict:
    """For a story's page: its event, the event's other stories and its citations."""
    event_id = event_store.event_of_story(conn, story_id)
    if event_id is None:
        return {"event": None, "others": [], "citations": []}
    return {"event": event_store.get(conn, event_id),
            "others": [s for s in event_store.stories(conn, event_id) if s["story_id"] != story_id],
            "citations": citation_store.of_event(conn, event_id)}
