"""Politeness and scheduling: conditional GET, adaptive interval, Retry-After per host,
backoff, disable/enable, permanent redirects, bad GUIDs, per-host article limits, robots."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from faultserver import FaultServer, article_html, loopback_resolver, rss
from newsflow import cli, db
from newsflow.config import Settings
from newsflow.fetch import PageFetcher
from newsflow.politeness import HostGate
from newsflow.httpclient import FetchResult, SafeClient
from newsflow.models import ErrorKind, Feed, FeedSpec
from newsflow.pipeline import sync_feeds
from newsflow.poll import next_interval, poll_feeds, select_feeds

FAST = dict(connect_timeout=0.5, read_timeout=1.0, total_timeout=2.0)


@pytest.fixture
def fs():
    with FaultServer() as server:
        yield server


@pytest.fixture
def st(database_url) -> Settings:
    return Settings(database_url=database_url, allow_private_networks=True, per_host_delay=0.0,
                    **FAST)


def add_feeds(url: str, feeds: dict[str, str]) -> dict[str, int]:
    sync_feeds(url, [FeedSpec(url=u, publisher=name) for name, u in feeds.items()])
    with db.connect(url) as conn:
        return {r["publisher"]: r["id"] for r in conn.execute("SELECT id, publisher FROM news.feeds")}


def poll(url: str, settings: Settings, ids=None, client=None):
    with db.connect(url) as conn:
        feeds = select_feeds(conn, feed_ids=ids, force=ids is None)
    return poll_feeds(url, settings, feeds, client=client)


def feed_row(url: str, feed_id: int) -> dict:
    with db.connect(url) as conn:
        return conn.execute("""
            SELECT *, extract(epoch FROM next_poll_at - now()) AS due_in
            FROM news.feeds WHERE id = %s""", (feed_id,)).fetchone()


def entries(url: str, feed_id: int) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute("SELECT * FROM news.entries WHERE feed_id = %s ORDER BY id", (feed_id,)).fetchall()


ITEMS = [{"title": f"Story {i}", "link": f"http://news.test/{i}", "guid": f"urn:s:{i}",
          "description": f"text {i}"} for i in range(3)]


# --- conditional GET, forced full fetch, state ---------------------------------------------------

def test_conditional_get_state_and_forced_full_fetch(database_url, st, fs):
    body = rss(ITEMS)

    def handler(req):
        if req.headers.get("If-None-Match") == '"v1"':
            req.send_plain(304, b"", {"ETag": '"v1"'})
        else:
            req.send_plain(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"',
                                       "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})
    ids = add_feeds(database_url, {"f": fs.route("/feed", handler)})
    fid = ids["f"]
    first = poll(database_url, st)[0]
    assert first.new_entries == 3 and first.status == 200
    row = feed_row(database_url, fid)
    assert row["etag"] == '"v1"' and row["last_modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert row["last_status"] == 200 and row["consecutive_errors"] == 0 and row["last_error"] is None
    assert row["due_in"] > 0 and row["last_full_fetch_at"] is not None

    second = poll(database_url, st)[0]
    assert second.not_modified and second.status == 304 and second.new_entries == 0
    sent = fs.hits("/feed")[-1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert feed_row(database_url, fid)["last_status"] == 304

    # 12 h after the last unconditional fetch, the next one is unconditional again
    with db.transaction(database_url) as conn:
        conn.execute("UPDATE news.feeds SET last_full_fetch_at = now() - interval '13 hours'")
    third = poll(database_url, st)[0]
    sent = fs.hits("/feed")[-1].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent
    assert third.status == 200 and third.new_entries == 0  # same body: nothing duplicated
    assert len(entries(database_url, fid)) == 3


# --- adaptive interval -----------------------------------------------------------------------------

def _r(headers: dict) -> FetchResult:
    return FetchResult(url="u", final_url="u", status=200, headers=headers)


def test_next_interval_honours_server_hints_and_widens_for_quiet_feeds():
    s = Settings(default_poll_interval=900, min_poll_interval=300, max_poll_interval=86400)
    feed = Feed(id=1, url="u", publisher="p")
    assert next_interval(s, feed, _r({}), changed=True) == 900
    assert next_interval(s, feed, _r({"cache-control": "public, max-age=3600"}), changed=True) == 3600
    expires = format_datetime(datetime.now(timezone.utc) + timedelta(hours=2), usegmt=True)
    assert 7000 <= next_interval(s, feed, _r({"expires": expires}), changed=True) <= 7200
    assert next_interval(s, feed, _r({}), changed=True, ttl=60 * 60) == 3600  # <ttl>60</ttl>
    assert next_interval(s, feed, _r({"cache-control": "max-age=5"}), changed=True) == 900  # never faster
    assert next_interval(s, feed, _r({"cache-control": "max-age=9999999"}), changed=True) == 86400  # capped
    # nothing new: widen by half each time, up to the ceiling; something new: back to base
    quiet = Feed(id=1, url="u", publisher="p", effective_interval=900)
    assert next_interval(s, quiet, _r({}), changed=False) == 1350
    quiet.effective_interval = 80000
    assert next_interval(s, quiet, _r({}), changed=False) == 86400
    assert next_interval(s, quiet, _r({}), changed=True) == 900
    assert next_interval(s, Feed(id=1, url="u", publisher="p", poll_interval=600), _r({}), changed=True) == 600


def test_ttl_and_quiet_feed_widening_are_stored(database_url, st, fs):
    ids = add_feeds(database_url, {
        "ttl": fs.add("/ttl", rss(ITEMS, ttl=120), content_type="application/rss+xml"),
        "quiet": fs.add("/quiet", rss(ITEMS), content_type="application/rss+xml"),
    })
    poll(database_url, st)
    assert feed_row(database_url, ids["ttl"])["effective_interval"] == 7200
    assert feed_row(database_url, ids["quiet"])["effective_interval"] == 900
    poll(database_url, st)  # unchanged body, no 304: counts as "nothing new"
    assert feed_row(database_url, ids["quiet"])["effective_interval"] == 1350


# --- Retry-After per host, backoff, disable, enable --------------------------------------------------

def test_retry_after_defers_every_feed_on_that_host(database_url, st, fs):
    resolver = loopback_resolver({"a.test": "127.0.0.1", "b.test": "127.0.0.1"})
    fs.add("/limited", "slow down", status=429, headers={"Retry-After": "120"})
    fs.add("/other", rss(ITEMS), content_type="application/rss+xml")
    ids = add_feeds(database_url, {"a1": fs.url("/limited", host="a.test"),
                                   "a2": fs.url("/other", host="a.test"),
                                   "b1": fs.url("/other", host="b.test")})
    settings = st.replace(poll_concurrency=1)  # a1 first, then a2 and b1
    with SafeClient(settings, resolver=resolver) as client:
        outcomes = {o.feed_id: o for o in poll(database_url, settings, client=client)}
    a1, a2, b1 = (feed_row(database_url, ids[n]) for n in ("a1", "a2", "b1"))
    assert 119 <= a1["due_in"] <= 145 and a1["last_status"] == 429  # 120 s + up to 20% jitter
    assert "Retry-After" in a1["last_error"] or "retry after" in a1["last_error"]
    assert outcomes[ids["a2"]].error.startswith("deferred:")  # not requested in this run
    assert outcomes[ids["a2"]].deferred
    assert [h for h in fs.hits("/other") if h.host.startswith("a.test")] == []
    assert a2["due_in"] >= 119 and a2["consecutive_errors"] == 0  # pushed back, not an error
    assert b1["last_status"] == 200 and b1["consecutive_errors"] == 0  # another host: unaffected

    # a later run that only polls due feeds leaves the host alone
    with db.connect(database_url) as conn:
        due = {f.id for f in select_feeds(conn)}
    assert ids["a1"] not in due and ids["a2"] not in due


def test_retry_after_http_date_and_cap(database_url, st, fs):
    when = format_datetime(datetime.now(timezone.utc) + timedelta(minutes=10), usegmt=True)
    fs.add("/dated", "busy", status=503, headers={"Retry-After": when})
    fs.add("/greedy", "busy", status=503, headers={"Retry-After": "99999999"})
    ids = add_feeds(database_url, {"dated": fs.url("/dated", host="one.test"),
                                   "greedy": fs.url("/greedy", host="two.test")})
    settings = st.replace(retry_after_cap=3600)
    resolver = loopback_resolver({"one.test": "127.0.0.1", "two.test": "127.0.0.1"})
    with SafeClient(settings, resolver=resolver) as client:
        poll(database_url, settings, client=client)
    assert 590 <= feed_row(database_url, ids["dated"])["due_in"] <= 721
    assert feed_row(database_url, ids["greedy"])["due_in"] <= 3600


def test_backoff_disable_after_failures_and_enable_by_command(database_url, st, fs, monkeypatch, capsys,
                                                              caplog):
    ids = add_feeds(database_url, {"broken": fs.add("/broken", "boom", status=500),
                                   "gone": fs.add("/gone", "gone", status=410),
                                   "fine": fs.add("/fine", rss(ITEMS), content_type="application/rss+xml")})
    settings = st.replace(max_feed_errors=3, error_backoff_base=100)
    waits = []
    for attempt in range(1, 4):
        poll(database_url, settings, ids=[ids["broken"], ids["fine"]] + ([ids["gone"]] if attempt == 1 else []))
        row = feed_row(database_url, ids["broken"])
        assert row["consecutive_errors"] == attempt and row["last_error"] == "HTTP 500"
        waits.append(row["due_in"])
    assert 95 <= waits[0] <= 100 and 195 <= waits[1] <= 200  # exponential per feed
    broken, gone = feed_row(database_url, ids["broken"]), feed_row(database_url, ids["gone"])
    assert not broken["enabled"] and "3 consecutive failures" in broken["disabled_reason"]
    assert not gone["enabled"] and "410 Gone" in gone["disabled_reason"] and gone["consecutive_errors"] == 1
    with db.connect(database_url) as conn:
        assert {f.id for f in select_feeds(conn, force=True)} == {ids["fine"]}

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert cli.main(["feeds", "status"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert "disabled" in lines[str(ids["gone"])] and "410 Gone" in out
    assert "3 consecutive failures; last: HTTP 500" in out
    fine_line = lines[str(ids["fine"])]
    assert " healthy " in fine_line and datetime.now(timezone.utc).strftime("%Y-%m-%d") in fine_line  # next poll
    # the poll said so in words an operator acts on
    assert (f"feed {ids['broken']} (broken) disabled after 3 consecutive failures: HTTP 500; "
            "re-enable in Feeds") in caplog.text

    assert cli.main(["feeds", "enable", "broken"]) == 0  # by name; recorded like the console's
    assert f"re-enabled feed {ids['broken']} (broken): was disabled: 3 consecutive failures" in capsys.readouterr().out
    row = feed_row(database_url, ids["broken"])
    assert row["enabled"] and row["consecutive_errors"] == 0 and row["disabled_reason"] is None
    assert row["due_in"] <= 0
    assert cli.main(["feeds", "enable", "999999"]) == 1
    with db.connect(database_url) as conn:
        [action] = conn.execute("SELECT * FROM news.operator_actions").fetchall()
    assert (action["action"], action["source"], action["feed_id"]) == ("enable", "cli", ids["broken"])


def test_status_shows_failing_feed_with_error_and_next_poll(database_url, st, fs, monkeypatch, capsys):
    ids = add_feeds(database_url, {"flaky": fs.route("/flaky", fs.reset)})
    poll(database_url, st)
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert cli.main(["feeds", "status"]) == 0
    out = capsys.readouterr().out
    assert "failing" in out and "connection reset" in out and "next poll" in out
    assert feed_row(database_url, ids["flaky"])["due_in"] > 0


# --- redirects -----------------------------------------------------------------------------------------

def test_permanent_redirect_moves_the_feed_temporary_does_not(database_url, st, fs):
    fs.add("/new", rss(ITEMS), content_type="application/rss+xml")
    ids = add_feeds(database_url, {"moved301": fs.redirect("/old301", fs.url("/new"), 301),
                                   "moved308": fs.redirect("/old308", fs.url("/new"), 308),
                                   "temp302": fs.redirect("/tmp302", fs.url("/new"), 302),
                                   "temp307": fs.redirect("/tmp307", fs.url("/new"), 307),
                                   "mixed": fs.redirect("/mixed", fs.url("/tmp307"), 301)})
    poll(database_url, st)
    urls = {n: feed_row(database_url, i)["url"] for n, i in ids.items()}
    # the first permanent move wins the URL; a second feed moving to the same URL keeps its own
    moved = [n for n in ("moved301", "moved308") if urls[n] == fs.url("/new")]
    assert len(moved) == 1
    assert urls["temp302"].endswith("/tmp302") and urls["temp307"].endswith("/tmp307")
    assert urls["mixed"].endswith("/mixed")  # 301 then 307: not every hop permanent


# --- bad GUIDs -------------------------------------------------------------------------------------------

def test_missing_repeated_and_duplicate_guids(database_url, st, fs):
    missing = [{"title": f"M{i}", "link": f"http://news.test/m{i}"} for i in range(3)]
    repeated = [{"title": f"R{i}", "link": f"http://news.test/r{i}", "guid": "urn:same"} for i in range(4)]
    duplicated = ITEMS + [ITEMS[0], ITEMS[1]]  # the same item listed twice
    shared_link = [{"title": f"S{i}", "link": "http://news.test/home", "guid": "urn:same",
                    "pubDate": datetime(2024, 1, 1 + i, tzinfo=timezone.utc)} for i in range(3)]
    ids = add_feeds(database_url, {
        "missing": fs.add("/missing", rss(missing), content_type="application/rss+xml"),
        "repeated": fs.add("/repeated", rss(repeated), content_type="application/rss+xml"),
        "duplicated": fs.add("/duplicated", rss(duplicated), content_type="application/rss+xml"),
        "shared_link": fs.add("/shared", rss(shared_link), content_type="application/rss+xml"),
    })
    for _ in range(2):
        poll(database_url, st)
    assert [e["guid"] for e in entries(database_url, ids["missing"])] == [m["link"] for m in missing]
    assert len(entries(database_url, ids["repeated"])) == 4
    row = feed_row(database_url, ids["repeated"])
    assert row["guid_mode"] == "link" and "identity downgraded" in row["last_error"]
    assert len(entries(database_url, ids["duplicated"])) == 3
    assert len(entries(database_url, ids["shared_link"])) == 3
    assert feed_row(database_url, ids["shared_link"])["guid_mode"] == "link_title_date"


def test_guids_changing_every_poll_neither_duplicate_nor_vanish(database_url, st, fs):
    counter = itertools.count()
    items = [dict(i) for i in ITEMS]

    def handler(req):
        n = next(counter)
        doc = [{**i, "guid": f"urn:rnd:{uuid.uuid4()}"} for i in items]
        if n >= 2:  # a new item appears, and an old title is edited
            doc = [{"title": "Story 9", "link": "http://news.test/9", "guid": f"urn:rnd:{uuid.uuid4()}"}] + doc
            doc[1] = {**doc[1], "title": "Story 0 (updated)"}
        req.send_plain(200, rss(doc), {"Content-Type": "application/rss+xml"})
    ids = add_feeds(database_url, {"rnd": fs.route("/rnd", handler)})
    for _ in range(4):
        poll(database_url, st)
    stored = entries(database_url, ids["rnd"])
    assert sorted(e["link"] for e in stored) == sorted([i["link"] for i in ITEMS] + ["http://news.test/9"])
    row = feed_row(database_url, ids["rnd"])
    assert row["guid_mode"] == "link" and row["consecutive_errors"] == 0


# --- article fetches: per-host limits, robots, Retry-After --------------------------------------------

def test_per_host_concurrency_limit(fs):
    resolver = loopback_resolver({"a.test": "127.0.0.1", "b.test": "127.0.0.1"})
    for i in range(6):
        fs.add(f"/p{i}", article_html(f"P{i}"), delay=0.2)
    settings = Settings(allow_private_networks=True, per_host_concurrency=2, per_host_delay=0.0,
                        fetch_concurrency=8, **FAST)
    urls = [fs.url(f"/p{i}", host=h) for h in ("a.test", "b.test") for i in range(6)]
    with SafeClient(settings, resolver=resolver) as client:
        pages = PageFetcher(settings, client).fetch_jobs([(u, None) for u in urls])
    assert all(p.result.ok for p in pages)
    hosts = {h: n for h, n in fs.max_in_flight.items() if not h.endswith("robots")}
    assert hosts[f"a.test:{fs.port}"] <= 2 and hosts[f"b.test:{fs.port}"] <= 2


def test_per_host_minimum_delay_between_request_starts(monkeypatch):
    """The gate's spacing, on a virtual clock (no real sleeping, no timing in asserts)."""
    import newsflow.politeness as fetch_mod

    clock = {"now": 1000.0}
    lock = threading.Lock()

    class FakeTime:
        @staticmethod
        def monotonic():
            with lock:
                return clock["now"]

        @staticmethod
        def sleep(seconds):
            with lock:
                clock["now"] += seconds

    monkeypatch.setattr(fetch_mod, "time", FakeTime)  # the HostGate clock
    gate = HostGate(concurrency=1, delay=2.5)
    starts = {"a": [], "b": []}
    for host in ("a", "a", "b", "a", "b"):
        with gate(host):
            starts[host].append(FakeTime.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(starts["a"])]
    assert gaps and all(g >= 2.5 for g in gaps)
    assert starts["b"][1] - starts["b"][0] >= 2.5


def test_robots_txt_obeyed_and_cached_per_host(fs):
    fs.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    for p in ("/private/a", "/public/b", "/public/c"):
        fs.add(p, article_html(p))
    settings = Settings(allow_private_networks=True, per_host_delay=0.0, **FAST)
    with SafeClient(settings) as client:
        fetcher = PageFetcher(settings, client)
        pages = fetcher.fetch_jobs([(fs.url(p), None) for p in ("/private/a", "/public/b", "/public/c")])
        pages += fetcher.fetch_jobs([(fs.url("/private/a"), None)])
    assert pages[0].denied[0] is ErrorKind.ROBOTS and "disallows" in pages[0].denied[1] and pages[3].denied
    assert pages[1].result.ok and pages[2].result.ok
    assert len(fs.hits("/robots.txt")) == 1 and fs.hits("/private/a") == []
    assert "newsflow/" in fs.hits("/public/b")[0].headers["user-agent"]


def test_robots_for_our_user_agent_and_unavailable_robots(fs):
    resolver = loopback_resolver({"down.test": "127.0.0.1", "picky.test": "127.0.0.1"})

    def robots(req):
        if req.headers["Host"].startswith("down.test"):
            req.send_plain(503, b"down")
        else:
            req.send_plain(200, b"User-agent: newsflow\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
                           {"Content-Type": "text/plain"})
    fs.route("/robots.txt", robots)
    fs.add("/story", article_html("story"))
    settings = Settings(allow_private_networks=True, per_host_delay=0.0, **FAST)
    with SafeClient(settings, resolver=resolver) as client:
        down, picky = PageFetcher(settings, client).fetch_jobs(
            [(fs.url("/story", host="down.test"), None), (fs.url("/story", host="picky.test"), None)])
    assert down.denied[0] is ErrorKind.ROBOTS_UNAVAILABLE  # 5xx: not fetched now, retried later
    assert "robots.txt unavailable" in down.denied[1]
    assert picky.denied[0] is ErrorKind.ROBOTS and "disallows" in picky.denied[1]
    assert fs.hits("/story") == []


def test_page_429_defers_the_rest_of_that_host(fs):
    resolver = loopback_resolver({"busy.test": "127.0.0.1", "calm.test": "127.0.0.1"})
    fs.add("/first", "slow down", status=429, headers={"Retry-After": "30"})
    for i in range(3):
        fs.add(f"/next{i}", article_html(f"n{i}"))
    settings = Settings(allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=1,
                        fetch_concurrency=1, **FAST)
    urls = [fs.url("/first", host="busy.test")] + [fs.url(f"/next{i}", host="busy.test") for i in range(3)]
    urls.append(fs.url("/next0", host="calm.test"))
    with SafeClient(settings, resolver=resolver) as client:
        pages = PageFetcher(settings, client).fetch_jobs([(u, None) for u in urls])
    assert pages[0].result.status == 429
    assert all(p.result.error_kind is ErrorKind.DEFERRED and "HTTP 429" in p.result.error for p in pages[1:4])
    assert pages[4].result.ok
    assert [h.host for h in fs.hits("/next0")] == [f"calm.test:{fs.port}"]


def test_moved_feed_is_recognised_by_the_next_sync(database_url, st, fs, tmp_path):
    """After a 301 the feed lives at its new URL; syncing the unchanged feeds file again
    must not add the old URL back as a second feed, and a pass over the file polls it."""
    from conftest import fetch_all
    from newsflow.pipeline import run_once

    fs.add("/moved-here", rss(ITEMS), content_type="application/rss+xml")
    old = fs.redirect("/declared-old", fs.url("/moved-here"), 301)
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(f"feeds:\n  - url: {old}\n    publisher: Mover\n")
    settings = st.replace(database_url=database_url)
    run_once(settings, feeds_file)
    run_once(settings, feeds_file)
    rows = fetch_all(database_url, "SELECT url, declared_url FROM news.feeds")
    assert [(r["url"], r["declared_url"]) for r in rows] == [(fs.url("/moved-here"), old)]
    report = run_once(settings, feeds_file)
    assert [p.url for p in report.polls] == [fs.url("/moved-here")]


def test_many_feeds_are_parsed_in_worker_processes_with_the_same_outcome(fs, st, database_url, monkeypatch):
    """A poll of at least NEWSFLOW_PARSE_POOL_MIN_FEEDS feeds parses in worker processes:
    the entries, the identity downgrades and the errors are the same as in-process."""
    urls = {f"P{i}": fs.add(f"/feed{i}.xml", rss([{"title": f"Item {i}.{j}", "link": f"http://news.test/{i}/{j}",
                                                    "guid": f"g{i}.{j}"} for j in range(3)]),
                             content_type="application/rss+xml") for i in range(3)}
    urls["Broken"] = fs.add("/broken.xml", b"<html><body>not a feed</body></html>")
    ids = add_feeds(database_url, urls)
    import newsflow.poll as poll_module

    pooled = []  # which Parsers this poll made: it must be the pooled kind
    real_init = poll_module.Parsers.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        pooled.append(self._pool is not None)

    monkeypatch.setattr(poll_module.Parsers, "__init__", spy)
    outcomes = {o.feed_id: o for o in poll(database_url, st.replace(parse_pool_min_feeds=2))}
    assert pooled == [True]
    assert [outcomes[ids[f"P{i}"]].new_entries for i in range(3)] == [3, 3, 3]
    assert "not a feed" in outcomes[ids["Broken"]].error
    assert [e["guid"].rsplit("/", 1)[-1] for e in entries(database_url, ids["P1"])] == ["g1.0", "g1.1", "g1.2"]


def test_a_document_that_outlives_the_parse_timeout_is_its_feeds_error_only(st):
    """In the worker pool, a document that takes longer than NEWSFLOW_PARSE_TIMEOUT gets
    its worker killed and becomes that feed's 'unparseable' error; the pool goes on."""
    from newsflow.poll import Parsers

    huge = rss([{"title": f"Item {j}", "link": f"http://news.test/{j}", "guid": f"g{j}"} for j in range(20000)])
    small = rss([{"title": "One", "link": "http://news.test/one", "guid": "one"}])
    parsers = Parsers(st.replace(parse_pool_min_feeds=1, parse_timeout=0.5), feeds=1)
    try:
        slow = parsers.parse(huge, "http://news.test/huge.xml", "guid", "application/rss+xml", settings=st)
        assert slow.entries == [] and "longer than 0.5s" in slow.error  # it takes seconds
        quick = parsers.parse(small, "http://news.test/one.xml", "guid", "application/rss+xml", settings=st)
        assert quick.error is None and [e.title for e in quick.entries] == ["One"]
    finally:
        parsers.close()


def test_a_success_on_a_host_that_asked_to_wait_still_waits(fs, st, database_url):
    """Another feed's 429 (Retry-After) on the same host, while this feed's poll was in
    flight: this feed's success does not undo the host's deferral."""
    from newsflow.politeness import host_key
    from newsflow.storage import hosts as host_store

    ids = add_feeds(database_url, {"Calm": fs.add("/calm.xml", rss([{"title": "T", "link": "http://news.test/t"}]),
                                                  content_type="application/rss+xml")})
    with db.transaction(database_url) as conn:
        host_store.defer(conn, host_key(fs.url("/calm.xml")), 3600, "another feed got HTTP 429")
    [outcome] = poll(database_url, st)
    assert outcome.error is None and outcome.new_entries == 1
    assert feed_row(database_url, ids["Calm"])["due_in"] > 3000


def test_a_failure_on_a_host_that_asked_to_wait_still_waits(fs, st, database_url):
    """The same for a failing poll: its error backoff (minutes) does not bring the next
    poll before the host's Retry-After (an hour)."""
    from newsflow.politeness import host_key
    from newsflow.storage import hosts as host_store

    ids = add_feeds(database_url, {"Broken": fs.add("/broken.xml", b"oops", status=500)})
    with db.transaction(database_url) as conn:
        host_store.defer(conn, host_key(fs.url("/broken.xml")), 3600, "another feed got HTTP 429")
    [outcome] = poll(database_url, st)
    assert outcome.error
    assert feed_row(database_url, ids["Broken"])["due_in"] > 3000
