"""Operating newsflow: feed states (stale from each feed's own rhythm, deferred by
Retry-After), what the feeds file means for disabled feeds, the operator actions shared by
the console and the CLI, and their audit trail. Real PostgreSQL, no Airflow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import sql

from newsflow import cli, db, health
from newsflow import operations as ops
from newsflow.config import Settings
from newsflow.maintenance import health_report, measure_rhythm, new_stale_episodes
from newsflow.models import FeedSpec, StaleRule
from newsflow.pipeline import sync_feeds
from newsflow.storage import audit
from newsflow.storage import feeds as feed_store

RULE = StaleRule(factor=4.0, min_age=86400, default_age=7 * 86400, min_samples=5)
NOW = datetime.now(timezone.utc)


def spec(n: int, **kw) -> FeedSpec:
    return FeedSpec(url=f"https://news{n}.example/rss.xml", publisher=f"Outlet {n}",
                    name=kw.pop("name", f"Outlet {n} - World"), **kw)


def states(url: str, **kw) -> dict[int, object]:
    with db.connect(url) as conn:
        rows, _ = feed_store.health(conn, RULE, **kw)
    return {r.id: r for r in rows}


def polled_ok(url: str, feed_id: int, *, interval: int = 900, ago: float = 60) -> None:
    """As after a successful poll `ago` seconds ago (next poll = last poll + interval)."""
    sql(url, """UPDATE news.feeds SET last_status = 200, consecutive_errors = 0, last_error = NULL,
                last_polled_at = now() - make_interval(secs => %(ago)s), effective_interval = %(i)s,
                next_poll_at = now() - make_interval(secs => %(ago)s) + make_interval(secs => %(i)s)
                WHERE id = %(id)s""", {"ago": ago, "i": interval, "id": feed_id})


def arrivals(url: str, feed_id: int, times: list[datetime]) -> None:
    """New entries that arrived at these times (one poll each)."""
    for i, t in enumerate(times):
        sql(url, """INSERT INTO news.entries (feed_id, guid, link, title, status, first_seen_at)
                    VALUES (%s, %s, %s, %s, 'loaded', %s)""",
            (feed_id, f"g{feed_id}-{i}-{t.timestamp()}", f"https://x.example/{feed_id}/{i}", f"item {i}", t))


@pytest.fixture
def feeds(database_url):
    sync_feeds(database_url, [spec(n) for n in range(1, 7)])
    with db.connect(database_url) as conn:
        return {r["publisher"]: r["id"] for r in conn.execute("SELECT id, publisher FROM news.feeds")}


# --- states ---------------------------------------------------------------------------------------

def test_every_state_and_why(database_url, feeds):
    new, healthy, failing, disabled, deferred, stale = (feeds[f"Outlet {n}"] for n in range(1, 7))
    for f in (healthy, failing, deferred, stale):
        polled_ok(database_url, f)
    arrivals(database_url, healthy, [NOW - timedelta(minutes=30)])
    sql(database_url, "UPDATE news.feeds SET consecutive_errors = 2, last_error = 'HTTP 503', "
                      "next_poll_at = now() + interval '10 minutes' WHERE id = %s", (failing,))
    with db.transaction(database_url) as conn:  # the poll's own paths: disabled after errors, Retry-After
        feed_store.record_failure(conn, disabled, status=404, error="HTTP 404", retry_in=600,
                                  disable_reason="10 consecutive failures; last: HTTP 404")
        feed_store.defer_host(conn, "news5.example", 3600)
    # a quiet feed: arrivals every 6 h for two weeks, then nothing for 2 days
    arrivals(database_url, stale, [NOW - timedelta(days=2, hours=6 * k) for k in range(40)])
    sql(database_url, "UPDATE news.feeds SET created_at = now() - interval '30 days'")
    measure_rhythm(database_url, Settings(database_url=database_url))

    got = states(database_url)
    assert {f: got[f].state for f in got} == {new: "new", healthy: "healthy", failing: "failing",
                                               disabled: "disabled", deferred: "deferred", stale: "stale"}
    assert got[stale].rhythm_seconds == 6 * 3600 and got[stale].rhythm_trusted
    assert got[stale].stale_after == 24 * 3600  # max(4 x 6 h, 1 day)
    assert health.reason(got[stale]) == "answers, but no new entry for 2 d; usually every 6 h"
    assert health.reason(got[failing]).startswith("2 consecutive failures; last: HTTP 503; next try in")
    assert health.reason(got[deferred]).startswith("its host asked newsflow to wait (Retry-After)")
    assert health.reason(got[disabled]) == ("10 consecutive failures; last: HTTP 404; stays disabled until an "
                                    "operator re-enables it (the feeds file cannot)")
    assert health.reason(got[new]) == "not polled yet"
    assert got[healthy].entries_24h == 1 and got[healthy].loaded_7d == 1
    assert got[stale].label == f"feed {stale} (Outlet 6 - World)"


def test_unknown_rhythm_uses_the_default_age(database_url, feeds):
    quiet = feeds["Outlet 1"]
    polled_ok(database_url, quiet)
    arrivals(database_url, quiet, [NOW - timedelta(days=3), NOW - timedelta(days=4)])  # one gap: too few
    measure_rhythm(database_url, Settings(database_url=database_url))
    assert states(database_url)[quiet].state == "healthy"  # 3 days < 7 days
    sql(database_url, "UPDATE news.entries SET first_seen_at = first_seen_at - interval '5 days'")
    row = states(database_url)[quiet]
    assert row.state == "stale" and "its rhythm is not known yet" in health.reason(row)


def test_stale_feeds_are_reported_once_per_episode(database_url, feeds):
    quiet = feeds["Outlet 1"]
    polled_ok(database_url, quiet)
    arrivals(database_url, quiet, [NOW - timedelta(days=3, hours=2 * k) for k in range(20)])
    settings = Settings(database_url=database_url)
    measure_rhythm(database_url, settings)
    first = new_stale_episodes(database_url, health_report(database_url, settings))
    assert [f.id for f in first] == [quiet]
    assert new_stale_episodes(database_url, health_report(database_url, settings)) == []  # same episode
    # new entries end the episode; when it goes quiet again, that is a new one
    arrivals(database_url, quiet, [NOW - timedelta(days=2)])
    measure_rhythm(database_url, settings)
    assert [f.id for f in new_stale_episodes(database_url, health_report(database_url, settings))] == [quiet]


def test_the_health_check_reports_a_new_stale_episode_once_with_why(database_url, feeds):
    """maintenance.check_health, what `newsflow maintenance` and the maintenance DAG print."""
    from newsflow.maintenance import check_health

    quiet = feeds["Outlet 1"]
    polled_ok(database_url, quiet)
    arrivals(database_url, quiet, [NOW - timedelta(days=3, hours=2 * k) for k in range(20)])
    settings = Settings(database_url=database_url)
    first = check_health(database_url, settings)
    assert [f.id for f in first.newly_stale] == [quiet] and first.counts()["stale"] == 1
    assert any(line.startswith("newly stale: stale") and "no new entry for" in line for line in first.lines())
    assert "1 stale" in first.summary() and "1 newly stale" in first.summary()
    assert check_health(database_url, settings).newly_stale == []  # the same episode: once


def test_filter_sort_search_and_pages(database_url, feeds):
    polled_ok(database_url, feeds["Outlet 2"])
    sql(database_url, "UPDATE news.feeds SET consecutive_errors = 3, last_error = 'timeout' WHERE id = %s",
        (feeds["Outlet 3"],))
    with db.connect(database_url) as conn:
        rows, counts = feed_store.health(conn, RULE, sort="state", limit=2)
        assert [r.id for r in rows] == [feeds["Outlet 3"], feeds["Outlet 1"]]  # failing first, then new
        assert counts == {"failing": 1, "new": 4, "healthy": 1}
        rows, _ = feed_store.health(conn, RULE, sort="state", limit=2, offset=4)
        assert [r.id for r in rows] == [feeds["Outlet 6"], feeds["Outlet 2"]]
        rows, counts = feed_store.health(conn, RULE, state="new", q="outlet 5")
        assert [r.id for r in rows] == [feeds["Outlet 5"]] and counts == {"new": 1}
        rows, counts = feed_store.health(conn, RULE, q="100%_")  # LIKE wildcards are text
        assert rows == [] and counts == {}
        with pytest.raises(ValueError, match="unknown sort"):
            feed_store.health(conn, RULE, sort="id; DROP TABLE news.feeds")


# --- the feeds file and disabled feeds ------------------------------------------------------------

def test_feeds_file_enables_only_what_it_disabled(database_url, feeds):
    f1, f2, f3 = feeds["Outlet 1"], feeds["Outlet 2"], feeds["Outlet 3"]
    # f1: the file disables it, and enables it again
    result = sync_feeds(database_url, [spec(1, enabled=False)])
    assert result.disabled_ids == [f1]
    row = states(database_url)[f1]
    assert row.state == "disabled" and row.disabled_by == "file"
    assert "`enabled: true` there (or an operator) enables it again" in health.reason(row)
    assert sync_feeds(database_url, [spec(1)]).enabled_ids == [f1]
    assert states(database_url)[f1].state == "new"
    # f2: newsflow disabled it after errors: `enabled: true` in the file does not bring it back
    with db.transaction(database_url) as conn:
        feed_store.record_failure(conn, f2, status=500, error="HTTP 500", retry_in=60,
                                  disable_reason="10 consecutive failures; last: HTTP 500")
    assert sync_feeds(database_url, [spec(2)]).enabled_ids == []
    assert states(database_url)[f2].state == "disabled"
    # f3: an operator disabled it: the file's default `enabled: true` does not undo that
    with db.transaction(database_url) as conn:
        ops.disable(conn, f3, "publisher asked us to stop", actor="ops", source=ops.CONSOLE)
    sync_feeds(database_url, [spec(3)])
    assert states(database_url)[f3].disabled_reason == "disabled by ops: publisher asked us to stop"
    # re-enabling a feed the file disables warns that the next sync disables it again
    sync_feeds(database_url, [spec(1, enabled=False)])
    with db.transaction(database_url) as conn:
        action = ops.enable(conn, f1, actor="ops", source=ops.CONSOLE)
    assert "its next sync disables the feed again" in action.summary()
    assert sync_feeds(database_url, [spec(1, enabled=False)]).disabled_ids == [f1]
    with db.connect(database_url) as conn:
        trail = [a.summary() for a in audit.recent(conn, feed_id=f1)]
    assert trail[-1] == f"feeds file disabled feed {f1} (Outlet 1 - World): `enabled: false` in the feeds file"
    assert trail[-2] == f"feeds file re-enabled feed {f1} (Outlet 1 - World): `enabled: true` in the feeds file"


def test_a_new_feed_disabled_in_the_file(database_url):
    sync_feeds(database_url, [spec(9, enabled=False)])
    [row] = states(database_url).values()
    assert (row.state, row.disabled_by, row.disabled_reason) == (
        "disabled", "file", "disabled in the feeds file (enabled: false)")


# --- operations --------------------------------------------------------------------------------------

def test_operations_resolve_record_and_refuse(database_url, feeds):
    f1, f2 = feeds["Outlet 1"], feeds["Outlet 2"]
    with db.transaction(database_url) as conn:
        assert ops.resolve(conn, "Outlet 1 \u2013 World")["id"] == f1  # typed with an en dash
        assert ops.resolve(conn, f"feed {f2} (whatever)")["id"] == f2
        assert ops.resolve(conn, "https://news2.example/rss.xml")["id"] == f2
        with pytest.raises(ops.OperationError, match="no feed matches"):
            ops.resolve(conn, "Nobody")
        with pytest.raises(ops.OperationError, match="say why"):
            ops.disable(conn, f1, "  ", actor="ops", source=ops.CONSOLE)
        disabled = ops.disable(conn, f1, "paywall only", actor="ops", source=ops.CONSOLE)
        with pytest.raises(ops.OperationError, match=r"is disabled \(disabled by ops: paywall only\); "
                                                     r"re-enable it first"):
            ops.poll_now(conn, f1, actor="ops", source=ops.CONSOLE)
        polled = ops.poll_now(conn, f2, actor="ops", source=ops.CONSOLE, trigger=lambda f: ops.Started("run manual__1"))
    assert disabled.summary() == f"ops (console) disabled feed {f1} (Outlet 1 - World): paywall only"
    assert polled.summary() == f"ops (console) asked to poll feed {f2} (Outlet 2 - World): run manual__1"
    assert states(database_url)[f2].next_poll_at <= datetime.now(timezone.utc)


def test_requeue_entry_and_failed_entries_of_a_feed(database_url, feeds, monkeypatch, capsys):
    f1 = feeds["Outlet 1"]
    arrivals(database_url, f1, [NOW, NOW, NOW])
    ids = [r["id"] for r in sql(database_url, "UPDATE news.entries SET status = 'failed', attempts = 5, "
                                              "last_error = 'page fetch failed: HTTP 404' RETURNING id")]
    with db.transaction(database_url) as conn:
        one = ops.requeue_entry(conn, ids[0], actor="ops", source=ops.CONSOLE)
        with pytest.raises(ops.OperationError, match="already pending"):
            ops.requeue_entry(conn, ids[0], actor="ops", source=ops.CONSOLE)
    assert one.summary().startswith(f"ops (console) requeued entry {ids[0]} of feed {f1} (Outlet 1 - World)")
    assert "(was failed: page fetch failed: HTTP 404)" in one.summary()
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    assert cli.main(["requeue", "--feed", "Outlet 1 - World"]) == 0  # the CLI: the same function
    assert "requeued the failed entries of feed" in capsys.readouterr().out
    rows = sql(database_url, "SELECT status, attempts FROM news.entries")
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in rows)
    assert cli.main(["requeue", "--feed", "Outlet 1 - World"]) == 1  # nothing failed any more
    actions = sql(database_url, "SELECT action, source FROM news.operator_actions ORDER BY id")
    assert actions == [{"action": "requeue entry", "source": "console"},
                       {"action": "requeue failed entries", "source": "cli"}]


def test_cli_disable_needs_a_reason_and_status_names_feeds(database_url, feeds, monkeypatch, capsys):
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    with pytest.raises(SystemExit):
        cli.main(["feeds", "disable", "Outlet 2 - World"])
    assert cli.main(["feeds", "disable", "Outlet 2 - World", "--reason", "moved to a paywall"]) == 0
    out = capsys.readouterr().out
    assert "disabled feed" in out and "moved to a paywall" in out
    assert cli.main(["feeds", "status"]) == 0
    out = capsys.readouterr().out
    assert "Outlet 2 - World" in out and "disabled by" in out and "1 disabled, 5 new" in out


def test_a_re_enabled_feed_is_new_until_it_answers(database_url, feeds):
    gone = feeds["Outlet 1"]
    with db.transaction(database_url) as conn:
        feed_store.record_failure(conn, gone, status=410, error="HTTP 410", retry_in=60,
                                  disable_reason="HTTP 410 Gone: the publisher removed this feed")
        ops.enable(conn, gone, actor="ops", source=ops.CONSOLE)
    row = states(database_url)[gone]
    assert (row.state, row.last_success_at) == ("new", None)  # not stale, not healthy, no fake success
    assert health.reason(row).startswith("errors cleared; not polled since")
    polled_ok(database_url, gone)
    assert states(database_url)[gone].state == "healthy"
