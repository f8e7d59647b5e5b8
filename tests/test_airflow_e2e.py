"""End to end under Airflow: dag.test() of newsflow_poll_feeds then newsflow_ingest_articles
against the sample world on loopback and a real PostgreSQL (connection newsflow_db), with a
throwaway Airflow metadata DB. A second pass loads nothing twice and emits no asset event."""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import fetch_all
from newsflow import db

sys.path.insert(0, str(Path(__file__).parent))
import airflow_harness as harness  # noqa: E402

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ENTRIES = "newsflow://news/entries"
ARTICLES = "newsflow://news/articles"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    harness.migrate(harness.airflow_env(home))
    return home


@pytest.fixture
def env(airflow_home, database_url, sample_feeds):
    return harness.airflow_env(
        airflow_home, database_url, NEWSFLOW_FEEDS_FILE=str(sample_feeds),
        NEWSFLOW_ALLOW_PRIVATE_NETWORKS="1", NEWSFLOW_PER_HOST_DELAY="0", NEWSFLOW_PER_HOST_CONCURRENCY="4",
        NEWSFLOW_EXTRACT_WORKERS="2", NEWSFLOW_CONNECT_TIMEOUT="5", NEWSFLOW_READ_TIMEOUT="5")


WATCHER = "fail_run_if_a_task_failed[-1]"


def _run(env, dag_id, conf=None, state="success"):
    result = harness.run(env, "test", dag_id, json.dumps(conf) if conf else "")
    output = result.pop("_output")
    assert result["state"].endswith(state), f"{dag_id}: {json.dumps(result, indent=1)}\n{output[-6000:]}"
    result["_output"] = output
    return result


def _events(result, uri):
    return [e for e in result["asset_events"] if e["uri"] == uri]


def test_poll_then_ingest_then_nothing_twice(env, database_url):
    # 1. poll: feeds synced from the file, due feeds polled in shards, asset event emitted
    poll = _run(env, "newsflow_poll_feeds")
    shards = [k for k in poll["tasks"] if k.startswith("poll_shard[")]
    assert 1 < len(shards) <= 4, "a few shards, never one task per feed"
    labels = [poll["tasks"][k]["rendered_map_index"] for k in shards]
    assert all(label.startswith("feed ") and "(" in label for label in labels), labels  # by name
    assert poll["tasks"]["announce_new_entries[-1]"]["state"].endswith("success")
    [event] = _events(poll, ENTRIES)
    assert event["extra"]["new_entries"] == 14
    rows = fetch_all(database_url, "SELECT status, count(*) AS n FROM news.entries GROUP BY status")
    assert rows == [{"status": "pending", "n": 14}]

    # 2. ingest (what the asset event starts): everything loaded, stories formed
    ingest = _run(env, "newsflow_ingest_articles")
    [event] = _events(ingest, ARTICLES)
    assert event["extra"]["articles"] == 13
    entries = fetch_all(database_url, "SELECT status, attempts, article_id FROM news.entries")
    assert len(entries) == 14
    assert all(e["status"] == "loaded" and e["attempts"] == 1 and e["article_id"] for e in entries)
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 13
    isis = fetch_all(database_url, """
        SELECT s.id, count(DISTINCT a.publisher) AS outlets FROM news.stories s
        JOIN news.articles a ON a.story_id = s.id
        WHERE s.title ILIKE '%%islamic state%%' OR s.title ILIKE '%%isis%%'
        GROUP BY s.id ORDER BY outlets DESC""")
    assert isis and isis[0]["outlets"] == 4, isis
    pages = fetch_all(database_url, "SELECT entry_id, count(*) AS n FROM news.fetch_log "
                                    "WHERE kind = 'page' GROUP BY entry_id")
    assert all(p["n"] == 1 for p in pages)
    # XCom carries ids and counts only, never article text
    assert all(len(json.dumps(x["value"])) < 1000 for x in poll["xcom"] + ingest["xcom"])

    # 3. second pass, every feed forced: 304s, no new entry, no event, nothing loaded twice
    again = _run(env, "newsflow_poll_feeds", {"force": True})  # no new entries: a green run ...
    assert again["tasks"]["announce_new_entries[-1]"]["state"].endswith("skipped")
    assert again["tasks"][WATCHER]["state"].endswith("skipped")
    assert _events(again, ENTRIES) == []  # ... and ingestion (scheduled on the asset) not triggered
    assert "nothing to announce: no new entries and no pending entry due (feeds 6, new_entries 0" in again["_output"]  # why, in its log
    shard_summaries = re.findall(r"summary: (\d+) feeds polled: 0 new entries, 0 failed, (\d+) not modified",
                                 again["_output"])
    assert sum(int(n) for n, _ in shard_summaries) == 6 and all(n == m for n, m in shard_summaries)
    ingest2 = _run(env, "newsflow_ingest_articles")
    assert ingest2["tasks"]["announce_new_articles[-1]"]["state"].endswith("skipped")
    assert _events(ingest2, ARTICLES) == []
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 13
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.entries")[0]["n"] == 14

    # 4. manual re-ingest of one entry by id (Param): processed again, still one article
    entry_id = entries and fetch_all(database_url, "SELECT min(id) AS id FROM news.entries")[0]["id"]
    redo = _run(env, "newsflow_ingest_articles", {"entry_id": entry_id, "workers": 1})
    worker = [x["value"] for x in redo["xcom"] if x["task_id"] == "ingest_worker"]
    assert worker == [{**worker[0], "claimed": 1}] and worker[0]["loaded"] == 0
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 13


def test_a_failed_shard_fails_the_run_and_a_feed_is_polled_by_name(env, database_url):
    # one shard breaks: the others' entries are still announced, but the run is failed
    broken = _run({**env, "HARNESS_BREAK": "poll_shard"}, "newsflow_poll_feeds", state="failed")
    assert broken["tasks"]["poll_shard[0]"]["state"].endswith("failed")
    # the failed shard is named by its feeds, not "0" (the label comes with the shard)
    assert broken["tasks"]["poll_shard[0]"]["rendered_map_index"].startswith("feed "), broken["tasks"]
    assert broken["tasks"]["poll_shard[1]"]["state"].endswith("success")
    assert broken["tasks"]["announce_new_entries[-1]"]["state"].endswith("success")
    assert _events(broken, ENTRIES) and 0 < _events(broken, ENTRIES)[0]["extra"]["new_entries"] < 14
    assert broken["tasks"][WATCHER]["state"].endswith("failed")
    assert "poll_shard_0 failed: the run is marked failed" in broken["_output"]

    # a manual run for one feed, chosen by name: one shard, labelled with the feed's name
    [feed] = fetch_all(database_url, "SELECT id FROM news.feeds WHERE name = 'NBC News - World'")
    one = _run(env, "newsflow_poll_feeds", {"feed": "NBC News – World"})  # en dash typed: found
    shards = {k: v for k, v in one["tasks"].items() if k.startswith("poll_shard[")}
    assert [v["rendered_map_index"] for v in shards.values()] == [f"feed {feed['id']} (NBC News - World)"]

    # a disabled feed asked for by name: the run fails and says what to do
    with db.transaction(database_url) as conn:
        conn.execute("UPDATE news.feeds SET enabled = false, disabled_reason = 'HTTP 410 Gone' WHERE id = %s",
                     (feed["id"],))
    refused = _run(env, "newsflow_poll_feeds", {"feed": str(feed["id"])}, state="failed")
    assert refused["tasks"]["plan_poll[-1]"]["state"].endswith("failed")
    assert f"feed {feed['id']} (NBC News - World) is disabled (HTTP 410 Gone); re-enable it in Feeds" \
        in refused["_output"]


def test_requeued_entries_are_announced_by_the_next_scheduled_poll(env, database_url):
    """Issue 18: a requeued entry used to wait until some feed brought a new entry. The
    poll run (here with no feed due: "0 feeds due") announces due pending entries, and the
    ingest run that the asset starts loads it. The scheduler's asset -> DAG step is
    Airflow's own; dag.test() runs both DAGs here."""
    from newsflow import operations as ops

    _run(env, "newsflow_poll_feeds")
    _run(env, "newsflow_ingest_articles")
    [entry] = fetch_all(database_url, "SELECT id, article_id FROM news.entries ORDER BY id LIMIT 1")
    with db.transaction(database_url) as conn:
        conn.execute("UPDATE news.entries SET status = 'failed', last_error = 'page fetch failed: HTTP 503' "
                     "WHERE id = %s", (entry["id"],))
        conn.execute("UPDATE news.feeds SET next_poll_at = now() + interval '1 hour'")  # nothing due
        requeued = ops.requeue_entry(conn, entry["id"], actor="ops", source=ops.CONSOLE)
    assert "the next scheduled poll announces them" in requeued.summary()

    poll = _run(env, "newsflow_poll_feeds")
    shards = {k: v for k, v in poll["tasks"].items() if k.startswith("poll_shard[")}
    assert [v["rendered_map_index"] for v in shards.values()] == ["0 feeds due"]  # the run says so
    assert "0 feeds due: nothing to poll now (the next is due at" in poll["_output"]
    [event] = _events(poll, ENTRIES)
    assert event["extra"] == {"new_entries": 0, "feeds": 0, "due_pending": 1}
    ingest = _run(env, "newsflow_ingest_articles")  # what that asset event starts
    assert [x["value"]["claimed"] for x in ingest["xcom"] if x["task_id"] == "ingest_worker"
            and x["value"]] and fetch_all(database_url, "SELECT status FROM news.entries WHERE id = %s",
                                          (entry["id"],))[0]["status"] == "loaded"

    # nothing due and nothing pending: no event (ingestion is not started for nothing)
    quiet = _run(env, "newsflow_poll_feeds")
    assert quiet["tasks"]["announce_new_entries[-1]"]["state"].endswith("skipped")
    assert _events(quiet, ENTRIES) == []
    assert "nothing to announce: no new entries and no pending entry due" in quiet["_output"]


def test_failure_callback_records_and_notifies(env, database_url):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook_env = {**env, "NEWSFLOW_FAILURE_WEBHOOK": f"http://127.0.0.1:{server.server_address[1]}/hook"}
        harness.run(hook_env, "failure", "newsflow_poll_feeds", "poll_shard")
    finally:
        server.shutdown()
    # every failed attempt is recorded with its try number; only the last one is notified
    retry, last = fetch_all(database_url, "SELECT * FROM news.task_failures ORDER BY try_number")
    for row in (retry, last):
        assert (row["dag_id"], row["task_id"], row["map_index"]) == ("newsflow_poll_feeds", "poll_shard", 2)
        assert "boom" in row["exception"]
    assert (retry["try_number"], retry["final"], retry["notified"]) == (1, False, False)
    assert (last["try_number"], last["final"], last["notified"]) == (2, True, True)
    assert len(received) == 1 and "poll_shard failed" in received[0]["text"]
