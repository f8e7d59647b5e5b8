"""Nothing lost: entries stored before their pages are fetched, failures retried with
backoff then marked failed, and a pipeline killed mid-batch (SIGKILL) loses nothing and
loads nothing twice when it runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from faultserver import FaultServer, article_html, rss
from newsflow import db
from newsflow.config import Settings
from newsflow.ingest import ingest_pending
from newsflow.models import FeedSpec
from newsflow.pipeline import sync_feeds
from newsflow.poll import poll_feeds, select_feeds

from conftest import REPO_ROOT
from newsflow.storage.workers import LIVE_OWNERS_SQL

FAST = dict(connect_timeout=0.5, read_timeout=1.0, total_timeout=2.0)


def q(url: str, sql: str, params=()) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_failed_fetches_are_retried_with_backoff_then_failed_never_dropped(database_url):
    settings = Settings(database_url=database_url, allow_private_networks=True, per_host_delay=0.0,
                        max_attempts=3, retry_backoff_base=100, **FAST)
    with FaultServer() as fs:
        fs.add("/down", "unavailable", status=500)
        fs.route("/reset", fs.reset)
        items = [{"title": "Bare", "link": fs.url("/down"), "guid": "bare"},
                 {"title": "With text", "link": fs.url("/reset"), "guid": "summary",
                  "description": "The feed's own account of the story. " * 10}]
        feed = fs.add("/feed", rss(items), content_type="application/rss+xml")
        sync_feeds(database_url, [FeedSpec(url=feed, publisher="T")])
        with db.connect(database_url) as conn:
            poll_feeds(database_url, settings, select_feeds(conn, force=True))
        # stored before any article fetch: the queue
        assert [r["status"] for r in q(database_url, "SELECT status FROM news.entries")] == ["pending"] * 2

        waits = []
        for attempt in (1, 2):
            ingest_pending(database_url, settings)
            rows = q(database_url, """SELECT guid, status, attempts, last_error,
                     extract(epoch FROM next_attempt_at - now()) AS wait FROM news.entries ORDER BY id""")
            assert [(r["status"], r["attempts"]) for r in rows] == [("pending", attempt)] * 2
            assert "HTTP 500" in rows[0]["last_error"] and "reset" in rows[1]["last_error"]
            waits.append(rows[0]["wait"])
            assert ingest_pending(database_url, settings).claimed == 0  # not due yet: backoff
            with db.transaction(database_url) as conn:
                conn.execute("UPDATE news.entries SET next_attempt_at = now()")
        assert 90 <= waits[0] <= 100 and 190 <= waits[1] <= 200  # doubled per attempt

        result = ingest_pending(database_url, settings)  # the last attempt
        assert result.failed == 1 and result.fallbacks == 1
        rows = {r["guid"].rsplit("/", 1)[-1]: r for r in q(database_url, """
            SELECT e.guid, e.status, e.attempts, e.last_error, a.body_source, a.fallback_reason
            FROM news.entries e LEFT JOIN news.articles a ON a.id = e.article_id""")}
        assert rows["bare"]["status"] == "failed" and rows["bare"]["attempts"] == 3
        assert "HTTP 500" in rows["bare"]["last_error"]
        assert rows["summary"]["status"] == "loaded" and rows["summary"]["body_source"] == "feed"
        assert "reset" in rows["summary"]["fallback_reason"]


N_PAGES = 6


@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_loads_every_entry_exactly_once(database_url, tmp_path):
    release = threading.Event()

    with FaultServer() as fs:
        def page(i):
            def handler(req):
                if not release.is_set():
                    release.wait(30)  # the first run hangs here with its batch open
                    if req.stop.is_set():
                        return
                req.send_plain(200, article_html(f"Story {i}", seed=f"s{i}"))
            return handler
        for i in range(N_PAGES):
            fs.route(f"/page/{i}", page(i))
        items = [{"title": f"Story {i}", "link": fs.url(f"/page/{i}"), "guid": f"urn:story:{i}",
                  "description": f"Summary {i}"} for i in range(N_PAGES)]
        feed = fs.add("/feed.xml", rss(items), content_type="application/rss+xml")
        feeds_file = tmp_path / "feeds.yaml"
        feeds_file.write_text(f"feeds:\n  - url: {feed}\n    publisher: Crash Test\n")

        env = {**os.environ, "NEWSFLOW_DATABASE_URL": database_url,
               "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1", "NEWSFLOW_PER_HOST_DELAY": "0",
               "NEWSFLOW_READ_TIMEOUT": "60", "NEWSFLOW_TOTAL_TIMEOUT": "60",
               "NEWSFLOW_EXTRACT_WORKERS": "1", "NEWSFLOW_DATA_DIR": str(tmp_path / "state")}
        cmd = [sys.executable, "-m", "newsflow", "run", "--feeds", str(feeds_file)]

        first = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not fs.hits("/page/0") and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.05)
            assert fs.hits("/page/0"), f"first run never fetched a page: {first.stderr.read()!r}"
            # the batch is in flight: its entries are leased to the first run's live worker,
            # and no transaction of the run stays open while it waits on the server
            leased = q(database_url, f"""
                SELECT e.id FROM news.entries e WHERE e.lease_owner IN ({LIVE_OWNERS_SQL})""")
            assert len(q(database_url, "SELECT id FROM news.entries")) == N_PAGES and len(leased) == N_PAGES
            open_tx = q(database_url, """SELECT state FROM pg_stat_activity WHERE datname = current_database()
                                          AND pid <> pg_backend_pid() AND xact_start IS NOT NULL""")
            assert open_tx == [], open_tx
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # the run and its extraction workers
            first.wait(timeout=30)
            first.stderr.close()
        assert first.returncode == -signal.SIGKILL

        # the dead worker's leases died with its connection: everything is free again, no
        # article, no attempt counted
        deadline = time.monotonic() + 20
        held = f"SELECT id FROM news.entries WHERE lease_owner IN ({LIVE_OWNERS_SQL})"
        while q(database_url, held) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert q(database_url, held) == []  # (the server notices a dead connection at once)
        rows = q(database_url, "SELECT status, attempts, article_id FROM news.entries")
        assert [(r["status"], r["attempts"], r["article_id"]) for r in rows] == [("pending", 0, None)] * N_PAGES
        assert q(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0

        release.set()
        for _ in range(2):  # the re-run, then one more: nothing changes the second time
            done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            rows = q(database_url, "SELECT status, attempts, article_id FROM news.entries ORDER BY id")
            assert [(r["status"], r["attempts"]) for r in rows] == [("loaded", 1)] * N_PAGES
            assert len({r["article_id"] for r in rows}) == N_PAGES
            articles = q(database_url, "SELECT canonical_url, body_source FROM news.articles")
            assert len(articles) == N_PAGES and {a["body_source"] for a in articles} == {"page"}
            assert len({a["canonical_url"] for a in articles}) == N_PAGES
        page_fetches = q(database_url, "SELECT count(*) AS n FROM news.fetch_log WHERE kind = 'page'")
        assert page_fetches[0]["n"] == N_PAGES  # the killed batch left no half-written trace
