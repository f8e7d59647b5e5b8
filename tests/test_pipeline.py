"""End to end: `newsflow run` over the sample world on loopback into a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from conftest import REPO_ROOT, fetch_all
from newsflow import cli
from newsflow.pipeline import run_once

ISIS_WIRE = "/wire/world/middle-east/coalition-says-fewer-than-1000-islamic-state-fighters-remain-2026-11-20.html"
TIMES_ISIS = "/times/article/islamic-state-reduced-to-a-few-hundred-fighters-k7w2q9dxn.html"
LUMEN = "/nbc/tech/gadgets/lumen-labs-halo-smart-glasses-translate-conversations-rcna183770.html"
HERALD_ISIS = "/herald/news/2026/11/20/coalition-islamic-state-strength-below-1000.html"
FOLLOW_UP = "/wire/world/middle-east/coalition-jets-strike-islamic-state-hideouts-in-syrias-deir-el-zor-2026-11-22.html"
PAYWALL = "/times/article/the-race-to-build-britains-first-fusion-power-station-v9t4r2bqh.html"


@pytest.fixture
def first_pass(settings, sample_feeds, sample_world):
    report = run_once(settings, sample_feeds)
    return report, sample_world.base


def article(url: str, base: str, path: str) -> dict:
    rows = fetch_all(url, "SELECT * FROM news.articles WHERE canonical_url = %s", (base + path,))
    assert len(rows) == 1, f"expected one article for {path}, got {len(rows)}"
    return rows[0]


def test_first_pass_loads_every_entry(first_pass, settings):
    report, _ = first_pass
    url = settings.database_url
    assert len(report.polls) == 6 and not report.feeds_failed
    counts = fetch_all(url, "SELECT status, count(*) AS n FROM news.entries GROUP BY status")
    assert {r["status"]: r["n"] for r in counts} == {"loaded": 14}
    assert report.totals.articles == 13
    assert report.ingest.exact_duplicates == 1
    # every entry points at an article, every fetch is in the log
    assert fetch_all(url, "SELECT count(*) AS n FROM news.entries WHERE article_id IS NULL")[0]["n"] == 0
    kinds = fetch_all(url, "SELECT kind, count(*) AS n FROM news.fetch_log GROUP BY kind ORDER BY kind")
    assert {r["kind"]: r["n"] for r in kinds} == {"feed": 6, "page": 14}


def test_same_story_in_two_feeds_is_one_article(first_pass, settings):
    _, base = first_pass
    lumen = article(settings.database_url, base, LUMEN)
    carriers = fetch_all(settings.database_url, """
        SELECT f.url FROM news.entries e JOIN news.feeds f ON f.id = e.feed_id
        WHERE e.article_id = %s ORDER BY f.url""", (lumen["id"],))
    assert [r["url"] for r in carriers] == [base + "/nbc/top.xml", base + "/nbc/world.xml"]


def test_tracking_parameters_leave_the_canonical_url(first_pass, settings):
    _, base = first_pass
    times = article(settings.database_url, base, TIMES_ISIS)
    assert "utm_source=rss" in times["url"]  # as it appeared in the feed
    assert times["canonical_url"] == base + TIMES_ISIS
    assert times["publisher"] == "The Sunday Times"


def test_dates_are_utc(first_pass, settings):
    _, base = first_pass
    wire = article(settings.database_url, base, ISIS_WIRE)
    assert wire["published_at"] == datetime(2026, 11, 20, 9, 14, tzinfo=timezone.utc)
    # every feed item date is a UTC instant, whatever offset the feed used
    rows = fetch_all(settings.database_url, "SELECT published_at FROM news.entries")
    assert all(r["published_at"] is not None for r in rows)
    assert all(r["published_at"].utcoffset().total_seconds() == 0 for r in rows)


def test_metadata_from_the_page(first_pass, settings):
    _, base = first_pass
    wire = article(settings.database_url, base, ISIS_WIRE)
    assert wire["body_source"] == "page" and wire["fallback_reason"] is None
    assert wire["body"].startswith("BAGHDAD, Nov 20 (Reuters)")
    assert "Most read" not in wire["body"]  # boilerplate stripped
    assert wire["language"] == "en"
    assert wire["authors"] and wire["word_count"] > 300
    assert len(wire["content_hash"]) == 64
    assert wire["wire_credit"] == "Reuters"


def test_paywalled_page_falls_back_to_feed_summary(first_pass, settings):
    _, base = first_pass
    paywalled = article(settings.database_url, base, PAYWALL)
    assert paywalled["body_source"] == "feed"
    assert "paywall" in paywalled["fallback_reason"]
    assert "Subscribe" not in paywalled["body"]
    entry = fetch_all(settings.database_url, "SELECT summary FROM news.entries WHERE article_id = %s",
                      (paywalled["id"],))[0]
    assert paywalled["body"] == entry["summary"]


def test_wire_story_is_one_story_with_its_outlets(first_pass, settings):
    _, base = first_pass
    url = settings.database_url
    wire = article(url, base, ISIS_WIRE)
    members = fetch_all(url, """
        SELECT publisher, story_relation FROM news.articles WHERE story_id = %s
        ORDER BY published_at""", (wire["story_id"],))
    assert [m["publisher"] for m in members] == ["Reuters Wire", "NBC News", "The Sunday Times", "NewsDigest"]
    assert [m["story_relation"] for m in members] == ["original", "copy", "copy", "excerpt"]
    assert members[0]["story_relation"] == "original"
    story = fetch_all(url, "SELECT * FROM news.stories WHERE id = %s", (wire["story_id"],))[0]
    assert story["article_count"] == 4
    assert story["origin_article_id"] == wire["id"] and story["origin_publisher"] == "Reuters Wire"
    assert story["first_published_at"] == wire["published_at"]
    # an independent write-up of the same event and a follow-up are other stories
    assert article(url, base, HERALD_ISIS)["story_id"] != wire["story_id"]
    assert article(url, base, FOLLOW_UP)["story_id"] != wire["story_id"]


def test_second_pass_is_idempotent_and_conditional(first_pass, settings, sample_feeds):
    url = settings.database_url
    before = fetch_all(url, "SELECT id, story_id, content_hash FROM news.articles ORDER BY id")
    report = run_once(settings, sample_feeds)
    assert all(p.status == 304 and p.not_modified for p in report.polls)
    assert report.new_entries == 0 and report.ingest.claimed == 0
    assert fetch_all(url, "SELECT id, story_id, content_hash FROM news.articles ORDER BY id") == before
    feeds = fetch_all(url, "SELECT etag, last_modified, last_status FROM news.feeds")
    assert all(f["etag"] and f["last_modified"] and f["last_status"] == 304 for f in feeds)


def test_rerun_after_crash_finishes_pending_work(settings, sample_feeds):
    """Entries stored but never ingested (the process died after polling) are finished
    by the next pass, and nothing is loaded twice."""
    from newsflow import db
    from newsflow.pipeline import sync_feeds
    from newsflow.poll import poll_feeds, select_feeds
    from newsflow.registry import parse_file

    url = settings.database_url
    sync_feeds(url, parse_file(sample_feeds).specs)
    with db.connect(url) as conn:
        feeds = select_feeds(conn, force=True)
    poll_feeds(url, settings, feeds)
    assert fetch_all(url, "SELECT count(*) AS n FROM news.entries WHERE status = 'pending'")[0]["n"] == 14
    report = run_once(settings, sample_feeds)
    assert report.new_entries == 0 and report.ingest.claimed == 14
    assert report.totals.articles == 13 and report.totals.pending == 0


def test_cli_run_prints_summary(settings, sample_feeds, monkeypatch, capsys):
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("NEWSFLOW_PER_HOST_DELAY", "0")
    monkeypatch.setenv("NEWSFLOW_EXTRACT_WORKERS", "2")
    assert cli.main(["run", "--feeds", str(sample_feeds)]) == 0
    out = capsys.readouterr().out
    assert "newsflow pass summary" in out
    assert "13 articles" in out and "9 stories" in out
    assert "Reuters Wire (original), NBC News (copy)" in out


def test_private_networks_refused_by_default(settings, sample_feeds):
    """Without NEWSFLOW_ALLOW_PRIVATE_NETWORKS the loopback sample world is refused,
    recorded per feed, and the pass still finishes."""
    report = run_once(settings.replace(allow_private_networks=False), sample_feeds)
    assert len(report.feeds_failed) == 6
    assert all("non-public address" in p.error for p in report.feeds_failed)
    rows = fetch_all(settings.database_url, "SELECT last_error, consecutive_errors FROM news.feeds")
    assert all(r["consecutive_errors"] == 1 and "refused" in r["last_error"] for r in rows)


def test_console_script_runs_a_pass(settings, sample_feeds):
    """The installed `newsflow` entry point, as a user runs it."""
    env = dict(os.environ, NEWSFLOW_DATABASE_URL=settings.database_url,
               NEWSFLOW_ALLOW_PRIVATE_NETWORKS="1", NEWSFLOW_PER_HOST_DELAY="0")
    done = subprocess.run([sys.executable, "-m", "newsflow", "run", "--feeds", str(sample_feeds)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "13 articles" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "newsflow", "run", "--feeds", "/nonexistent.yaml"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no such file" in bad.stderr


def test_identical_copy_from_another_outlet_is_one_article_two_outlets(settings, tmp_path):
    """A portal republishing the wire text byte for byte: one article row (exact dedup),
    and news.story_outlets still lists both outlets for the story."""
    import shutil

    from newsflow.sampleworld import SITE_DIR, SampleServer

    site = tmp_path / "site"
    shutil.copytree(SITE_DIR / "wire", site / "wire")
    (site / "portal").mkdir()
    wire_page = site / "wire" / ISIS_WIRE.split("/wire/", 1)[1]
    (site / "portal" / "isis.html").write_text(
        wire_page.read_text().replace('rel="canonical" href="{{BASE}}/wire/', 'rel="canonical" href="{{BASE}}/portal/x/'))
    (site / "portal" / "rss.xml").write_text("""<?xml version="1.0"?><rss version="2.0"><channel>
        <title>Portal</title><link>{{BASE}}/portal/</link>
        <item><title>Fewer than 1,000 IS fighters left, coalition says</title>
        <link>{{BASE}}/portal/isis.html</link><guid>portal-1</guid>
        <pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>""")
    feeds = tmp_path / "feeds.yaml"
    with SampleServer(root=site) as server:
        feeds.write_text(f"feeds:\n  - url: {server.base}/wire/rss.xml\n    publisher: Reuters Wire\n"
                         f"  - url: {server.base}/portal/rss.xml\n    publisher: Portal News\n")
        report = run_once(settings, feeds)
    assert report.ingest.exact_duplicates == 1
    url = settings.database_url
    wire = fetch_all(url, "SELECT id, story_id FROM news.articles WHERE canonical_url LIKE %s",
                     ("%" + ISIS_WIRE,))[0]
    outlets = fetch_all(url, "SELECT publisher, relation, article_id FROM news.story_outlets "
                             "WHERE story_id = %s ORDER BY publisher", (wire["story_id"],))
    assert [(o["publisher"], o["relation"]) for o in outlets] == [
        ("Portal News", "identical"), ("Reuters Wire", "original")]
    assert {o["article_id"] for o in outlets} == {wire["id"]}


def test_copy_stored_before_its_original_hands_over_the_story(settings, sample_feeds):
    """Workers finish in any order: when the Sunday Times copy and the NBC copy are
    loaded before the wire original, the original still ends up as the story's
    representative ('original'), and the copies' relations are relative to it."""
    from newsflow import db
    from newsflow.ingest import ingest_pending
    from newsflow.pipeline import sync_feeds
    from newsflow.poll import poll_feeds, select_feeds
    from newsflow.registry import parse_file

    url = settings.database_url
    sync_feeds(url, parse_file(sample_feeds).specs)
    with db.connect(url) as conn:
        poll_feeds(url, settings, select_feeds(conn, force=True))
    copies = [r["id"] for r in fetch_all(url, """
        SELECT id FROM news.entries WHERE link LIKE %s OR link LIKE %s ORDER BY id""",
        ("%" + TIMES_ISIS + "%", "%/nbc/world/isis-%"))]
    assert len(copies) == 2
    ingest_pending(url, settings, entry_ids=copies)
    ingest_pending(url, settings)  # the rest, the wire original among them
    rows = fetch_all(url, """
        SELECT a.publisher, a.story_relation, (s.representative_id = a.id) AS rep
        FROM news.articles a JOIN news.stories s ON s.id = a.story_id
        WHERE a.story_id = (SELECT story_id FROM news.articles WHERE canonical_url LIKE %s)
        ORDER BY a.published_at""", ("%" + ISIS_WIRE,))
    assert [(r["publisher"], r["story_relation"], r["rep"]) for r in rows] == [
        ("Reuters Wire", "original", True), ("NBC News", "copy", False),
        ("The Sunday Times", "copy", False), ("NewsDigest", "excerpt", False)]
