"""Infrastructure faults, repeated (issue 15): transient database errors are retried and
recorded, never fatal; strikes count only what an entry did (killed runs never quarantine
a good entry); every phase honours SIGINT/SIGTERM promptly; a reader cannot stall a writer.

Every run is the real `newsflow` command (or the stage functions) against a real
PostgreSQL and loopback servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import REPO_ROOT, execute, fetch_all
from faultserver import FaultServer, article_html, rss
from test_faults import _cmd, _env, _wait_for, _writer_waiting
from newsflow import db, dberrors
from newsflow.storage.workers import LIVE_OWNERS_SQL, WORKER_LOCK_NS


def _world(fs: FaultServer, tmp_path, n: int, hold: threading.Event | None = None, feed_hold=None):
    """One feed of ``n`` stories; pages (and the feed, with ``feed_hold``) wait for their event."""
    for i in range(n):
        def page(req, i=i):
            if hold is not None and not hold.is_set():
                hold.wait(120)
                if req.stop.is_set():
                    return
            req.send_plain(200, article_html(f"Story {i}", paragraphs=6, seed=f"s{i}"))
        fs.route(f"/page/{i}", page)
    doc = rss([{"title": f"Story {i}", "link": fs.url(f"/page/{i}"), "guid": f"urn:story:{i}",
                "description": f"Summary {i}"} for i in range(n)])

    def feed(req):
        if feed_hold is not None and not feed_hold.is_set():
            feed_hold.wait(120)
            if req.stop.is_set():
                return
        req.send_plain(200, doc, {"Content-Type": "application/rss+xml"})
    fs.route("/feed.xml", feed)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {fs.url('/feed.xml')}\n    publisher: Faults\n")
    return feeds


def _all_loaded(database_url, n: int) -> None:
    rows = fetch_all(database_url, "SELECT status, strikes, last_error FROM news.entries ORDER BY id")
    assert len(rows) == n
    quarantined = [r for r in rows if r["status"] == "failed"]
    assert quarantined == [], quarantined[:3]
    assert [r["status"] for r in rows] == ["loaded"] * n
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == n


def _kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# --- classification: one line that names what happened ------------------------------------

def test_database_errors_are_named_for_what_they_are(database_url):
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '50ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
            conn.execute("SELECT pg_sleep(2)")
    line = dberrors.explain(cancelled.value, database_url)
    assert "timeout" in line and "check that the server is up" not in line and "cannot connect" not in line
    assert "\n" not in line and dberrors.is_transient(cancelled.value)
    with pytest.raises(db.DatabaseError) as refused:
        # a closed loopback port: nothing listens there
        db.connect(make_conninfo(database_url, port=1, connect_timeout=2))
    assert "cannot connect" in str(refused.value) and "\n" not in str(refused.value)
    assert not dberrors.is_transient(psycopg.errors.ReadOnlySqlTransaction("x"))
    assert "read-only" in dberrors.explain(psycopg.errors.ReadOnlySqlTransaction("x"), database_url)
    assert "deadlock" in dberrors.explain(psycopg.errors.DeadlockDetected("x"), database_url)


def test_db_errors_module_imports_nothing_of_the_database_layer():
    """dberrors breaks the import cycle db -> maintenance -> storage.entries -> db."""
    code = ("import sys, newsflow.dberrors; "
            "bad = [m for m in sys.modules if m in ('newsflow.db', 'newsflow.storage.entries', 'newsflow.maintenance')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_statement_timeout_while_recording_a_poll_is_retried_then_recorded_on_that_feed(database_url, settings):
    """One feed's outcome cannot be written (each try is cancelled by statement_timeout):
    it is tried db_retries times, then recorded on that feed with the cause; the other
    feeds are polled and recorded, and nothing ends the poll."""
    from newsflow.pipeline import sync_feeds
    from newsflow.models import FeedSpec
    from newsflow.poll import poll_feeds, select_feeds

    execute(database_url, """
        CREATE FUNCTION news.slow_log() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.url LIKE '%%/stuck.xml' THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$""")
    execute(database_url, "CREATE TRIGGER slow_log BEFORE INSERT ON news.fetch_log "
                          "FOR EACH ROW EXECUTE FUNCTION news.slow_log()")
    name = conninfo_to_dict(database_url)["dbname"]
    execute(database_url, f'ALTER DATABASE "{name}" SET statement_timeout = \'300ms\'')
    settings = settings.replace(db_retries=3, db_retry_delay=0.01)
    with FaultServer() as fs:
        good = fs.add("/good.xml", rss([{"title": "A", "link": fs.url("/a"), "guid": "a"}]),
                      content_type="application/rss+xml")
        stuck = fs.add("/stuck.xml", rss([{"title": "B", "link": fs.url("/b"), "guid": "b"}]),
                       content_type="application/rss+xml")
        sync_feeds(database_url, [FeedSpec(url=good, publisher="G"), FeedSpec(url=stuck, publisher="S")])
        with db.connect(database_url) as conn:
            outcomes = {o.url: o for o in poll_feeds(database_url, settings, select_feeds(conn, force=True))}
    assert outcomes[good].error is None and outcomes[good].new_entries == 1
    assert "statement cancelled" in outcomes[stuck].error and "tried 3 times" in outcomes[stuck].error
    rows = {r["url"]: r for r in fetch_all(database_url, "SELECT url, consecutive_errors, last_error FROM news.feeds")}
    assert "57014" in rows[stuck]["last_error"] and rows[stuck]["consecutive_errors"] == 0  # not the feed's fault
    # its entries were rolled back with the outcome: the next poll stores them
    assert [r["link"] for r in fetch_all(database_url, "SELECT link FROM news.entries")] == [fs.url("/a")]


def test_a_statement_timeout_in_the_write_phase_puts_the_batch_back_without_attempt_or_strike(
        database_url, settings, tmp_path):
    """Every try of the write is cancelled (statement_timeout): the entries go back to the
    queue with the cause, no attempt and no strike counted, and ingestion ends normally;
    once the database is itself again, they load."""
    from newsflow.ingest import ingest_pending
    from newsflow.pipeline import sync_file
    from newsflow.poll import poll_feeds, select_feeds

    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, 2)
        sync_file(database_url, feeds)
        with db.connect(database_url) as conn:
            poll_feeds(database_url, settings, select_feeds(conn, force=True))
        execute(database_url, """
            CREATE FUNCTION news.slow_article() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$""")
        execute(database_url, "CREATE TRIGGER slow_article BEFORE INSERT ON news.articles "
                              "FOR EACH ROW EXECUTE FUNCTION news.slow_article()")
        name = conninfo_to_dict(database_url)["dbname"]
        execute(database_url, f'ALTER DATABASE "{name}" SET statement_timeout = \'300ms\'')
        result = ingest_pending(database_url, settings.replace(db_retries=2, db_retry_delay=0.01))
        assert result.db_retried == 2 and result.loaded == 0 and result.failed == 0
        rows = fetch_all(database_url, "SELECT status, attempts, strikes, last_error, lease_owner FROM news.entries")
        assert all((r["status"], r["attempts"], r["strikes"], r["lease_owner"]) == ("pending", 0, 0, None)
                   for r in rows), rows
        assert all("57014" in r["last_error"] and "statement cancelled" in r["last_error"] for r in rows)
        execute(database_url, "DROP TRIGGER slow_article ON news.articles")
        execute(database_url, f'ALTER DATABASE "{name}" RESET statement_timeout')
        execute(database_url, "UPDATE news.entries SET next_attempt_at = now()")
        assert ingest_pending(database_url, settings).loaded == 2
    _all_loaded(database_url, 2)


# --- strikes: repeated faults outside an entry never quarantine it --------------------------

N100 = 100


@pytest.mark.slow
def test_five_sigkills_in_ingest_and_three_in_polling_then_a_run_loads_all_with_none_quarantined(
        database_url, tmp_path):
    hold, feed_hold = threading.Event(), threading.Event()
    feed_hold.set()
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, N100, hold=hold, feed_hold=feed_hold)
        env = _env(database_url, tmp_path, NEWSFLOW_BATCH_SIZE="40", NEWSFLOW_READ_TIMEOUT="120",
                   NEWSFLOW_TOTAL_TIMEOUT="120")
        for kill in range(5):  # killed while its batches' leases are held (pages hang)
            before = len(fs.requests)
            proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for(lambda before=before: any(r.path.startswith("/page/") for r in fs.requests[before:]),
                      what=f"kill {kill}: a page request")
            _wait_for(lambda: fetch_all(database_url, f"""SELECT 1 FROM news.entries
                                                          WHERE lease_owner IN ({LIVE_OWNERS_SQL})"""),
                      what="leased entries")
            _kill_group(proc)
        feed_hold.clear()
        for kill in range(3):  # killed while polling
            before = len(fs.hits("/feed.xml"))
            proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for(lambda before=before: len(fs.hits("/feed.xml")) > before, what=f"poll kill {kill}: the feed request")
            _kill_group(proc)
        feed_hold.set()
        hold.set()
        done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert " 0 failed" in done.stderr and "quarantined" not in done.stderr
    _all_loaded(database_url, N100)


def test_a_refused_row_is_the_only_thing_that_strikes(database_url, settings):
    """Claims and given-back leases count nothing; only a failed load does."""
    from newsflow import frontier
    from newsflow.storage import entries as entry_store

    with db.transaction(database_url) as conn:
        feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES ('http://s.example/f', 'S') "
                            "RETURNING id").fetchone()["id"]
        conn.execute("INSERT INTO news.entries (feed_id, guid, link, host) "
                     "VALUES (%s, 'a', 'http://s.example/a', 's.example')", (feed,))
    for _ in range(settings.max_strikes + 2):
        with frontier.Worker(database_url) as me, db.connect(database_url, autocommit=True) as conn:
            assert len(frontier.claim(conn, me.id, settings)) == 1
        # the worker dies with its lease (connection closed): nothing is given back
    row = fetch_all(database_url, "SELECT status, strikes FROM news.entries")[0]
    assert (row["status"], row["strikes"]) == ("pending", 0)
    with frontier.Worker(database_url) as me, db.connect(database_url, autocommit=True) as conn:
        job, = frontier.claim(conn, me.id, settings)
        with conn.transaction():
            entry_store.mark_retry(conn, job.entry_id, "load failed: CheckViolation", 0, strike=True)
    assert fetch_all(database_url, "SELECT strikes FROM news.entries")[0]["strikes"] == 1


def test_a_worker_of_another_database_on_the_same_server_keeps_no_lease_alive(database_url, pg_server_url,
                                                                              settings):
    """pg_locks is cluster-wide: worker 1 of another newsflow database must not make this
    database's entries leased to a dead worker 1 look taken."""
    from newsflow import frontier
    from tools.pgscratch import scratch_database

    with scratch_database(pg_server_url) as other:
        with frontier.Worker(other) as theirs:
            with db.transaction(database_url) as conn:
                feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES ('http://x.example/f', 'X') "
                                    "RETURNING id").fetchone()["id"]
                conn.execute("""INSERT INTO news.entries (feed_id, guid, link, host, lease_owner, lease_until)
                                VALUES (%s, 'a', 'http://x.example/a', 'x.example', %s, now() + interval '1 hour')""",
                             (feed, theirs.id))
                conn.execute("SELECT setval('news.worker_seq', %s)", (theirs.id + 100,))  # ours is another id
            with frontier.Worker(database_url) as me, db.connect(database_url, autocommit=True) as conn:
                assert [j.link for j in frontier.claim(conn, me.id, settings)] == ["http://x.example/a"]


# --- PostgreSQL restarted, and read-only, mid-run -------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


class Cluster:
    """A throw-away PostgreSQL cluster of this test's own (initdb/pg_ctl), to restart at will."""

    def __init__(self, root):
        import socket

        self.data, self.sock = root / "data", root / "sock"
        self.sock.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run([f"{PG_BIN}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"],
                       check=True, capture_output=True, **self._user())
        self.start()

    def _user(self) -> dict:
        # initdb refuses to run as root: run the cluster as nobody when we are root
        if os.geteuid() != 0:
            return {}
        import pwd

        nobody = pwd.getpwnam("nobody")
        for path in (self.data.parent, self.sock):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        return {"user": nobody.pw_uid, "group": nobody.pw_gid}

    def _ctl(self, *args) -> None:
        subprocess.run([f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-w", *args], check=True,
                       capture_output=True, timeout=60, **self._user())

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "-l", str(self.data.parent / "log"), "start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "-l", str(self.data.parent / "log"), "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(f"{PG_BIN}/initdb"), reason="no PostgreSQL 15 binaries")
def test_three_postgres_restarts_and_a_read_only_period_then_all_loaded_none_quarantined(tmp_path):
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="nf_cluster_"))  # traversable by the cluster's user
    os.chmod(root, 0o755)
    cluster = Cluster(root)
    try:
        url = cluster.url
        db.upgrade(url)
        hold = threading.Event()
        with FaultServer() as fs:
            feeds = _world(fs, tmp_path, N100, hold=hold)
            env = _env(url, tmp_path, NEWSFLOW_BATCH_SIZE="40", NEWSFLOW_READ_TIMEOUT="120",
                       NEWSFLOW_TOTAL_TIMEOUT="120")
            for fault in ("restart", "restart", "restart", "read-only"):
                before = len(fs.requests)
                proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
                _wait_for(lambda before=before: any(r.path.startswith("/page/") for r in fs.requests[before:]),
                          what=f"{fault}: a page request")
                if fault == "restart":
                    cluster.restart()
                    hold.set()  # the run's pages answer now: its write meets the new server
                else:
                    execute(url, "ALTER SYSTEM SET default_transaction_read_only = on")
                    execute(url, "SELECT pg_reload_conf()")
                    hold.set()
                _, err = proc.communicate(timeout=120)
                assert proc.returncode in (0, 2), err  # lost its database: exit 2 with one line
                if proc.returncode == 2:
                    assert "Traceback" not in err and "cannot connect" not in err or "refused" in err, err
                if fault == "read-only":
                    assert proc.returncode == 2 and "read-only" in err, err
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute("SET default_transaction_read_only = off")
                        conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                        conn.execute("SELECT pg_reload_conf()")
                hold.clear()
                failed = fetch_all(url, "SELECT count(*) AS n FROM news.entries WHERE status = 'failed'")
                assert failed[0]["n"] == 0
            hold.set()
            done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        _all_loaded(url, N100)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- signals in every phase ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_polling_a_slow_feed_stops_the_run_at_once(database_url, tmp_path, sig):
    feed_hold = threading.Event()
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, 3, feed_hold=feed_hold)  # the feed answers after 120 s
        env = _env(database_url, tmp_path, NEWSFLOW_READ_TIMEOUT="120", NEWSFLOW_TOTAL_TIMEOUT="120")
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: fs.hits("/feed.xml"), what="the feed request")
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=15)  # the feed still hangs: the run did not wait for it
        finally:
            if proc.poll() is None:
                proc.kill()
            feed_hold.set()
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {signal.Signals(sig).name}" in err and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_while_the_write_waits_for_the_load_lock_gives_leases_back(database_url, tmp_path):
    with FaultServer() as fs:
        feeds = _world(fs, tmp_path, 4)
        env = _env(database_url, tmp_path, NEWSFLOW_LOCK_TIMEOUT="600")
        blocker = psycopg.connect(database_url)
        blocker.execute("SELECT name FROM news.locks WHERE name = 'load' FOR UPDATE")  # held until closed
        proc = subprocess.Popen(_cmd(feeds), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: _writer_waiting(database_url), what="the write waiting for the load lock")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=15)  # the lock is still held
        finally:
            if proc.poll() is None:
                proc.kill()
            blocker.close()
    assert proc.returncode == 143, err
    rows = fetch_all(database_url, "SELECT status, lease_owner, attempts, strikes FROM news.entries")
    assert rows and all((r["status"], r["lease_owner"], r["attempts"], r["strikes"]) == ("pending", None, 0, 0)
                        for r in rows), rows


# --- readers cannot stall writers ------------------------------------------------------------

@pytest.mark.slow
def test_a_reader_holding_advisory_locks_does_not_stall_ingest(database_url, tmp_path):
    from newsflow.readers import grant_reader

    role = "nf_reader_" + conninfo_to_dict(database_url)["dbname"][-8:]
    execute(database_url, f"DROP ROLE IF EXISTS {role}")
    execute(database_url, f"CREATE ROLE {role} LOGIN")
    try:
        grant_reader(database_url, role)
        reader = psycopg.connect(make_conninfo(database_url, user=role), autocommit=True)
        # every advisory key newsflow ever used, and the next worker ids
        old_load, old_changes = 0x6E657773, 7234316872524351041
        reader.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)", (old_load, old_changes))
        reader.execute("SELECT pg_advisory_lock(hashtext('newsflow.migrations')), "
                       "pg_advisory_lock(hashtext('newsflow.feeds.sync'))")
        next_id = fetch_all(database_url, "SELECT last_value FROM news.worker_seq")[0]["last_value"]
        for wid in range(next_id, next_id + 5):
            reader.execute("SELECT pg_advisory_lock(%s, %s)", (WORKER_LOCK_NS, wid))
        # a dead worker's key held by the reader does not keep that worker's leases alive
        live = fetch_all(database_url, f"SELECT owner FROM ({LIVE_OWNERS_SQL}) w")
        assert next_id not in {r["owner"] for r in live}
        # and the coordination rows are not the reader's to lock
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT name FROM news.locks WHERE name = 'load' FOR UPDATE")
        try:
            with FaultServer() as fs:
                feeds = _world(fs, tmp_path, 4)
                env = _env(database_url, tmp_path)
                done = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                      timeout=120)
                assert done.returncode == 0, done.stderr[-2000:]
        finally:
            reader.close()
        _all_loaded(database_url, 4)
    finally:
        execute(database_url, f"REASSIGN OWNED BY {role} TO CURRENT_USER")
        execute(database_url, f"DROP OWNED BY {role}")
        execute(database_url, f"DROP ROLE {role}")
