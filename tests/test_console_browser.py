"""The console in a real browser: headless Chromium (Debian's package, never downloaded)
driven by Playwright, against a real Airflow API server with the plugin loaded
(tests/console_server.py). It signs in on Airflow's login page, opens Newsflow from the
navigation, finds a failing feed of the fault server with its error, re-enables a feed
newsflow disabled, and checks the database. Screenshots of every page go to screenshots/
(git-ignored); docs/console-feeds.png is one of them."""

from __future__ import annotations

import contextlib
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import REPO_ROOT, sql
from faultserver import FaultServer, rss
from newsflow import db
from newsflow.config import Settings
from newsflow.maintenance import measure_rhythm
from newsflow.models import FeedSpec
from newsflow.pipeline import run_once, sync_feeds
from newsflow.poll import poll_feeds, select_feeds
from newsflow.sampleworld import SAMPLE_DIR, SampleServer

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make setup installs the test extra)"
    if not Path(CHROMIUM).exists():
        return "no Chromium: install Debian's chromium package (.ci/run does: apt-get install -y chromium)"
    return None


skip_without_browser = pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")


@pytest.fixture(scope="module")
def world(console, tmp_path_factory):
    """The console's news database with a sample news world and a few troubled feeds."""
    url = console.news
    tmp = tmp_path_factory.mktemp("world")
    settings = Settings(database_url=url, data_dir=str(tmp / "state"), allow_private_networks=True,
                        per_host_delay=0.0, per_host_concurrency=4, extract_workers=1,
                        connect_timeout=5, read_timeout=5, total_timeout=15)
    with SampleServer() as sample, FaultServer() as fs:
        run_once(settings, sample.render_feeds_file(SAMPLE_DIR / "feeds.yaml", tmp / "feeds.yaml"))
        items = [{"title": f"Market wrap {i}", "link": f"https://quiet.example/{i}", "guid": f"q{i}",
                  "description": "x"} for i in range(2)]
        troubled = {"Failing Feed": fs.add("/failing.xml", "<h1>Internal Server Error</h1>", status=500),
                    "Gone Feed": fs.add("/gone.xml", "gone", status=410),
                    "Rate Limited Feed": fs.add("/limited.xml", "slow down", status=429,
                                                headers={"Retry-After": "3600"}),
                    "Quiet Feed": fs.add("/quiet.xml", rss(items), content_type="application/rss+xml")}
        sync_feeds(url, [FeedSpec(url=u, publisher="Fault Server", name=name) for name, u in troubled.items()])
        ids = {r["name"]: r["id"] for r in sql(url, "SELECT id, name FROM news.feeds")}
        # the 429 with Retry-After comes last: it defers every other feed of that host
        for batch in (["Failing Feed", "Gone Feed"], ["Quiet Feed"], ["Rate Limited Feed"]):
            with db.connect(url) as conn:
                feeds = select_feeds(conn, feed_ids=[ids[n] for n in batch])
            poll_feeds(url, settings, feeds)
    # history for the charts: the Herald answered every 4 hours for two weeks, brought entries
    # every 12 hours, then silently stopped 3 days ago; the failing feed worked until yesterday
    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    herald, failing = ids["The Daily Herald"], ids["Failing Feed"]
    for k in range(84):
        at = now - timedelta(hours=4 * k)
        new = 1 if k > 18 and k % 3 == 0 else 0
        sql(url, """INSERT INTO news.fetch_log (kind, feed_id, url, fetched_at, status, bytes, duration_ms, new_entries)
                    VALUES ('feed', %s, 'herald', %s, %s, 4000, 40, %s)""", (herald, at, 200 if new else 304, new))
        if new:
            sql(url, """INSERT INTO news.entries (feed_id, guid, link, title, status, first_seen_at)
                        VALUES (%s, %s, %s, 'Herald archive item', 'loaded', %s)""",
                (herald, f"old-{k}", f"https://herald.example/{k}", at))
        ok = k > 6
        sql(url, """INSERT INTO news.fetch_log (kind, feed_id, url, fetched_at, status, bytes, duration_ms, new_entries, error)
                    VALUES ('feed', %s, 'failing', %s, %s, 900, 30, %s, %s)""",
            (failing, at, 200 if ok else 500, (1 if k % 4 == 0 else 0) if ok else None,
             None if ok else "HTTP 500"))
    sql(url, "UPDATE news.entries SET first_seen_at = first_seen_at - interval '3 days' WHERE feed_id = %s "
             "AND guid NOT LIKE 'old-%%'", (herald,))
    sql(url, "UPDATE news.fetch_log SET fetched_at = fetched_at - interval '3 days' WHERE feed_id = %s "
             "AND url <> 'herald'", (herald,))
    sql(url, "UPDATE news.feeds SET created_at = now() - interval '20 days'")
    measure_rhythm(url, settings)
    return {"url": url, "ids": ids}


@contextlib.contextmanager
def signed_in(console, user: str, password: str):
    """A page of headless Chromium signed in to the console's Airflow as ``user``; the
    browser is closed afterwards, whatever the test did."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            ctx.set_default_timeout(30_000)
            page = ctx.new_page()
            login(page, console.base, user, password)
            yield page
        finally:
            browser.close()


def login(page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r"/auth/login"), timeout=60_000)
    page.locator("input[name=username], #username").first.fill(user)
    page.locator("input[name=password], #password, input[type=password]").first.fill(password)
    page.get_by_role("button", name=re.compile("sign in|log ?in", re.I)).click()
    page.wait_for_url(lambda u: "/auth/login" not in u, timeout=60_000)


@skip_without_browser
def test_operator_finds_a_failing_feed_and_re_enables_a_disabled_one(console, world):
    from playwright.sync_api import expect

    ids = world["ids"]
    with signed_in(console, "admin", "admin-pw") as page:
        browser = page.context.browser  # the viewer and the anonymous visitor below: contexts of their own

        # Newsflow in Airflow's own navigation: the console in the UI's iframe, same login
        page.get_by_role("link", name="Newsflow", exact=True).click()
        page.wait_for_url(re.compile(r"/plugin/newsflow"))
        frame = page.frame_locator("iframe[title='Newsflow']")
        expect(frame.locator("#user")).to_have_text("admin")
        expect(frame.locator("#feeds")).to_contain_text("Reuters Wire - World & Markets")
        expect(frame.locator("#feeds tbody tr").first).to_have_class(re.compile("row-failing"))
        page.screenshot(path=SHOTS / "01-feeds.png")

        # failing first, with the error the fault server caused
        frame.locator("#state-filter a[data-state=failing]").click()
        failing = frame.locator(f"#feeds tr[data-feed-id='{ids['Failing Feed']}']")
        expect(failing).to_contain_text("failing")
        expect(failing.locator("td.why")).to_contain_text("HTTP 500")
        expect(frame.locator(f"#feeds tr[data-feed-id='{ids['Rate Limited Feed']}'] td.why")).to_contain_text(
            "asked us to wait (Retry-After 3600s)")
        page.screenshot(path=SHOTS / "02-feeds-failing.png")
        failing.locator("a.name").click()
        expect(frame.locator("#feed-name")).to_have_text("Failing Feed")
        expect(frame.locator("#polls")).to_contain_text("HTTP 500")
        page.screenshot(path=SHOTS / "03-feed-failing.png", full_page=True)

        # other states, each with why
        frame.locator("#nav-feeds").click()
        frame.locator("#state-filter a[data-state=stale]").click()
        stale = frame.locator(f"#feeds tr[data-feed-id='{ids['The Daily Herald']}']")
        expect(stale.locator("td.why")).to_contain_text("usually every 12 h")
        frame.locator("#state-filter a[data-state=deferred]").click()
        expect(frame.locator(f"#feeds tr[data-feed-id='{ids['Quiet Feed']}'] td.why")).to_contain_text("Retry-After")
        frame.locator(f"#feeds tr[data-feed-id='{ids['Quiet Feed']}'] a.name").click()
        expect(frame.locator("#feed-name")).to_have_text("Quiet Feed")
        frame.locator("#nav-feeds").click()
        frame.locator("#feeds a.name:text-is('The Daily Herald')").click()
        expect(frame.locator("#why")).to_contain_text("answers, but no new entry for 3 d")
        page.screenshot(path=SHOTS / "04-feed-stale.png", full_page=True)

        # re-enable the feed newsflow disabled (HTTP 410), then check the database
        frame.locator("#nav-feeds").click()
        frame.locator("#state-filter a[data-state=disabled]").click()
        frame.locator(f"#feeds tr[data-feed-id='{ids['Gone Feed']}'] a.name").click()
        expect(frame.locator("#why")).to_contain_text("HTTP 410 Gone")
        expect(frame.locator("#why")).to_contain_text("stays disabled until an operator re-enables it")
        frame.get_by_role("button", name="Re-enable").click()
        expect(frame.locator("#flash")).to_contain_text(f"admin (console) re-enabled feed {ids['Gone Feed']} "
                                                        "(Gone Feed): was disabled: HTTP 410 Gone")
        expect(frame.locator("#audit")).to_contain_text("re-enabled")
        expect(frame.locator(".head .badge")).to_have_text("new")  # errors cleared, due now
        expect(frame.locator("#why")).to_contain_text("errors cleared; not polled since")
        page.screenshot(path=SHOTS / "05-feed-re-enabled.png", full_page=True)
        [gone] = sql(world["url"], "SELECT enabled, disabled_reason, consecutive_errors, next_poll_at <= now() AS due "
                                   "FROM news.feeds WHERE id = %s", (ids["Gone Feed"],))
        assert gone == {"enabled": True, "disabled_reason": None, "consecutive_errors": 0, "due": True}
        [action] = sql(world["url"], "SELECT actor, source, action FROM news.operator_actions WHERE feed_id = %s",
                       (ids["Gone Feed"],))
        assert action == {"actor": "admin", "source": "console", "action": "enable"}

        # stories carried by several outlets, a title search, a story, the pipeline
        frame.locator("#nav-stories").click()
        frame.locator("#story-search input[name=q]").fill("bank canad")
        frame.locator("#story-search button").click()
        expect(frame.locator("#stories tbody tr")).to_have_count(1)
        expect(frame.locator("#stories")).to_contain_text("Bank of Canada cuts key rate")
        frame.locator("#nav-stories").click()
        story = frame.locator("#stories tr", has_text="Islamic State fighters")
        expect(story).to_contain_text("NewsDigest excerpt")
        page.screenshot(path=SHOTS / "06-stories.png")
        story.locator("a.name").click()
        expect(frame.locator("#outlets tbody tr")).to_have_count(4)
        page.screenshot(path=SHOTS / "07-story.png", full_page=True)
        frame.locator("#nav-pipeline").click()
        expect(frame.locator("#queue")).to_contain_text("articles loaded")
        expect(frame.locator("#runs")).to_contain_text("newsflow_poll_feeds")
        page.screenshot(path=SHOTS / "08-pipeline.png", full_page=True)

        # dark mode follows the Airflow UI
        page.evaluate("document.documentElement.classList.remove('light'); "
                      "document.documentElement.classList.add('dark')")
        frame.locator("#nav-feeds").click()
        expect(frame.locator("html")).to_have_class(re.compile("dark"))
        page.screenshot(path=SHOTS / "09-feeds-dark.png")

        # a link to one of Airflow's own pages opens it in the UI, not inside the iframe
        frame.locator("#nav-pipeline").click()
        frame.locator("#runs a", has_text="newsflow_poll_feeds").first.click()
        page.wait_for_url(re.compile(r"/dags/newsflow_poll_feeds$"))
        expect(page.locator("iframe[title='Newsflow']")).to_have_count(0)
        page.context.close()

        # a viewer reads, but is offered no action
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx.set_default_timeout(30_000)
        page = ctx.new_page()
        login(page, console.base, "viewer", "viewer-pw")
        page.goto(f"{console.base}/plugin/newsflow/newsflow/feeds/{ids['Failing Feed']}")
        frame = page.frame_locator("iframe[title='Newsflow']")
        expect(frame.locator("#user")).to_have_text("viewer")
        expect(frame.locator("#actions")).to_contain_text("Read-only")
        expect(frame.get_by_role("button", name="Poll now")).to_have_count(0)
        page.screenshot(path=SHOTS / "10-viewer.png")
        ctx.close()

        # no session: refused
        ctx = browser.new_context()
        assert ctx.request.get(f"{console.base}/newsflow/feeds").status == 401
        ctx.close()


@skip_without_browser
def test_console_refuses_framing_and_follows_what_an_action_started(console):
    """Issue 18 in the browser: a page on another loopback origin (another port of the same
    host: same site, so the Lax session cookie is sent) cannot frame the console; Requeue
    starts ingestion and says so; Poll now shows its run's state; a failed run names its
    task and error on the Pipeline page."""
    import threading
    import uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from playwright.sync_api import expect

    url = console.news
    name = f"Browser Follow Feed {uuid.uuid4().hex[:6]}"
    sync_feeds(url, [FeedSpec(url=f"https://{uuid.uuid4().hex[:10]}.example/rss.xml", publisher="Follow Outlet",
                              name=name)])
    [feed] = sql(url, "SELECT id FROM news.feeds WHERE name = %s", (name,))
    [entry] = sql(url, """INSERT INTO news.entries (feed_id, guid, link, title, status, attempts, last_error)
                          VALUES (%s, 'b1', 'https://follow.example/1', 'Entry to requeue', 'failed', 5,
                                  'page fetch failed: HTTP 503') RETURNING id""", (feed["id"],))

    victim = f"{console.base}/newsflow/feeds/{feed['id']}"

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (f'<html><body><h1>win a prize</h1><iframe id="victim" src="{victim}" width="900" height="600" '
                    'onload="document.body.dataset.loaded = 1"></iframe></body></html>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with signed_in(console, "admin", "admin-pw") as page:

            # another origin frames the console: the browser refuses to render it there
            page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
            page.wait_for_function("document.body.dataset.loaded === '1'")
            framed = page.frame_locator("#victim")
            expect(framed.locator("#user")).to_have_count(0)
            expect(framed.get_by_role("button", name="Poll now")).to_have_count(0)
            # ... while the Airflow UI's own iframe shows it, signed in
            page.goto(f"{console.base}/plugin/newsflow/newsflow/feeds/{feed['id']}")
            frame = page.frame_locator("iframe[title='Newsflow']")
            expect(frame.locator("#user")).to_have_text("admin")

            # Requeue: ingestion starts by itself, and the flash says how
            frame.locator(f"#entries tr[data-entry-id='{entry['id']}']").get_by_role(
                "button", name="Requeue").click()
            expect(frame.locator("#flash")).to_contain_text("(was failed: page fetch failed: HTTP 503); run ")
            expect(frame.locator("#flash")).to_contain_text("of newsflow_ingest_articles queued to load them")
            [action] = sql(url, "SELECT dag_run_id FROM news.operator_actions WHERE entry_id = %s", (entry["id"],))
            assert action["dag_run_id"]

            # Poll now: the page shows the run's state and reloads itself until the run ends
            frame.get_by_role("button", name="Poll now").click()
            expect(frame.locator("#flash")).to_contain_text("this page shows its outcome")
            expect(frame.locator("#poll-now")).to_contain_text("queued")
            expect(frame.locator("meta[http-equiv=refresh]")).to_have_count(1)
            page.screenshot(path=SHOTS / "11-poll-now-followed.png", full_page=True)

            # a failed attempt of the run the requeue started: the Pipeline page names it
            sql(url, """INSERT INTO news.task_failures (dag_id, task_id, run_id, map_index, try_number, exception,
                                                      final)
                        VALUES ('newsflow_ingest_articles', 'ingest_worker', %s, 1, 4,
                                'OperationalError: could not connect to the news database', true)""",
                (action["dag_run_id"],))
            frame.locator("#nav-pipeline").click()
            failure = frame.locator("#runs tr.failure", has_text="ingest_worker [1]")
            expect(failure).to_contain_text("could not connect to the news database")
            expect(frame.locator("#pending")).to_contain_text("Entry to requeue")
            page.screenshot(path=SHOTS / "12-pipeline-failure.png", full_page=True)
    finally:
        attacker.shutdown()
        sql(url, "DELETE FROM news.operator_actions WHERE feed_id = %s", (feed["id"],))
        sql(url, "DELETE FROM news.feeds WHERE id = %s", (feed["id"],))
