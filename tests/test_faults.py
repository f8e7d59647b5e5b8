"""Faults, each with its documented outcome and exit code (docs/politeness.md, "Failure
handling"): signals, killed processes and database sessions, idle-in-transaction timeouts,
a read-only database, a missing privilege, concurrent runs, credentials in feed URLs,
extraction that crashes or times out, and a record the database refuses.

Every run here is the real `newsflow` command in a subprocess against a real PostgreSQL
and loopback servers; after each fault, a re-run must load every entry exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import REPO_ROOT, execute, fetch_all
from faultserver import FaultServer, article_html, rss

from newsflow import db
from newsflow.storage.workers import LIVE_OWNERS_SQL

N = 4


def _env(database_url, tmp_path, **extra) -> dict[str, str]:
    return {**os.environ, "NEWSFLOW_DATABASE_URL": database_url, "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1",
            "NEWSFLOW_PER_HOST_DELAY": "0", "NEWSFLOW_PER_HOST_CONCURRENCY": "4",
            "NEWSFLOW_EXTRACT_WORKERS": "1", "NEWSFLOW_DATA_DIR": str(tmp_path / "state"), **extra}


def _cmd(feeds) -> list[str]:
    return [sys.executable, "-m", "newsflow", "run", "--feeds", str(feeds)]


def _world(fs: FaultServer, tmp_path, *, hold: threading.Event | None = None, delay: float = 0.0,
           n: int = N, user: str = ""):
    """A feed of ``n`` stories; pages wait for ``hold`` (when given) or ``delay`` seconds."""
    for i in range(n):
        if hold is not None:
            def handler(req, i=i):
                if not hold.is_set():
                    hold.wait(60)
                    if req.stop.is_set():
                        return
                req.send_plain(200, article_html(f"Story {i}", paragraphs=8, seed=f"s{i}"))
            fs.route(f"/page/{i}", handler)
        else:
            fs.add(f"/page/{i}", article_html(f"Story {i}", paragraphs=8, seed=f"s{i}"), delay=delay)
    items = [{"title": f"Story {i}", "link": fs.url(f"/page/{i}"), "guid": f"urn:story:{i}",
              "description": f"Summary {i}"} for i in range(n)]
    fs.add("/feed.xml", rss(items), content_type="application/rss+xml", delay=delay)
    feed_url = fs.url("/feed.xml").replace("http://", f"http://{user}") if user else fs.url("/feed.xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {feed_url}\n    publisher: Fault Test\n")
    return feeds


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _rerun(feeds, env) -> None:
    """The run after a fault: it must simply work."""
    rerun = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]


def _exactly_once(database_url, n: int = N) -> None:
    rows = fetch_all(database_url, "SELECT status, attempts, article_id, last_error, next_attempt_at - now() AS due, "
                                   "strikes FROM news.entries ORDER BY id")
    assert [(r["status"], r["attempts"]) for r in rows] == [("loaded", 1)] * n, rows
    assert len({r["article_id"] for r in rows}) == n
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == n
    pages = fetch_all(database_url, """SELECT entry_id, count(*) AS n FROM news.fetch_log
                                       WHERE kind = 'page' GROUP BY entry_id""")
    assert len(pages) == n and all(p["n"] == 1 for p in pages), pages  # an aborted batch wrote nothing


def _nothing_held(database_url) -> None:
    """No live lease, nothing attempted, no article: as if the aborted run never claimed."""
    rows = fetch_all(database_url, f"""
        SELECT status, attempts, article_id, lease_owner IN ({LIVE_OWNERS_SQL}) AS live FROM news.entries""")
    assert rows and all((r["status"], r["attempts"], r["article_id"]) == ("pending", 0, None) for r in rows), rows
    assert not any(r["live"] for r in rows)
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0


# --- signals --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_claiming_gives_work_back_and_exits_128_plus_signal(database_url, tmp_path, sig, code):
    hold = threading.Event()
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, hold=hold)
        env = _env(database_url, tmp_path)
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: fs.hits("/page/0"), what="a page request")
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)  # within a few seconds, though pages still hang
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == code, err
        assert f"stopped by {signal.Signals(sig).name}" in err and "Traceback" not in err
        _nothing_held(database_url)
        hold.set()
        _rerun(feeds, env)
    _exactly_once(database_url)


# --- killed processes and sessions -----------------------------------------------------------

def _hold_load_lock(database_url):
    """Hold the load lock (its row in news.locks, as the owner) from outside: a run's write
    phase waits for it."""
    conn = psycopg.connect(database_url)
    conn.execute("SELECT name FROM news.locks WHERE name = 'load' FOR UPDATE")
    return conn


def _writer_waiting(database_url):
    """The pid of a session waiting for the load lock (it tries every 50 ms: storage.locks),
    once entries are claimed (the feeds sync tries its lock the same way, before any claim)."""
    rows = fetch_all(database_url, """
        SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND xact_start IS NOT NULL
          AND query LIKE '%%news.locks%%SKIP LOCKED%%' AND pid <> pg_backend_pid()
          AND EXISTS (SELECT 1 FROM news.entries WHERE lease_owner IS NOT NULL)""")
    return rows[0]["pid"] if rows else None


@pytest.mark.slow
def test_sigkill_in_the_write_phase_then_rerun_loads_each_entry_once(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)
        env = _env(database_url, tmp_path)
        blocker = _hold_load_lock(database_url)
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda: _writer_waiting(database_url), what="the run's write phase")
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its extraction workers
            proc.wait(timeout=30)
        finally:
            blocker.close()
        _wait_for(lambda: not fetch_all(database_url, f"""SELECT 1 FROM news.entries
                                                          WHERE lease_owner IN ({LIVE_OWNERS_SQL})"""),
                  what="the dead worker's leases to lapse")
        _nothing_held(database_url)
        _rerun(feeds, env)
    _exactly_once(database_url)


@pytest.mark.slow
def test_sigkill_while_polling_then_rerun(database_url, tmp_path):
    hold = threading.Event()
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)

        def slow_feed(req):
            hold.wait(60)
            req.send_plain(200, b"", {})
        fs.route("/feed.xml", slow_feed)
        env = _env(database_url, tmp_path)
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: fs.hits("/feed.xml"), what="the feed request")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        hold.set()
        assert fetch_all(database_url, "SELECT count(*) AS n FROM news.entries")[0]["n"] == 0
        fs.add("/feed.xml", rss([{"title": f"Story {i}", "link": fs.url(f"/page/{i}"), "guid": f"urn:story:{i}",
                                  "description": f"Summary {i}"} for i in range(N)]),
               content_type="application/rss+xml")
        _rerun(feeds, env)
    _exactly_once(database_url)


@pytest.mark.slow
def test_terminated_database_session_mid_batch_exits_2_and_the_rerun_resumes(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)
        env = _env(database_url, tmp_path)
        blocker = _hold_load_lock(database_url)
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: _writer_waiting(database_url), what="the run's write phase")
            fetch_all(database_url, "SELECT pg_terminate_backend(%s)", (_writer_waiting(database_url),))
            out, err = proc.communicate(timeout=60)
        finally:
            blocker.close()
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 2, err
        lines = [line for line in err.splitlines() if line.startswith("newsflow: database error")]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert "terminated" in lines[0] or "shut down" in lines[0], lines[0]
        _rerun(feeds, env)
    _exactly_once(database_url)


@pytest.mark.slow
def test_no_transaction_outlives_a_two_second_idle_in_transaction_timeout(database_url, tmp_path):
    """Managed PostgreSQL kills sessions idle in a transaction; pages and the feed here take
    2.5 s each, so any transaction held across a fetch would be killed."""
    name = conninfo_to_dict(database_url)["dbname"]
    execute(database_url, f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = '2s'")
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, delay=2.5)
        env = _env(database_url, tmp_path)
        done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    _exactly_once(database_url)


def _set_database(database_url, setting: str, value: str) -> None:
    name = conninfo_to_dict(database_url)["dbname"]
    execute(database_url, f'ALTER DATABASE "{name}" SET {setting} = {value}')


@pytest.mark.slow
def test_read_only_database_exits_2_with_one_line_and_the_rerun_works(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)
        env = _env(database_url, tmp_path)
        _set_database(database_url, "default_transaction_read_only", "on")
        try:
            done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        finally:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("SET default_transaction_read_only = off")
                name = conninfo_to_dict(database_url)["dbname"]
                conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "read-only" in done.stderr, done.stderr
        _rerun(feeds, env)
    _exactly_once(database_url)


@pytest.mark.slow
def test_missing_privilege_exits_2_naming_the_user_not_the_password(database_url, tmp_path):
    role = f"nf_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'hunter2secret'")
        admin.execute(f"GRANT USAGE, CREATE ON SCHEMA news TO {role}")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA news TO {role}")
        admin.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA news TO {role}")
        admin.execute(f"REVOKE INSERT ON news.fetch_log FROM {role}")
    limited = make_conninfo(database_url, user=role, password="hunter2secret")
    try:
        with FaultServer() as fs:
            feeds = _world(fs, tmp_path)
            done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=_env(limited, tmp_path),
                                  capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "privilege" in done.stderr and "Traceback" not in done.stderr
        assert "hunter2secret" not in done.stderr + done.stdout
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


# --- concurrency ---------------------------------------------------------------------------

@pytest.mark.slow
def test_three_runs_at_once_on_a_new_feeds_file(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, n=8)
        env = _env(database_url, tmp_path)
        procs = [subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [p.communicate(timeout=240) for p in procs]
        for p, (_, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err[-2000:]
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.feeds")[0]["n"] == 1
    _exactly_once(database_url, n=8)


# --- secrets -------------------------------------------------------------------------------

@pytest.mark.slow
def test_feed_credentials_never_reach_output_logs_or_errors(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, user="bob:s3cretpw@")
        fs.redirect_loop("/loop-a.xml", "/loop-b.xml")
        with feeds.open("a") as f:
            f.write(f"  - url: {fs.url('/loop-a.xml').replace('http://', 'http://eve:t0psecret@')}\n"
                    "    publisher: Loop\n")
        env = _env(database_url, tmp_path)
        run = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        status = subprocess.run([sys.executable, "-m", "newsflow", "feeds", "status"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and status.returncode == 0, run.stderr
    shown = run.stdout + run.stderr + status.stdout + status.stderr
    assert "s3cretpw" not in shown and "t0psecret" not in shown
    assert "***@127.0.0.1" in shown
    logged = fetch_all(database_url, """
        SELECT string_agg(coalesce(url, '') || ' ' || coalesce(error, ''), ' ') AS t FROM news.fetch_log
        UNION ALL SELECT string_agg(coalesce(last_error, '') || ' ' || coalesce(disabled_reason, ''), ' ')
                  FROM news.feeds
        UNION ALL SELECT string_agg(coalesce(last_error, ''), ' ') FROM news.entries""")
    text = " ".join(r["t"] or "" for r in logged)
    assert "redirect loop" in text and "s3cretpw" not in text and "t0psecret" not in text
    kept = fetch_all(database_url, "SELECT url FROM news.feeds ORDER BY id")
    assert "bob:s3cretpw@" in kept[0]["url"]  # kept where it is needed: to fetch the feed
    _exactly_once(database_url)


# --- extraction and loading ----------------------------------------------------------------

def _killer(real):
    def extract(html, url, *args, **kwargs):
        if "/page/1" in url:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies on this page
        return real(html, url, *args, **kwargs)
    return extract


@pytest.mark.slow
def test_a_killed_extraction_worker_is_retried_like_a_fetch_error(database_url, settings, tmp_path, monkeypatch):
    import newsflow.extract as extract_module
    from newsflow.ingest import ingest_pending
    from newsflow.pipeline import sync_file
    from newsflow.poll import poll_feeds, select_feeds

    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)
        sync_file(database_url, feeds)
        with db.connect(database_url) as conn:
            poll_feeds(database_url, settings, select_feeds(conn, force=True))
        monkeypatch.setattr(extract_module, "extract_html", _killer(extract_module.extract_html))
        first = ingest_pending(database_url, settings)  # the pool forks with the killer in place
        assert first.loaded == N - 1 and first.retry == 1 and first.fallbacks == 0
        row = fetch_all(database_url, "SELECT status, attempts, last_error FROM news.entries WHERE link LIKE %s",
                        ("%/page/1",))[0]
        assert (row["status"], row["attempts"]) == ("pending", 1) and "worker" in row["last_error"]
        monkeypatch.undo()
        fetch_all(database_url, "UPDATE news.entries SET next_attempt_at = now() RETURNING id")
        second = ingest_pending(database_url, settings)
        assert second.loaded == 1 and second.fallbacks == 0
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles WHERE body_source = 'page'")[0]["n"] == N


@pytest.mark.slow
def test_a_record_the_database_refuses_rolls_back_alone_and_is_quarantined(database_url, settings, tmp_path):
    from newsflow.ingest import ingest_pending
    from newsflow.pipeline import sync_file
    from newsflow.poll import poll_feeds, select_feeds

    execute(database_url, "ALTER TABLE news.articles ADD CONSTRAINT refuse_story_2 "
                          "CHECK (title IS DISTINCT FROM 'Story 2')")
    settings = settings.replace(max_strikes=2)
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path)
        sync_file(database_url, feeds)
        with db.connect(database_url) as conn:
            poll_feeds(database_url, settings, select_feeds(conn, force=True))
        first = ingest_pending(database_url, settings)
        assert first.loaded == N - 1 and first.load_errors == 1
        refused = fetch_all(database_url, "SELECT status, last_error, strikes FROM news.entries "
                                          "WHERE title = 'Story 2'")[0]
        assert refused["status"] == "pending" and "CheckViolation" in refused["last_error"]
        fetch_all(database_url, "UPDATE news.entries SET next_attempt_at = now() RETURNING id")
        second = ingest_pending(database_url, settings)
        assert second.load_errors == 1 and second.failed == 1
    refused = fetch_all(database_url, "SELECT status, last_error FROM news.entries WHERE title = 'Story 2'")[0]
    assert refused["status"] == "failed" and "quarantined" in refused["last_error"]
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == N - 1


def test_entries_claimed_too_often_without_a_result_are_quarantined(database_url, settings):
    from newsflow import frontier

    with db.transaction(database_url) as conn:
        feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES ('http://q.example/f', 'Q') "
                            "RETURNING id").fetchone()["id"]
        conn.execute("""INSERT INTO news.entries (feed_id, guid, link, host, strikes, lease_owner, lease_until)
                        VALUES (%s, 'a', 'http://q.example/a', 'q.example', %s, 999999, now() + interval '1 hour'),
                               (%s, 'b', 'http://q.example/b', 'q.example', 0, NULL, NULL)""",
                     (feed, settings.max_strikes, feed))
    with frontier.Worker(database_url) as me, db.connect(database_url, autocommit=True) as conn:
        jobs = frontier.claim(conn, me.id, settings)
    assert [j.link for j in jobs] == ["http://q.example/b"]  # a's owner is dead; a is worn out
    row = fetch_all(database_url, "SELECT status, last_error FROM news.entries WHERE guid = 'a'")[0]
    assert row["status"] == "failed" and "quarantined" in row["last_error"]


def test_requeued_failed_entries_of_a_feed_are_claimed_again_even_after_quarantine(database_url, settings):
    """'Requeue failed entries' (console, CLI) clears the strikes too: a quarantined entry
    comes back as a fresh one, not straight back into quarantine."""
    from newsflow import frontier, operations
    from newsflow.storage import entries as entry_store

    with db.transaction(database_url) as conn:
        feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES ('http://q.example/f', 'Q') "
                            "RETURNING id").fetchone()["id"]
        conn.execute("""INSERT INTO news.entries (feed_id, guid, link, host, strikes, status, last_error)
                        VALUES (%s, 'a', 'http://q.example/a', 'q.example', %s, 'failed', 'quarantined: ...')""",
                     (feed, settings.max_strikes))
    with db.transaction(database_url) as conn:
        operations.requeue_failed(conn, feed, actor="test", source=operations.CLI)
    with frontier.Worker(database_url) as me, db.connect(database_url, autocommit=True) as conn:
        jobs = frontier.claim(conn, me.id, settings)
        assert [j.link for j in jobs] == ["http://q.example/a"]
        with conn.transaction():
            entry_store.release(conn, me.id)
    assert fetch_all(database_url, "SELECT status, strikes FROM news.entries")[0]["status"] == "pending"
