"""A publisher's outage never stops a pass (issue 15).

One loopback host serves 44 failing feeds at once — eleven ways of failing, four feeds
each — next to four healthy hosts; every feed is polled at full concurrency, and the
pass is repeated ten times. Before the lock discipline (docs/politeness.md, "Lock
order") a host deferral (INSERT … ON CONFLICT on news.hosts, UPDATE of the host's
feeds) deadlocked with the failure writes of the host's other feeds and the whole pass
ended with exit 2 and nothing loaded.
"""

from __future__ import annotations

import contextlib

import pytest

from conftest import fetch_all
from faultserver import FaultServer, article_html, rss
from newsflow.config import Settings
from newsflow.pipeline import run_once

FAILURES = ["404", "500", "410", "reset", "hang_up", "loop", "503_retry_after", "429_retry_after",
            "html", "empty", "bomb"]
PER_KIND = 4  # 44 failing feeds on one host
HEALTHY_HOSTS, HEALTHY_ITEMS = 4, 3
PASSES = 10


def _failing_host(fs: FaultServer) -> list[str]:
    urls = []
    for kind in FAILURES:
        for i in range(PER_KIND):
            path = f"/{kind}/{i}.xml"
            if kind in ("404", "500", "410"):
                fs.add(path, "error page", status=int(kind))
            elif kind == "reset":
                fs.route(path, fs.reset)
            elif kind == "hang_up":
                fs.route(path, fs.hang_up)
            elif kind == "loop":
                fs.redirect_loop(path, path + ".b")
            elif kind == "503_retry_after":
                fs.add(path, "busy", status=503, headers={"Retry-After": "1"})
            elif kind == "429_retry_after":
                fs.add(path, "slow down", status=429, headers={"Retry-After": "1"})
            elif kind == "html":
                fs.add(path, "<html><body><p>Not a feed, a home page.</p></body></html>")
            elif kind == "empty":
                fs.add(path, b"", content_type="application/rss+xml")
            elif kind == "bomb":
                fs.route(path, fs.bomb("gzip", 24 * 1024 * 1024))
            urls.append(fs.url(path))
    return urls


def _healthy_host(fs: FaultServer, n: int) -> str:
    items = []
    for i in range(HEALTHY_ITEMS):
        fs.add(f"/story/{i}", article_html(f"Host {n} story {i}", seed=f"h{n}s{i}"))
        items.append({"title": f"Host {n} story {i}", "link": fs.url(f"/story/{i}"),
                      "guid": f"urn:h{n}:{i}", "description": f"Summary {n}/{i}"})
    return fs.add("/feed.xml", rss(items), content_type="application/rss+xml")


@pytest.mark.slow
def test_a_publisher_outage_on_one_host_never_aborts_a_pass(database_url, tmp_path):
    settings = Settings(database_url=database_url, data_dir=str(tmp_path / "state"), allow_private_networks=True,
                        per_host_delay=0.0, per_host_concurrency=4, extract_workers=1,
                        poll_concurrency=len(FAILURES) * PER_KIND + HEALTHY_HOSTS,  # every feed at once
                        max_feed_bytes=4 * 1024 * 1024, connect_timeout=2, read_timeout=2, total_timeout=4,
                        max_feed_errors=100, parse_pool_min_feeds=10_000)
    with contextlib.ExitStack() as stack:
        bad = stack.enter_context(FaultServer())
        failing = _failing_host(bad)
        healthy = [_healthy_host(stack.enter_context(FaultServer()), n) for n in range(HEALTHY_HOSTS)]
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(f"  - url: {u}\n    publisher: P{i}\n"
                                              for i, u in enumerate(failing + healthy)))
        aborted = []
        for n in range(PASSES):
            try:
                report = run_once(settings, feeds, force=True)
            except Exception as exc:  # the bug: the whole pass dies
                aborted.append(f"pass {n}: {type(exc).__name__}: {exc}")
                continue
            by_url = {p.url: p for p in report.polls}
            assert all(not by_url[u].failed for u in healthy), [by_url[u] for u in healthy]
            # every failing feed has its own outcome: a failure, or deferred by its host's Retry-After
            assert all(by_url[u].error for u in failing if u in by_url)
        assert aborted == []
        # the failing host's requests were all answered by the server (no feed skipped silently)
        assert bad.requests

    loaded = fetch_all(database_url, """SELECT e.status, count(*) AS n FROM news.entries e
                                        JOIN news.feeds f ON f.id = e.feed_id WHERE f.url = ANY(%s)
                                        GROUP BY e.status""", (healthy,))
    assert {r["status"]: r["n"] for r in loaded} == {"loaded": HEALTHY_HOSTS * HEALTHY_ITEMS}
    # every failing feed that was asked recorded its failure on its own row (one that was
    # always deferred by its host's Retry-After was never asked and has nothing to record)
    rows = fetch_all(database_url, """
        SELECT f.url, f.consecutive_errors, f.last_error FROM news.feeds f
        WHERE f.url = ANY(%s) AND EXISTS (SELECT 1 FROM news.fetch_log l WHERE l.feed_id = f.id)""", (failing,))
    assert len(rows) >= len(failing) // 2
    assert all(r["last_error"] and r["consecutive_errors"] >= 1 for r in rows), [r for r in rows if not r["last_error"]]


# --- one rule for feeds and pages (politeness.py) ---------------------------------------------

def test_a_429_without_retry_after_means_the_same_for_a_feed_and_a_page():
    """Before, a feed's 429 without Retry-After was an ordinary error with backoff while a
    page's deferred its host for 60 s; now both defer the host for host_backoff_default."""
    from newsflow.decide import decide
    from newsflow.fetch import PageFetch
    from newsflow.httpclient import FetchResult
    from newsflow.models import Action, Feed, PageJob
    from newsflow.politeness import backoff, decide_poll_failure, host_wait

    settings = Settings(host_backoff_default=45.0, retry_after_cap=3600)
    limited = FetchResult(url="http://h.test/feed", final_url="http://h.test/feed", status=429)
    assert host_wait(settings, limited, jitter=False) == 45.0
    decision = decide_poll_failure(settings, Feed(id=1, url="http://h.test/feed", publisher="P"), limited, "HTTP 429")
    assert decision.host_deferral is not None and decision.host_deferral.host == "h.test"
    assert 45.0 <= decision.host_deferral.seconds <= 54.0 and decision.retry_in == decision.host_deferral.seconds
    assert decision.disable_reason is None  # a 429 never disables

    page = FetchResult(url="http://h.test/p", final_url="http://h.test/p", status=429)
    job = PageJob(entry_id=1, feed_id=1, publisher="P", link="http://h.test/p", title="t", summary=None,
                  author=None, published_at=None, attempts=0, host="h.test", not_before=None, strikes=0,
                  article_id=None, allow_deleted=False)
    made = decide(job, PageFetch("http://h.test/p", result=page, deferred_for=host_wait(settings, page, jitter=False)),
                  None, settings)
    assert made.action is Action.POSTPONE and made.retry_in == 45.0

    # an ordinary failure: the one backoff
    failed = FetchResult(url="http://h.test/feed", final_url="http://h.test/feed", status=500)
    feed = Feed(id=1, url="http://h.test/feed", publisher="P", consecutive_errors=2)
    d = decide_poll_failure(settings, feed, failed, "HTTP 500")
    assert d.host_deferral is None and d.retry_in == backoff(settings.error_backoff_base, 2) == 1200
