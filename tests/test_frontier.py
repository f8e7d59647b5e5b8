"""The frontier hands out work host by host, keeps each host's schedule across workers, and
honours Retry-After and robots.txt Crawl-delay (real PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from conftest import fetch_all

from newsflow import db, frontier
from newsflow.storage import hosts as host_store


def _world(url: str, per_host: dict[str, int]) -> None:
    with db.transaction(url) as conn:
        feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES ('http://f.example/rss', 'F') "
                            "RETURNING id").fetchone()["id"]
        n = 0
        for host, count in per_host.items():
            for i in range(count):
                n += 1
                conn.execute("""INSERT INTO news.entries (feed_id, guid, link, host, next_attempt_at)
                                VALUES (%s, %s, %s, %s, now() - make_interval(secs => %s))""",
                             (feed, f"{host}-{i}", f"http://{host}/{i}", host, 1000 - n))


def _claim(url, settings):
    with frontier.Worker(url) as me, db.connect(url, autocommit=True) as conn:
        return frontier.claim(conn, me.id, settings)


def test_hosts_in_rotation_a_few_each_with_slots_a_delay_apart(database_url, settings):
    _world(database_url, {"a.example": 10, "b.example": 3, "c.example": 3})
    polite = settings.replace(per_host_delay=1.0, frontier_horizon=2.0)
    first = frontier.Worker(database_url).__enter__()  # alive for the whole test: its leases hold
    with db.connect(database_url, autocommit=True) as conn:
        jobs = frontier.claim(conn, first.id, polite)
    hosts = [j.host for j in jobs]
    assert sorted(hosts) == ["a.example"] * 2 + ["b.example"] * 2 + ["c.example"] * 2
    assert len(set(hosts[:3])) == 3  # the first of every host before any host's second
    for host in ("a.example", "b.example", "c.example"):
        slots = sorted(j.not_before for j in jobs if j.host == host)
        assert slots[1] - slots[0] == timedelta(seconds=1)
    schedule = {r["host"]: r["next_allowed_at"] for r in fetch_all(database_url, "SELECT * FROM news.hosts")}
    assert schedule["a.example"] == max(j.not_before for j in jobs if j.host == "a.example") + timedelta(seconds=1)
    # another worker, at once: the next slots of each host, never overlapping the first's
    more = _claim(database_url, polite)
    a_slots = sorted(j.not_before for j in jobs + more if j.host == "a.example")
    assert all(later - earlier >= timedelta(seconds=1) for earlier, later in pairwise(a_slots))
    assert not {j.entry_id for j in jobs} & {j.entry_id for j in more}
    first.__exit__(None, None, None)
    # the first worker is gone: its entries are free for anyone at once
    assert {j.entry_id for j in jobs} <= {j.entry_id for j in _claim(database_url, polite.replace(
        frontier_horizon=1000.0, batch_size=100))}


def test_politeness_lifted_hands_out_a_whole_batch_of_one_host(database_url, settings):
    _world(database_url, {"a.example": 40})
    jobs = _claim(database_url, settings.replace(per_host_delay=0.0, batch_size=32))
    assert len(jobs) == 32 and all(j.not_before is None for j in jobs)


def test_a_host_that_asked_to_wait_is_not_handed_out(database_url, settings):
    _world(database_url, {"a.example": 3, "b.example": 3})
    with db.transaction(database_url) as conn:
        host_store.defer(conn, "b.example", 3600, "host b.example answered HTTP 429 (Retry-After 3600)")
    jobs = _claim(database_url, settings.replace(per_host_delay=1.0))
    assert jobs and {j.host for j in jobs} == {"a.example"}
    with db.connect(database_url, autocommit=True) as conn:
        wait = frontier.next_opening(conn, settings.replace(per_host_delay=1.0))
    assert 0 <= wait <= 2  # a.example's next slot, not b.example's hour


def test_robots_crawl_delay_spaces_a_host_further(database_url, settings):
    _world(database_url, {"slow.example": 4})
    with db.transaction(database_url) as conn:
        host_store.set_crawl_delay(conn, "slow.example", 5.0)
    jobs = _claim(database_url, settings.replace(per_host_delay=1.0, frontier_horizon=10.0))
    slots = sorted(j.not_before for j in jobs)
    assert len(jobs) >= 2 and all(b - a == timedelta(seconds=5) for a, b in pairwise(slots))
