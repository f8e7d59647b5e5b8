"""The console's Events page and a story's "Same event" section (issue 17), against a real
Airflow API server with the plugin (tests/console_server.py) and the sample world loaded in
its news database: the JSON API and pages as a viewer, then the pages in headless Chromium."""

from __future__ import annotations

import re

import pytest

from conftest import sql
from newsflow.config import Settings
from newsflow.pipeline import run_once
from newsflow.sampleworld import SAMPLE_DIR, SampleServer
from test_console_browser import SHOTS, signed_in, skip_without_browser

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ISIS = "Fewer than 1,000 Islamic State fighters remain in Iraq and Syria, US-led coalition says"
HERALD = "Coalition puts Islamic State strength below 1,000 as jihadists retreat to desert hideouts"


@pytest.fixture(scope="module")
def isis_event(console, tmp_path_factory) -> dict:
    """The sample world in the console's database (once per session: another module may have
    loaded it already); the ISIS event and the Herald's story."""
    url = console.news
    if not sql(url, "SELECT 1 FROM news.events WHERE label = %s", (ISIS,)):
        tmp = tmp_path_factory.mktemp("events_world")
        settings = Settings(database_url=url, data_dir=str(tmp / "state"), allow_private_networks=True,
                            per_host_delay=0.0, per_host_concurrency=4, extract_workers=1)
        with SampleServer() as sample:
            run_once(settings, sample.render_feeds_file(SAMPLE_DIR / "feeds.yaml", tmp / "feeds.yaml"))
    [event] = sql(url, "SELECT id FROM news.events WHERE label = %s", (ISIS,))
    [herald] = sql(url, "SELECT id FROM news.stories WHERE title = %s", (HERALD,))
    return {"id": event["id"], "herald_story": herald["id"]}


def test_events_api_and_pages(console, isis_event):
    with console.client("viewer") as viewer:
        listed = viewer.get("/newsflow/api/events").json()["events"]
        isis = next(e for e in listed if e["id"] == isis_event["id"])
        assert isis["story_count"] == 2 and "The Daily Herald" in isis["outlets"]
        by_outlet = viewer.get("/newsflow/api/events", params={"outlet": "The Daily Herald"}).json()["events"]
        assert isis_event["id"] in [e["id"] for e in by_outlet]
        assert all("The Daily Herald" in e["outlets"] for e in by_outlet)
        assert viewer.get("/newsflow/api/events", params={"outlet": "No Such Outlet"}).json()["events"] == []
        biggest = viewer.get("/newsflow/api/events", params={"biggest": 1}).json()["events"]
        assert biggest[0]["outlet_count"] == max(e["outlet_count"] for e in biggest)

        detail = viewer.get(f"/newsflow/api/events/{isis_event['id']}").json()
        assert [s["title"] for s in detail["stories"]] == [ISIS, HERALD]
        assert {(c["citing_publisher"], c["cited_publisher"]) for c in detail["citations"]} >= {
            ("NewsDigest", "Reuters Wire"), ("NewsDigest", "NBC News"), ("NewsDigest", "The Sunday Times")}
        assert viewer.get("/newsflow/api/events/999999").status_code == 404

        page = viewer.get(f"/newsflow/stories/{isis_event['herald_story']}", headers={"accept": "text/html"}).text
        same = page[page.index('id="same-event"'):]
        assert ISIS in same and "Sunday Times" in same


@skip_without_browser
def test_operator_follows_an_event_from_the_events_page(console, isis_event):
    from playwright.sync_api import expect

    with signed_in(console, "viewer", "viewer-pw") as page:
        page.get_by_role("link", name="Newsflow", exact=True).click()
        page.wait_for_url(re.compile(r"/plugin/newsflow"))
        frame = page.frame_locator("iframe[title='Newsflow']")
        frame.locator("#nav-events").click()
        row = frame.locator("#events tr", has_text="Islamic State fighters remain")
        expect(row).to_contain_text("The Daily Herald")
        frame.locator("#event-filter input[name=outlet]").fill("NewsDigest")
        frame.locator("#event-filter button").click()
        expect(frame.locator("#events")).to_contain_text("Islamic State fighters remain")
        page.screenshot(path=SHOTS / "10-events.png")
        frame.locator("#events a.name", has_text="Islamic State fighters remain").click()
        expect(frame.locator("#event-stories tbody tr")).to_have_count(2)
        expect(frame.locator("#event-citations")).to_contain_text("Sunday Times")
        page.screenshot(path=SHOTS / "11-event.png", full_page=True)
        frame.locator("#event-stories a", has_text="Coalition puts Islamic State").click()
        expect(frame.locator("#same-event")).to_contain_text("Islamic State fighters remain")
