"""SIGINT and SIGTERM in every phase of `newsflow run` (issue 15, docs/politeness.md
"Signals"): syncing the feeds file, polling (a feed that never answers, and a huge document
parsed in the worker processes), fetching pages (a page that never answers), extracting (a
huge page, in the extraction workers) and writing (waiting for the load lock). In each, the
run exits with 128 + the signal within 5 s of it, every claimed entry is given back (no
lease, no attempt, no strike) and no worker process outlives it; three runs interrupted in
a row, then one clean run loads every entry with none quarantined.

Every run is the real `newsflow run` in a subprocess, against a real PostgreSQL and one
loopback FaultServer shared by the whole module (its slow routes are held by events).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from conftest import REPO_ROOT, fetch_all
from faultserver import FaultServer, article_html, rss
from test_faults import _cmd, _env, _wait_for

N = 3  # stories of the ordinary feed
STOP_WITHIN = 5.0  # seconds from the signal to the exit: the requirement of issue 15
BIG_FEED_ITEMS = 30_000  # ~6.5 MB of RSS: about 15 s of feedparser in a parse worker
HUGE_PAGE_PARAGRAPHS = 60_000  # ~10 MB of HTML: well over 10 s of trafilatura in an extraction worker
BUSY_CPU = 1.0  # CPU seconds a worker has spent when we call it busy (parsing or extracting)

pytestmark = pytest.mark.slow


@dataclass
class World:
    """The loopback publisher: an ordinary feed of N stories, a huge feed, a feed whose one
    story is a huge page. ``feed_gate`` / ``page_gate`` cleared: the feed / the pages wait
    (until the gate is set again or the server stops)."""
    fs: FaultServer
    feed_gate: threading.Event = field(default_factory=threading.Event)
    page_gate: threading.Event = field(default_factory=threading.Event)
    served: dict[str, threading.Event] = field(default_factory=dict)  # path -> body sent

    def __post_init__(self) -> None:
        fs = self.fs
        for i in range(N):
            fs.route(f"/page/{i}", self._held(self.page_gate,
                                              article_html(f"Story {i}", paragraphs=8, seed=f"s{i}")))
        fs.route("/feed.xml", self._held(self.feed_gate, rss(
            [{"title": f"Story {i}", "link": fs.url(f"/page/{i}"), "guid": f"urn:story:{i}",
              "description": f"Summary {i}"} for i in range(N)]), "application/rss+xml"))
        fs.route("/big.xml", self._sent("/big.xml", rss(
            [{"title": f"Item {i}", "link": fs.url(f"/never/{i}"), "guid": f"urn:big:{i}",
              "description": "word " * 20} for i in range(BIG_FEED_ITEMS)]), "application/rss+xml"))
        fs.route("/huge.xml", self._sent("/huge.xml", rss(
            [{"title": "Huge", "link": fs.url("/huge.html"), "guid": "urn:huge", "description": "Huge"}]),
            "application/rss+xml"))
        fs.route("/huge.html", self._sent("/huge.html", article_html("Huge", paragraphs=HUGE_PAGE_PARAGRAPHS,
                                                                      seed="huge")))
        self.open()

    def _held(self, gate: threading.Event, body: bytes, ctype: str = "text/html; charset=utf-8"):
        def handler(req):
            if not gate.is_set():
                gate.wait(300)
                if req.stop.is_set():
                    return
            req.send_plain(200, body, {"Content-Type": ctype})
        return handler

    def _sent(self, path: str, body: bytes, ctype: str = "text/html; charset=utf-8"):
        self.served[path] = threading.Event()

        def handler(req):
            req.send_plain(200, body, {"Content-Type": ctype})
            self.served[path].set()
        return handler

    def open(self) -> None:
        self.feed_gate.set()
        self.page_gate.set()
        for event in self.served.values():
            event.clear()

    def feeds_file(self, tmp_path: Path, path: str = "/feed.xml") -> Path:
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - url: {self.fs.url(path)}\n    publisher: Signals\n")
        return feeds


@pytest.fixture(scope="module")
def world():
    with FaultServer() as fs:
        w = World(fs)
        yield w
        w.open()  # handlers still holding a request answer it (to a closed socket) and end


@pytest.fixture
def fresh_world(world):
    world.open()
    yield world
    world.open()


# --- what a run looks like from outside ------------------------------------------------------

def _children(pid: int) -> dict[int, float]:
    """The run's child processes (its parse or extraction workers): pid -> CPU seconds used."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[1]) == pid:  # ppid
            found[int(entry)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _trying_a_lock(database_url) -> bool:
    """A session of the run trying a coordination lock (storage.locks tries every 50 ms), or
    blocked on one (a plain wait, as before issue 15)."""
    return bool(fetch_all(database_url, """
        SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND xact_start IS NOT NULL
          AND (query LIKE '%%news.locks%%SKIP LOCKED%%' OR wait_event_type = 'Lock')
          AND pid <> pg_backend_pid()"""))


def _write_waiting(database_url) -> bool:
    """Entries are claimed and a session tries a lock: the batch's write waits for the load
    lock (the feeds-sync lock, taken before anything is claimed, is long released)."""
    leased = fetch_all(database_url, "SELECT count(*) AS n FROM news.entries WHERE lease_owner IS NOT NULL")
    return leased[0]["n"] > 0 and _trying_a_lock(database_url)


def _hold(database_url, lock: str) -> psycopg.Connection:
    """Hold a coordination lock (its row of news.locks, as the owner) until closed."""
    conn = psycopg.connect(database_url)
    conn.execute("SELECT name FROM news.locks WHERE name = %s FOR UPDATE", (lock,))
    return conn


@dataclass
class Stopped:
    code: int
    seconds: float  # from the signal to the exit
    err: str
    workers_left: list[int]  # worker processes still alive after the run exited


def _interrupt(cmd, env, sig: int, in_phase) -> Stopped:
    """Start the run, wait until ``in_phase(proc)`` says it is in the phase, send ``sig``,
    and time the exit."""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for(lambda: proc.poll() is not None or in_phase(proc), timeout=120, what="the phase")
        assert proc.poll() is None, f"the run ended before the signal: {proc.communicate()[1][-2000:]}"
        workers = list(_children(proc.pid))
        proc.send_signal(sig)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - sent
        _wait_for(lambda: not any(_alive(w) for w in workers), timeout=10, what="the workers to end")
        return Stopped(proc.returncode, seconds, err, [w for w in workers if _alive(w)])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _given_back(database_url) -> list[dict]:
    """Every entry pending, unleased, never attempted, never struck (or none yet)."""
    rows = fetch_all(database_url, "SELECT id, status, lease_owner, attempts, strikes, last_error "
                                   "FROM news.entries ORDER BY id")
    bad = [r for r in rows if (r["status"], r["lease_owner"], r["attempts"], r["strikes"]) != ("pending", None, 0, 0)]
    assert bad == [], bad[:3]
    return rows


# --- every phase, both signals -----------------------------------------------------------------

def _busy_worker(proc, served: threading.Event) -> bool:
    """The document was sent and a worker process of the run is working on it."""
    return served.is_set() and any(cpu >= BUSY_CPU for cpu in _children(proc.pid).values())


PHASES = ["sync", "poll", "parse", "fetch", "extract", "write"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", PHASES)
def test_a_signal_in_every_phase_stops_the_run_within_5s_giving_leases_back(
        fresh_world, database_url, tmp_path, phase, sig):
    w = fresh_world
    env = _env(database_url, tmp_path, NEWSFLOW_READ_TIMEOUT="300", NEWSFLOW_TOTAL_TIMEOUT="300",
               NEWSFLOW_LOCK_TIMEOUT="600", NEWSFLOW_PARSE_TIMEOUT="600", NEWSFLOW_EXTRACT_TIMEOUT="600")
    feeds = w.feeds_file(tmp_path)
    held = None
    expect_entries = 0
    if phase == "sync":  # another sync holds the feeds-sync lock: the run waits for it
        held = _hold(database_url, "feeds_sync")
        in_phase = lambda proc: _trying_a_lock(database_url)  # noqa: E731
    elif phase == "poll":  # the feed never answers
        w.feed_gate.clear()
        before = len(w.fs.hits("/feed.xml"))
        in_phase = lambda proc: len(w.fs.hits("/feed.xml")) > before  # noqa: E731
    elif phase == "parse":  # a huge document, parsed in the worker processes
        feeds = w.feeds_file(tmp_path, "/big.xml")
        env.update(NEWSFLOW_PARSE_POOL_MIN_FEEDS="1")
        in_phase = lambda proc: _busy_worker(proc, w.served["/big.xml"])  # noqa: E731
    elif phase == "fetch":  # the pages never answer
        w.page_gate.clear()
        before = len(w.fs.hits("/page/0"))
        in_phase = lambda proc: len(w.fs.hits("/page/0")) > before  # noqa: E731
        expect_entries = N
    elif phase == "extract":  # a huge page, extracted in the worker processes
        feeds = w.feeds_file(tmp_path, "/huge.xml")
        env.update(NEWSFLOW_MAX_PAGE_BYTES=str(64 << 20), NEWSFLOW_MAX_EXTRACT_BYTES=str(64 << 20))
        in_phase = lambda proc: _busy_worker(proc, w.served["/huge.html"])  # noqa: E731
        expect_entries = 1
    else:  # "write": the batch is done and waits for the load lock another session holds
        held = _hold(database_url, "load")
        in_phase = lambda proc: _write_waiting(database_url)  # noqa: E731
        expect_entries = N
    try:
        stopped = _interrupt(_cmd(feeds), env, sig, in_phase)
    finally:
        if held is not None:
            held.close()
    print(f"{phase} {signal.Signals(sig).name}: exit {stopped.code} {stopped.seconds:.2f}s after the signal")
    assert stopped.code == 128 + sig, stopped.err[-2000:]
    assert stopped.seconds < STOP_WITHIN, (phase, stopped.seconds, stopped.err[-2000:])
    assert f"stopped by {signal.Signals(sig).name}" in stopped.err and "Traceback" not in stopped.err, stopped.err
    assert stopped.workers_left == []
    rows = _given_back(database_url)
    assert len(rows) == expect_entries, rows
    # a stop is no feed's failure: a feed in flight (parsed in a worker the stop killed
    # included) is abandoned unwritten
    feeds_rows = fetch_all(database_url, "SELECT consecutive_errors, last_error FROM news.feeds")
    assert all((f["consecutive_errors"], f["last_error"]) == (0, None) for f in feeds_rows), feeds_rows
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0


def test_three_runs_interrupted_in_a_row_then_a_clean_run_loads_all_none_quarantined(
        fresh_world, database_url, tmp_path):
    w = fresh_world
    env = _env(database_url, tmp_path, NEWSFLOW_READ_TIMEOUT="300", NEWSFLOW_TOTAL_TIMEOUT="300",
               NEWSFLOW_LOCK_TIMEOUT="600")
    feeds = w.feeds_file(tmp_path)
    codes = []

    # 1. SIGTERM while fetching: the pages never answer
    w.page_gate.clear()
    before = len(w.fs.hits("/page/0"))
    codes.append(_interrupt(_cmd(feeds), env, signal.SIGTERM, lambda p: len(w.fs.hits("/page/0")) > before))
    w.page_gate.set()
    # 2. SIGINT while the write waits for the load lock
    held = _hold(database_url, "load")
    try:
        codes.append(_interrupt(_cmd(feeds), env, signal.SIGINT, lambda p: _write_waiting(database_url)))
    finally:
        held.close()
    # 3. SIGTERM while polling: the feed never answers
    w.feed_gate.clear()
    before = len(w.fs.hits("/feed.xml"))
    codes.append(_interrupt(_cmd(feeds), env, signal.SIGTERM, lambda p: len(w.fs.hits("/feed.xml")) > before))
    w.feed_gate.set()

    assert [s.code for s in codes] == [143, 130, 143], [s.err[-500:] for s in codes]
    assert all(s.seconds < STOP_WITHIN for s in codes), [s.seconds for s in codes]
    _given_back(database_url)

    clean = subprocess.run(_cmd(feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert clean.returncode == 0, clean.stderr[-2000:]
    rows = fetch_all(database_url, "SELECT status, attempts, strikes, lease_owner FROM news.entries ORDER BY id")
    assert [(r["status"], r["attempts"], r["strikes"], r["lease_owner"]) for r in rows] == [("loaded", 1, 0, None)] * N
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == N


# --- lock waits of the other commands: bounded, named, interruptible ---------------------------

LOCK_WAITS = [  # (command, the lock another session holds)
    (["purge", "--article", "1", "--reason", "test"], "load"),
    (["purge", "--article", "1", "--reason", "test"], "changes"),
    (["dedup", "rebuild"], "load"),
    (["feeds", "sync", "{feeds}"], "feeds_sync"),
]


def _command(args: list[str], feeds: Path) -> list[str]:
    return [_cmd(feeds)[0], "-m", "newsflow", *[a.format(feeds=feeds) for a in args]]


@pytest.mark.parametrize("args, lock", LOCK_WAITS, ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]))
def test_a_busy_lock_ends_the_wait_after_the_lock_timeout_with_one_line_naming_it(
        fresh_world, database_url, tmp_path, args, lock):
    feeds = fresh_world.feeds_file(tmp_path)
    env = _env(database_url, tmp_path, NEWSFLOW_LOCK_TIMEOUT="1")
    held = _hold(database_url, lock)
    try:
        done = subprocess.run(_command(args, feeds), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        held.close()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"the {lock} lock (news.locks '{lock}'" in lines[0], lines[0]
    assert "held by another session for more than 1s" in lines[0] and "NEWSFLOW_LOCK_TIMEOUT" in lines[0]
    print(lines[0])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("args, lock", LOCK_WAITS[::3], ids=["purge", "feeds sync"])
def test_a_signal_ends_a_lock_wait_at_once(fresh_world, database_url, tmp_path, args, lock, sig):
    feeds = fresh_world.feeds_file(tmp_path)
    env = _env(database_url, tmp_path, NEWSFLOW_LOCK_TIMEOUT="600")
    held = _hold(database_url, lock)
    try:
        stopped = _interrupt(_command(args, feeds), env, sig, lambda p: _trying_a_lock(database_url))
    finally:
        held.close()
    print(f"{' '.join(args[:2])} waiting for the {lock} lock, {signal.Signals(sig).name}: "
          f"exit {stopped.code} {stopped.seconds:.2f}s after the signal")
    assert stopped.code == 128 + sig, stopped.err
    assert stopped.seconds < STOP_WITHIN, stopped.seconds
    assert f"stopped by {signal.Signals(sig).name}" in stopped.err and "Traceback" not in stopped.err
    # nothing of the interrupted command was done
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.feeds")[0]["n"] == 0
