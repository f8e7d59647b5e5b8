"""The console against a real Airflow API server with the plugin loaded (tests/console_server.py):
authentication through Airflow's auth manager (anonymous 401, forged 403), a viewer reads but
cannot act, actions need edit permission and, with the session cookie, a same-origin post with
a CSRF token; nothing from a feed is rendered unescaped; "poll now" triggers the poll DAG
through Airflow's REST API as the user; the JSON API; trigger-form Params are validated."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from newsflow import db
from newsflow.models import FeedSpec
from newsflow.pipeline import sync_feeds

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

XSS = "<script>alert('nf')</script>"


@pytest.fixture
def make_feed(console):
    """Feeds of this test in the console's news database, removed afterwards."""
    made: list[int] = []

    def make(name: str, **state) -> int:
        url = f"https://{uuid.uuid4().hex[:10]}.example/rss.xml"
        sync_feeds(console.news, [FeedSpec(url=url, publisher=state.pop("publisher", "Test Outlet"), name=name)])
        with db.transaction(console.news) as conn:
            feed_id = conn.execute("SELECT id FROM news.feeds WHERE url = %s", (url,)).fetchone()["id"]
            for column, value in state.items():  # fixed names from this file, never input
                conn.execute(f"UPDATE news.feeds SET {column} = %s WHERE id = %s", (value, feed_id))
        made.append(feed_id)
        return feed_id

    yield make
    with db.transaction(console.news) as conn:
        conn.execute("DELETE FROM news.operator_actions WHERE feed_id = ANY(%s)", (made,))
        conn.execute("DELETE FROM news.feeds WHERE id = ANY(%s)", (made,))


def row(console, sql: str, params=()) -> dict:
    with db.connect(console.news) as conn:
        return conn.execute(sql, params).fetchone()


PAGES = ["/newsflow/", "/newsflow/feeds", "/newsflow/feeds/1", "/newsflow/stories", "/newsflow/stories/1",
         "/newsflow/pipeline", "/newsflow/api/feeds", "/newsflow/api/feeds/1", "/newsflow/api/stories",
         "/newsflow/api/stories/1", "/newsflow/api/pipeline", "/newsflow/api/whoami", "/newsflow/console.css",
         "/newsflow/icon.svg"]
ACTIONS = ["/newsflow/feeds/1/poll", "/newsflow/feeds/1/enable", "/newsflow/feeds/1/disable",
           "/newsflow/feeds/1/requeue-failed", "/newsflow/entries/1/requeue"]


def test_anonymous_and_forged_requests_are_refused(console):
    with console.client() as anonymous:
        for path in PAGES:
            assert anonymous.get(path).status_code == 401, path
        for path in ACTIONS:
            assert anonymous.post(path, data={"reason": "x"}).status_code == 401, path
        assert anonymous.get("/newsflow/feeds", cookies={"_token": "forged"}).status_code == 403
        assert anonymous.get("/newsflow/feeds", headers={"Authorization": "Bearer forged"}).status_code == 403
        # inside the UI's iframe, an expired session says what to do (not bare JSON)
        page = anonymous.get("/newsflow/feeds", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "reload the page to sign in again" in page.text


def test_viewer_reads_but_cannot_act(console, make_feed):
    feed = make_feed("Viewer Test Feed", enabled=False, disabled_reason="HTTP 410 Gone")
    with console.client("viewer") as viewer:
        page = viewer.get(f"/newsflow/feeds/{feed}")
        assert page.status_code == 200 and "Viewer Test Feed" in page.text
        assert "read-only" in page.text and "Re-enable" not in page.text and 'name="csrf_token"' not in page.text
        for action in ("poll", "enable", "disable", "requeue-failed"):
            assert viewer.post(f"/newsflow/feeds/{feed}/{action}", data={"reason": "x"}).status_code == 403
        assert viewer.get("/newsflow/api/whoami").json() == {
            "username": "viewer", "can_edit_feeds": False, "can_edit_entries": False}
    assert row(console, "SELECT enabled FROM news.feeds WHERE id = %s", (feed,))["enabled"] is False
    assert row(console, "SELECT count(*) AS n FROM news.operator_actions WHERE feed_id = %s", (feed,))["n"] == 0


def test_admin_acts_with_a_bearer_token(console, make_feed):
    feed = make_feed("Bearer Test Feed", enabled=False, disabled_reason="10 consecutive failures; last: HTTP 500",
                     consecutive_errors=10)
    with console.client("admin", headers={"Accept": "application/json"}) as admin:
        r = admin.post(f"/newsflow/feeds/{feed}/enable")
        assert r.status_code == 200, r.text
        assert r.json()["message"] == (f"admin (console) re-enabled feed {feed} (Bearer Test Feed): was disabled: "
                                       "10 consecutive failures; last: HTTP 500; due now: the next scheduled poll "
                                       "takes it")
        state = row(console, "SELECT enabled, consecutive_errors, disabled_reason FROM news.feeds WHERE id = %s", (feed,))
        assert state == {"enabled": True, "consecutive_errors": 0, "disabled_reason": None}
        assert admin.post(f"/newsflow/feeds/{feed}/disable").status_code == 409  # no reason given
        r = admin.post(f"/newsflow/feeds/{feed}/disable", data={"reason": "publisher asked us to stop"})
        assert r.status_code == 200 and "publisher asked us to stop" in r.json()["message"]
        r = admin.post(f"/newsflow/feeds/{feed}/poll")
        assert r.status_code == 409 and "re-enable it first" in r.json()["detail"]
        assert admin.post("/newsflow/feeds/999999/enable").status_code == 409  # no such feed
        detail = admin.get(f"/newsflow/api/feeds/{feed}").json()
    assert detail["feed"]["state"] == "disabled" and detail["feed"]["disabled_by"] == "operator"
    assert [a["action"] for a in detail["actions"]] == ["disable", "enable"]
    assert {a["actor"] for a in detail["actions"]} == {"admin"}


def test_cookie_posts_need_same_origin_and_a_csrf_token(console, make_feed):
    feed = make_feed("Cookie Test Feed", enabled=False, disabled_reason="HTTP 410 Gone")
    jwt = console.token("admin")
    with httpx.Client(base_url=console.base, cookies={"_token": jwt}, timeout=60) as browser:
        page = browser.get(f"/newsflow/feeds/{feed}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        url = f"/newsflow/feeds/{feed}/enable"
        form = {"csrf_token": token, "back": f"feeds/{feed}"}
        assert browser.post(url, data=form).status_code == 403  # no Origin / Referer
        assert browser.post(url, data=form, headers={"Origin": "http://evil.example"}).status_code == 403
        assert browser.post(url, data={**form, "csrf_token": "1.forged"},
                            headers={"Origin": console.base}).status_code == 403
        assert browser.post(url, data=form, headers={"Origin": console.base,
                                                     "Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert row(console, "SELECT enabled FROM news.feeds WHERE id = %s", (feed,))["enabled"] is False
        done = browser.post(url, data={**form, "back": "https://evil.example/"}, headers={"Origin": console.base})
        assert done.status_code == 303
        location = done.headers["location"]
        assert location.startswith("../../?action=")  # a relative redirect; never to the posted URL
        shown = browser.get(httpx.URL(f"{console.base}{url}").join(location))
        assert f"admin (console) re-enabled feed {feed} (Cookie Test Feed)" in shown.text
    assert row(console, "SELECT enabled FROM news.feeds WHERE id = %s", (feed,))["enabled"] is True


def test_nothing_from_a_feed_is_rendered_unescaped(console, make_feed):
    feed = make_feed(f"Evil {XSS} Feed", publisher=f"Evil {XSS}", consecutive_errors=3,
                     last_error=f"HTTP 500: {XSS}", last_polled_at="2026-01-01T00:00:00Z")
    with db.transaction(console.news) as conn:
        conn.execute("""INSERT INTO news.entries (feed_id, guid, link, title, status, last_error)
                        VALUES (%s, 'x1', 'javascript:alert(1)', %s, 'failed', %s)""",
                     (feed, f"<img src=x onerror=alert(1)> {XSS}", f"page fetch failed: {XSS}"))
    with console.client("admin") as admin:
        for path in ("/newsflow/feeds?state=failing", f"/newsflow/feeds/{feed}", "/newsflow/pipeline",
                     f"/newsflow/feeds?q={XSS}"):
            page = admin.get(path, headers={"Accept": "text/html"})
            assert page.status_code == 200, path
            assert "&lt;script&gt;alert(&#39;nf&#39;)&lt;/script&gt;" in page.text, path
            assert XSS not in page.text and "<img src=x" not in page.text, path
        assert admin.get("/newsflow/api/feeds", params={"q": "Evil"}).json()["feeds"][0]["name"] == f"Evil {XSS} Feed"


def test_poll_now_triggers_the_poll_dag_as_the_user(console, make_feed):
    feed = make_feed("Poll Now Test Feed", next_poll_at="2099-01-01T00:00:00Z")
    with console.client("admin", headers={"Accept": "application/json"}) as admin:
        r = admin.post(f"/newsflow/feeds/{feed}/poll")
        assert r.status_code == 200, r.text
        message = r.json()["message"]
        assert f"admin (console) asked to poll feed {feed} (Poll Now Test Feed): run " in message, message
        run_id = re.search(r"run (\S+) of newsflow_poll_feeds", message).group(1)
        run = admin.get(f"/api/v2/dags/newsflow_poll_feeds/dagRuns/{run_id}").json()
        assert run["conf"] == {"feed": str(feed)} and run["run_type"] == "manual"
        assert "Poll Now Test Feed" in (run.get("note") or "")
    due = row(console, "SELECT next_poll_at <= now() AS due FROM news.feeds WHERE id = %s", (feed,))
    assert due["due"]  # also due for the next scheduled poll, should the run not start


def test_json_api_filters_pages_and_pipeline(console, make_feed):
    failing = make_feed("Api Failing Feed", consecutive_errors=2, last_error="HTTP 503", last_polled_at="2026-01-01")
    make_feed("Api New Feed")
    with console.client("viewer") as viewer:
        data = viewer.get("/newsflow/api/feeds", params={"state": "failing", "q": "Api "}).json()
        assert [f["id"] for f in data["feeds"]] == [failing] and data["counts"] == {"failing": 1, "new": 1}
        assert data["feeds"][0]["reason"].startswith("2 consecutive failures; last: HTTP 503")
        assert viewer.get("/newsflow/api/feeds", params={"state": "bogus"}).status_code == 400
        assert viewer.get("/newsflow/api/feeds", params={"sort": "id; drop table"}).status_code == 400
        assert viewer.get("/newsflow/api/feeds/999999").status_code == 404
        pipeline = viewer.get("/newsflow/api/pipeline").json()
        assert pipeline["runs_error"] is None and set(pipeline["runs"]) == {
            "newsflow_poll_feeds", "newsflow_ingest_articles", "newsflow_maintenance"}
        assert set(pipeline["queue"]) == {"pending_due", "pending_waiting", "failed"}
        assert viewer.get("/newsflow/api/stories", params={"q": "'); drop"}).status_code == 200


def test_the_trigger_form_refuses_a_date_that_is_no_date(console):
    with console.client("admin") as admin:
        r = admin.post("/api/v2/dags/newsflow_ingest_articles/dagRuns",
                       json={"logical_date": None, "conf": {"since": "last tuesday"}})
        assert r.status_code == 400 and "since" in r.text, r.text
        r = admin.post("/api/v2/dags/newsflow_ingest_articles/dagRuns",
                       json={"logical_date": None, "conf": {"since": "2026-11-20", "workers": 1}})
        assert r.status_code == 200, r.text


# --- issue 18: what operators tripped over ---------------------------------------------------------

def _entry(console, feed: int, *, title: str, status: str, **cols) -> int:
    with db.transaction(console.news) as conn:
        return conn.execute("""
            INSERT INTO news.entries (feed_id, guid, link, title, status, attempts, last_error, next_attempt_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) RETURNING id""",
            (feed, uuid.uuid4().hex, f"https://{uuid.uuid4().hex[:8]}.example/a", title, status,
             cols.get("attempts", 0), cols.get("last_error"), cols.get("next_attempt_at"))).fetchone()["id"]


def test_console_pages_may_be_framed_only_by_the_airflow_ui(console):
    with console.client("admin") as admin, console.client() as anonymous:
        for client, path in ((admin, "/newsflow/feeds"), (admin, "/newsflow/api/feeds"),
                             (admin, "/newsflow/pipeline"), (anonymous, "/newsflow/feeds")):
            r = client.get(path, headers={"Accept": "text/html"})
            assert r.headers["x-frame-options"] == "SAMEORIGIN", path
            # 'self' and the configured base URL's origin, which is the same one here: nothing else
            assert r.headers["content-security-policy"] == f"frame-ancestors 'self' {console.base}", path


def test_requeue_starts_ingestion_and_the_flash_says_so(console, make_feed):
    feed = make_feed("Requeue Test Feed")
    one = _entry(console, feed, title="Requeue me", status="failed", attempts=5, last_error="HTTP 503")
    _entry(console, feed, title="Me too", status="failed", attempts=5, last_error="HTTP 503")
    with console.client("admin", headers={"Accept": "application/json"}) as admin:
        r = admin.post(f"/newsflow/entries/{one}/requeue")
        assert r.status_code == 200, r.text
        message = r.json()["message"]
        assert f"requeued entry {one} of feed {feed} (Requeue Test Feed): Requeue me (was failed: HTTP 503); run " \
            in message and "of newsflow_ingest_articles queued to load them" in message, message
        run_id = re.search(r"run (\S+) of newsflow_ingest_articles", message).group(1)
        run = admin.get(f"/api/v2/dags/newsflow_ingest_articles/dagRuns/{run_id}").json()
        assert run["run_type"] == "manual" and "Requeue Test Feed" in (run.get("note") or "")
        r = admin.post(f"/newsflow/feeds/{feed}/requeue-failed")
        assert r.status_code == 200, r.text
        assert ": 1 entry queued again; run " in r.json()["message"], r.json()["message"]  # not "1 entries"
    kept = row(console, "SELECT dag_id, dag_run_id FROM news.operator_actions WHERE entry_id = %s", (one,))
    assert kept == {"dag_id": "newsflow_ingest_articles", "dag_run_id": run_id}


def test_poll_now_shows_the_run_state_then_the_feeds_result(console, make_feed):
    feed = make_feed("Follow Test Feed", next_poll_at="2099-01-01T00:00:00Z")
    with console.client("admin", headers={"Accept": "application/json"}) as admin:
        message = admin.post(f"/newsflow/feeds/{feed}/poll").json()["message"]
        run_id = re.search(r"run (\S+) of newsflow_poll_feeds", message).group(1)
        page = admin.get(f"/newsflow/feeds/{feed}", headers={"Accept": "text/html"}).text
        assert run_id in page and 'class="badge run-queued">queued' in page
        assert re.search(r'<meta http-equiv="refresh" content="\d+">', page)  # it follows the run
        assert admin.get(f"/newsflow/api/feeds/{feed}").json()["poll_now"]["state"] == "queued"
        # the run ends (here: set through Airflow's API; a scheduler would run it) after a poll
        with db.transaction(console.news) as conn:
            conn.execute("""INSERT INTO news.fetch_log (kind, feed_id, url, fetched_at, status, bytes, new_entries)
                            VALUES ('feed', %s, 'x', clock_timestamp(), 200, 1234, 3)""", (feed,))
        r = admin.patch(f"/api/v2/dags/newsflow_poll_feeds/dagRuns/{run_id}", json={"state": "success"})
        assert r.status_code == 200, r.text
        page = admin.get(f"/newsflow/feeds/{feed}", headers={"Accept": "text/html"}).text
        assert 'class="badge run-success">success' in page and "http-equiv=\"refresh\"" not in page
        assert re.search(r"polled \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: HTTP 200, 3 new entries", page), page
        follow = admin.get(f"/newsflow/api/feeds/{feed}").json()["poll_now"]
        assert follow["state"] == "success" and follow["result"]["new_entries"] == 3
        # audit times to the second
        assert re.search(r'<li><span class="muted">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</span> admin \(console\) '
                         r"asked to poll", page)


def test_an_overdue_feed_says_overdue_and_pending_entries_are_listed(console, make_feed):
    feed = make_feed("Overdue Test Feed")
    with db.transaction(console.news) as conn:
        conn.execute("UPDATE news.feeds SET next_poll_at = now() - interval '42 seconds' WHERE id = %s", (feed,))
    waiting = _entry(console, feed, title="Waiting entry", status="pending", attempts=2, last_error="HTTP 503",
                     next_attempt_at="2099-01-01T00:00:00Z")
    with console.client("viewer", headers={"Accept": "text/html"}) as viewer:
        page = viewer.get(f"/newsflow/feeds/{feed}").text
        next_poll = re.search(r'<dd id="next-poll">(.*?)</dd>', page, re.S).group(1)
        assert re.match(r"overdue by 4\d s", next_poll) and "ago" not in next_poll, next_poll
        pipeline = viewer.get("/newsflow/pipeline").text
        listed = re.search(rf'<tr data-entry-id="{waiting}">(.*?)</tr>', pipeline.split('id="pending"')[1], re.S)
        assert listed and "Waiting entry" in listed.group(1) and "HTTP 503" in listed.group(1)
        assert "<td>in 2" in listed.group(1)  # due in 26,000-odd days


def test_pipeline_names_the_failed_task_its_error_and_the_feeds_left_out(console):
    with console.client("admin", headers={"Accept": "application/json"}) as admin:
        r = admin.post("/api/v2/dags/newsflow_poll_feeds/dagRuns", json={"logical_date": None, "conf": {}})
        run_id = r.json()["dag_run_id"]
        admin.patch(f"/api/v2/dags/newsflow_poll_feeds/dagRuns/{run_id}", json={"state": "failed"})
        with db.transaction(console.news) as conn:
            for task, index, counts in (("plan_poll", -1, '{"due_feeds": 11, "shards": 3}'),
                                        ("poll_shard", 0, '{"feeds": 4, "new_entries": 2}'),
                                        ("poll_shard", 1, '{"feeds": 4, "new_entries": 1}')):
                conn.execute("INSERT INTO news.run_counts (dag_id, run_id, task_id, map_index, counts) "
                             "VALUES ('newsflow_poll_feeds', %s, %s, %s, %s)", (run_id, task, index, counts))
            conn.execute("""INSERT INTO news.task_failures (dag_id, task_id, run_id, map_index, try_number, exception,
                                                           final) VALUES
                            ('newsflow_poll_feeds', 'poll_shard', %s, 2, 1, 'OperationalError: first try', false),
                            ('newsflow_poll_feeds', 'poll_shard', %s, 2, 4,
                             'OperationalError: connection to server refused', true)""", (run_id, run_id))
        data = admin.get("/newsflow/api/pipeline").json()
        [mine] = [r for r in data["runs"]["newsflow_poll_feeds"] if r["dag_run_id"] == run_id]
        assert mine["counts"].startswith("11 feeds due, 3 not polled (a shard failed or has not finished), "
                                         "8 feeds polled, 3 new entries"), mine["counts"]
        assert [(f["task_id"], f["map_index"], f["exception"]) for f in mine["failures"]] == \
            [("poll_shard", 2, "OperationalError: connection to server refused")]
        page = admin.get("/newsflow/pipeline", headers={"Accept": "text/html"}).text
        assert "<b>poll_shard [2]</b>" in page and "connection to server refused" in page
