"""The consumers' contract (migration 010, schema news_api), on real PostgreSQL: the reader
role, search, the change feed under concurrent writers, corrections, deletions, export,
and read-only command-line use."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import REPO_ROOT, database_before, execute, fetch_all
from faultserver import FaultServer, article_html, rss
from newsflow import cli, corrections, db, readers
from newsflow.models import Article, FeedSpec, Totals
from newsflow.pipeline import run_once
from newsflow.storage import articles as article_store
from newsflow.storage import changes, consumer
from newsflow.storage import entries as entry_store
from newsflow.storage import feeds as feed_store
from newsflow.storage import stories as story_store

NOW = datetime.now(timezone.utc).replace(microsecond=0)


# --- helpers --------------------------------------------------------------------------------------
# The tests reach the internal tables through storage functions and _rows(); SQL is written
# out only where it is what a test is about: the contract's comments, the change log's
# order and stamps, the triggers, the outlets table's definition, migration 010 on old rows.

def _rows(url: str, table: str, *columns: str, **equal) -> list[dict]:
    """``columns`` (all when none) of the rows of news.<table> whose columns equal ``equal``,
    ordered by the first column."""
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in equal)
    query = sql.SQL("SELECT {} FROM {} {} ORDER BY 1").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*"),
        sql.Identifier("news", table), sql.SQL("WHERE ") + where if equal else sql.SQL(""))
    return fetch_all(url, query, tuple(equal.values()))


def _totals(url: str) -> Totals:
    with db.connect(url) as conn:
        return article_store.totals(conn)


def _last_seq(url: str) -> int:
    with db.connect(url) as conn:
        return changes.latest_seq(conn)


def _story(url: str) -> int:
    with db.transaction(url) as conn:
        return story_store.create(conn)


def _article(url: str, *, title: str, body: str, language: str = "en", publisher: str = "Test News",
             published_at: datetime | None = None, key: str | None = None) -> int:
    """An article row written directly (bypassing the pipeline, its validation and dedup),
    the only member of a story of its own."""
    key = key or uuid.uuid4().hex
    article = Article(url=f"https://news.test/{key}?utm_source=rss", canonical_url=f"https://news.test/{key}",
                      publisher=publisher, title=title, body=body, published_at=published_at or NOW,
                      language=language, authors=[], image_url=None, site_name=None, content_hash=key,
                      word_count=len(body.split()), body_source="page")
    with db.transaction(url) as conn:
        story_id = story_store.create(conn)
        article_id = article_store.insert(conn, article, story_id=story_id, relation="original",
                                          jaccard=None, containment=None)
        story_store.refresh(conn, story_id)  # representative, origin and title: this article
    return article_id


@pytest.fixture
def reader_url(database_url):
    """A login role that has nothing but newsflow_reader (granted by `db grant-reader`)."""
    role = f"nf_reader_{uuid.uuid4().hex[:10]}"
    execute(database_url, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        message = readers.grant_reader(database_url, role)
        assert "can now read news_api" in message
        yield make_conninfo(database_url, user=role)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _feed_world(fs: FaultServer, tmp_path, pages: dict[str, bytes], titles: dict[str, str] | None = None,
                name: str = "feed") -> str:
    """Serve ``pages`` (path -> html) and one RSS feed listing them; returns the feeds file."""
    titles = titles or {}
    items = []
    for i, (path, html) in enumerate(pages.items()):
        fs.add(path, html)
        items.append({"title": titles.get(path, f"Story {path}"), "link": fs.url(path), "guid": f"urn:{path}",
                      "description": f"Summary of {path}", "pubDate": NOW - timedelta(minutes=i)})
    feed = fs.add(f"/{name}.xml", rss(items), content_type="application/rss+xml")
    feeds_file = tmp_path / f"{name}.yaml"
    feeds_file.write_text(f"feeds:\n  - url: {feed}\n    publisher: Test {name}\n")
    return str(feeds_file)


# --- the contract and the reader ------------------------------------------------------------------

def test_every_news_api_column_is_commented_and_the_version_is_readable(database_url):
    missing = fetch_all(database_url, """
        SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'news_api' AND c.relkind IN ('v', 'r')
          AND col_description(c.oid, a.attnum) IS NULL""")
    assert missing == []
    uncommented = fetch_all(database_url, """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('news', 'news_api') AND c.relkind IN ('v', 'r')
          AND obj_description(c.oid, 'pg_class') IS NULL""")
    assert uncommented == []
    version = fetch_all(database_url, "SELECT * FROM news_api.schema_version")[0]
    assert version["version"] == "1.3" and version["migration"] == db.migration_files()[-1][0]


def test_reader_reads_news_api_and_cannot_write(database_url, reader_url):
    article = _article(database_url, title="Harbour council approves budget", body="The council met.\nRoads.")
    with psycopg.connect(reader_url, autocommit=True) as conn:
        assert conn.execute("SELECT title FROM news_api.articles WHERE id = %s", (article,)).fetchone()[0] \
            == "Harbour council approves budget"
        assert conn.execute("SELECT count(*) FROM news_api.stories").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM news_api.search('harbour')").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM news_api.changes").fetchone()[0] >= 2
        conn.execute("LISTEN news_changes")
        for statement in ("SELECT count(*) FROM news.articles",
                          "UPDATE news_api.feeds SET name = 'x'",
                          "INSERT INTO news_api.tombstones (article_id, canonical_url, url, publisher, deleted_at, reason) "
                          "VALUES (1, 'u', 'u', 'p', now(), 'r')",
                          "UPDATE news_api.articles SET title = 'x'",
                          "DELETE FROM news_api.changes",
                          "CREATE TABLE news_api.mine (x int)",
                          "SELECT news.refresh_story_outlets(ARRAY[1::bigint])"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_later_migration_stays_readable(database_url, reader_url, tmp_path):
    """Default privileges: a view a later migration adds to news_api is readable at once."""
    later = tmp_path / "migrations"
    later.mkdir()
    for _, path in db.migration_files():
        (later / path.name).write_text(path.read_text())
    (later / "999_later_view.sql").write_text(
        "CREATE VIEW news_api.later_view AS SELECT id, title FROM news.stories;\n"
        "COMMENT ON VIEW news_api.later_view IS 'test';")
    assert db.upgrade(database_url, later) == ["999_later_view.sql"]
    with psycopg.connect(reader_url) as conn:
        assert conn.execute("SELECT count(*) FROM news_api.later_view").fetchone()[0] == 0


def test_read_only_commands_work_for_a_reader_login(database_url, reader_url, tmp_path, sample_world,
                                                    sample_feeds, settings):
    run_once(settings, sample_feeds)
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": reader_url, "NEWSFLOW_DATA_DIR": str(tmp_path / "state")}

    def newsflow(*args):
        return subprocess.run([sys.executable, "-m", "newsflow", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    search = newsflow("search", "Islamic State", "--limit", "3")
    assert search.returncode == 0, search.stderr
    assert "Islamic State" in search.stdout and "Traceback" not in search.stderr
    # machine-readable: search_hit's columns (issue 18)
    hits = json.loads(newsflow("search", "Islamic State", "--limit", "3", "--json").stdout)
    assert 1 <= len(hits) <= 3 and "Islamic State" in hits[0]["title"]
    assert set(hits[0]) == {"article_id", "story_id", "title", "publisher", "language", "published_at", "sort_at",
                            "url", "rank", "story_title", "outlet_count"}
    assert datetime.fromisoformat(hits[0]["sort_at"]).utcoffset() == timedelta(0)
    lines = newsflow("search", "Islamic State", "--limit", "3", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["article_id"] for line in lines] == [h["article_id"] for h in hits]
    # feeds status reads internal tables: a consumer-only login gets one clear line
    status = newsflow("feeds", "status")
    assert status.returncode == 2 and "news_api.feed_status" in status.stderr, status.stderr
    assert "Traceback" not in status.stderr
    env["NEWSFLOW_EXPORT_PROGRESS_ROWS"] = "5"
    export = newsflow("export", "--since-seq", "0", "--format", "jsonl")
    assert export.returncode == 0, export.stderr
    # progress on stderr, the data alone on stdout
    total = len(export.stdout.split("\n")) - 1
    assert f"exported 5 of {total:,} change rows" in export.stderr
    assert f"exported {total:,} of {total:,} change rows" in export.stderr
    assert len([json.loads(line) for line in export.stdout.split("\n")[:-1]]) >= 13
    config = newsflow("config")
    assert config.returncode == 0
    # ... and a read-only operator login runs it, without migrating anything
    operator = f"nf_operator_{uuid.uuid4().hex[:10]}"
    execute(database_url, sql.SQL("CREATE ROLE {} LOGIN IN ROLE pg_read_all_data").format(sql.Identifier(operator)))
    try:
        env["NEWSFLOW_DATABASE_URL"] = make_conninfo(database_url, user=operator)
        status = newsflow("feeds", "status")
        assert status.returncode == 0 and "healthy" in status.stdout, status.stderr
    finally:
        env["NEWSFLOW_DATABASE_URL"] = reader_url
        execute(database_url, sql.SQL("DROP ROLE {}").format(sql.Identifier(operator)))
    # a writing command fails with one clear line, not a traceback
    upgrade = newsflow("requeue", "--entry", "1")
    assert upgrade.returncode == 2 and "Traceback" not in upgrade.stderr, upgrade.stderr


def test_read_only_commands_never_migrate_and_say_so(pg_server_url, tmp_path):
    from tools.pgscratch import scratch_database

    with scratch_database(pg_server_url, migrate=False) as url:
        env = {**os.environ, "NEWSFLOW_DATABASE_URL": url, "NEWSFLOW_DATA_DIR": str(tmp_path / "state")}
        done = subprocess.run([sys.executable, "-m", "newsflow", "search", "anything"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "newsflow db upgrade" in done.stderr, done.stderr
        assert db.current_version(url) is None  # nothing was migrated


# --- search ---------------------------------------------------------------------------------------

def test_search_ranks_a_title_match_above_a_body_match_and_respects_language(database_url):
    filler = " ".join(["council budget roads schools harbour"] * 30)
    body_hit = _article(database_url, title="Council meets on roads",
                        body=f"{filler}\nIn other news a zebra escaped from the zoo. {filler}")
    title_hit = _article(database_url, title="Zebra escapes from city zoo", body=f"{filler}\n{filler}")
    german = _article(database_url, title="Regierungen beraten über Zebrastreifen",
                      body="Die Regierungen der Länder trafen sich.\nSie berieten lange.", language="de")
    with db.connect(database_url) as conn:
        hits = consumer.search(conn, "zebra")
        assert [h.article_id for h in hits] == [title_hit, body_hit]
        assert hits[0].rank > hits[1].rank and hits[0].story_id is not None
        # German stemming: "Regierung" finds "Regierungen"; language restricts the results
        assert [h.article_id for h in consumer.search(conn, "Regierung", language="de")] == [german]
        assert consumer.search(conn, "Regierung", language="en") == []
        assert [h.article_id for h in consumer.search(conn, "Regierung")] == [german]
        # phrase search: adjacency matters; -not excludes
        assert [h.article_id for h in consumer.search(conn, '"city zoo"')] == [title_hit]
        assert consumer.search(conn, '"zoo city"') == []
        assert [h.article_id for h in consumer.search(conn, "zebra -city")] == [body_hit]
        # date range and publisher
        assert consumer.search(conn, "zebra", since=NOW + timedelta(days=1)) == []
        assert consumer.search(conn, "zebra", publisher="Someone Else") == []


def test_stop_words_alone_match_nothing_without_a_language_too(database_url):
    """search('the') matched German and French articles that quote English (issue 18)."""
    _article(database_url, title="Die Regierung und the Economist",
             body="Die Zeitung zitiert the Economist.\nMehr.", language="de")
    _article(database_url, title="Le gouvernement et the Guardian",
             body="Le journal cite the Guardian.\nPlus.", language="fr")
    english = _article(database_url, title="The economy grows", body="The economy grows again.\nMore.")
    with db.connect(database_url) as conn:
        for q in ("the", "The", "der", "le", '"the"', "-the", "the OR der", "the der le"):
            assert consumer.search(conn, q) == [], q
            assert conn.execute("SELECT numnode(news_api.search_query(%s)) AS n", (q,)).fetchone()["n"] == 0
        assert consumer.search(conn, "the", language="en") == []
        assert [h.article_id for h in consumer.search(conn, "the economy")] == [english]
        assert conn.execute("SELECT news_api.search_words(%s) AS w", ('"the Economist" OR -der Guardian',)
                            ).fetchone()["w"] == '" Economist" OR - Guardian'
        assert [h.article_id for h in consumer.search(conn, '"the economy grows"')] == [english]
        for q, parsed in (("zebra OR the OR lion", "'zebra' | 'lion'"), ("zebra OR the", "'zebra'"),
                          ("the OR zebra", "'zebra'"), ("zebra or lion", "'zebra' | 'lion'")):
            assert conn.execute("SELECT websearch_to_tsquery('simple', news_api.search_words(%s))::text AS t",
                                (q,)).fetchone()["t"] == parsed, q
        assert len(consumer.search(conn, "Economist OR Guardian")) == 2


def _toast_blocks(conn) -> int:
    """Blocks of news.articles' TOAST table read so far (the vectors live there)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("""SELECT coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0) AS n
                           FROM pg_statio_all_tables WHERE relid = (SELECT reltoastrelid FROM pg_class
                                                                    WHERE oid = 'news.articles'::regclass)""").fetchone()["n"]


def _vectors_read(url: str, query: str, **kw) -> tuple[list, int]:
    """The hits of a search and how many TOAST blocks it read (PostgreSQL's own counters)."""
    with db.connect(url, autocommit=True) as conn:
        before = _toast_blocks(conn)
        with db.connect(url, autocommit=True) as searcher:
            hits = consumer.search(searcher, query, **kw)
            searcher.execute("SELECT pg_stat_force_next_flush()")
        return hits, _toast_blocks(conn) - before


def test_a_phrase_search_reads_the_vectors_it_needs_not_every_candidates(database_url):
    """Issue 18, items 7 and 8: a phrase can only be checked on the article's vector (in
    TOAST). The GIN index now answers the query with its phrases relaxed to AND, exactly
    (no vector read), and only the newest candidates have their vector read, once, for the
    phrase, the rank and the language check. Before, the index was asked for the phrase
    itself, and every article holding both words had its vector read back (the recheck):
    cost grew with the matches, not with `candidates`."""
    import random

    rng = random.Random(7)
    # random words: a vector of ~20 kB that compresses badly, several TOAST blocks each
    bulk = lambda: " ".join("".join(rng.choices("bcdfghjklmnpqrstvwxz", k=9)) for _ in range(750))  # noqa: E731
    newest = []
    for i in range(120):
        text = f"harbour {bulk()} pilot {bulk()}" if i >= 6 else f"{bulk()} harbour pilot {bulk()}"
        article = _article(database_url, title=f"Report {i}", body=f"Lead.\n{text}",
                           published_at=NOW - timedelta(days=1 + i))  # the phrase in the 6 newest
        if i < 3:
            newest.append(article)
    with db.connect(database_url) as conn:
        conn.execute("ANALYZE news.articles")
        per_vector = conn.execute("SELECT avg(pg_column_size(search_vector)) / 8192.0 AS b "
                                  "FROM news.articles").fetchone()["b"]
    hits, blocks = _vectors_read(database_url, '"harbour pilot"', candidates=3, limit=3)
    assert sorted(h.article_id for h in hits) == sorted(newest)
    print(f"TOAST blocks read: {blocks} ({per_vector:.1f} per vector)")
    assert per_vector >= 1 and blocks < 20 * per_vector, blocks  # old: all 120 vectors


def test_news_api_tells_which_feed_brought_each_article(database_url, settings, tmp_path):
    """Provenance (issue 18): feed, entry GUID and first-seen time per article, and every
    feed item that carried it."""
    with FaultServer() as fs:
        feeds = _feed_world(fs, tmp_path, {"/p": article_html("Harbour reopens", seed="prov")})
        assert run_once(settings, feeds).ingest.loaded == 1
    entry = fetch_all(database_url, "SELECT id, feed_id, guid, link, first_seen_at, article_id FROM news.entries")[0]
    article = fetch_all(database_url, "SELECT id, source_feed_id, source_guid, first_seen_at, fetched_at "
                                      "FROM news_api.articles")[0]
    assert (article["id"], article["source_feed_id"], article["source_guid"], article["first_seen_at"]) == \
        (entry["article_id"], entry["feed_id"], "urn:/p", entry["first_seen_at"])
    assert article["first_seen_at"] <= article["fetched_at"]
    # a second feed (another publisher) carries the same page later: listed, not "first"
    later = fetch_all(database_url, "INSERT INTO news.feeds (url, publisher, name) VALUES "
                                    "('https://other.test/rss', 'Other', 'Other - All') RETURNING id")[0]["id"]
    execute(database_url, "INSERT INTO news.entries (feed_id, guid, link, status, article_id, first_seen_at) "
                          "VALUES (%s, 'o-1', %s, 'loaded', %s, clock_timestamp())",
            (later, entry["link"], article["id"]))
    sources = fetch_all(database_url, "SELECT feed_id, publisher, feed_name, guid, first FROM news_api.article_sources "
                                      "WHERE article_id = %s ORDER BY first_seen_at", (article["id"],))
    assert [(s["feed_id"], s["guid"], s["first"]) for s in sources] == \
        [(entry["feed_id"], "urn:/p", True), (later, "o-1", False)]
    assert sources[1]["publisher"] == "Other" and sources[1]["feed_name"] == "Other - All"
    again = fetch_all(database_url, "SELECT source_feed_id FROM news_api.articles WHERE id = %s", (article["id"],))
    assert again[0]["source_feed_id"] == entry["feed_id"]


# --- the change feed ------------------------------------------------------------------------------

@pytest.mark.slow
def test_change_feed_under_two_ingest_processes_has_no_gap_and_no_duplicate(database_url, settings, tmp_path):
    """Two `newsflow ingest` processes load 40 pages in small batches while a reader polls
    seq > cursor: every committed change is read exactly once, in order, and LISTEN
    announces each commit's last seq."""
    n = 40
    with FaultServer() as fs:
        pages = {f"/p/{i}": article_html(f"Story number {i} about topic {i % 7}", paragraphs=4 + i % 5,
                                         seed=f"s{i}-" + "x" * (i % 3)) for i in range(n)}
        feeds_file = _feed_world(fs, tmp_path, pages)
        from newsflow.pipeline import sync_file
        from newsflow.poll import poll_feeds, select_feeds

        sync_file(database_url, feeds_file)
        with db.connect(database_url) as conn:
            feeds = select_feeds(conn, force=True)
        assert sum(o.new_entries for o in poll_feeds(database_url, settings, feeds)) == n
        start = _last_seq(database_url)

        listener = psycopg.connect(database_url, autocommit=True)
        listener.execute("LISTEN news_changes")
        env = {**os.environ, "NEWSFLOW_DATABASE_URL": database_url, "NEWSFLOW_DATA_DIR": settings.data_dir,
               "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1", "NEWSFLOW_PER_HOST_DELAY": "0",
               "NEWSFLOW_PER_HOST_CONCURRENCY": "8", "NEWSFLOW_EXTRACT_WORKERS": "1",
               "NEWSFLOW_BATCH_SIZE": "2"}
        procs = [subprocess.Popen([sys.executable, "-m", "newsflow", "ingest"], env=env, cwd=REPO_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        seen: list[int] = []
        notified: list[int] = []
        cursor = start
        with psycopg.connect(database_url, autocommit=True) as reader:
            while any(p.poll() is None for p in procs):
                rows = reader.execute("SELECT seq FROM news_api.changes WHERE seq > %s ORDER BY seq LIMIT 100",
                                      (cursor,)).fetchall()
                seen += [r[0] for r in rows]
                if rows:
                    cursor = rows[-1][0]
                notified += [int(x.payload) for x in listener.notifies(timeout=0.01, stop_after=100)]
            outputs = [p.communicate(timeout=240) for p in procs]
            for p, (_, err) in zip(procs, outputs, strict=True):
                assert p.returncode == 0, err
            while rows := reader.execute("SELECT seq FROM news_api.changes WHERE seq > %s ORDER BY seq",
                                         (cursor,)).fetchall():
                seen += [r[0] for r in rows]
                cursor = rows[-1][0]
        notified += [int(x.payload) for x in listener.notifies(timeout=0.5)]
        listener.close()

    committed = [r["seq"] for r in fetch_all(database_url, "SELECT seq FROM news.changes WHERE seq > %s "
                                                           "ORDER BY seq", (start,))]
    assert seen == committed  # nothing missed, nothing read twice, in order
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert _totals(database_url).articles >= n // 2
    created = fetch_all(database_url, """SELECT count(*) AS n FROM news.articles a WHERE NOT EXISTS (
        SELECT 1 FROM news.changes c WHERE c.entity = 'article' AND c.entity_id = a.id AND c.kind = 'created')""")
    assert created[0]["n"] == 0  # every article has its "created" row
    # clock times are taken under the changes lock: in seq order they never go backwards,
    # so no batch committed rows dated before a change that was already visible
    stamps = fetch_all(database_url, """
        SELECT c.changed_at, a.created_at FROM news.changes c JOIN news.articles a ON a.id = c.entity_id
        WHERE c.entity = 'article' AND c.kind = 'created' AND c.seq > %s ORDER BY c.seq""", (start,))
    assert [r["created_at"] for r in stamps] == sorted(r["created_at"] for r in stamps)
    changed_at = [r["changed_at"] for r in fetch_all(database_url, "SELECT changed_at FROM news.changes "
                                                                   "WHERE seq > %s ORDER BY seq", (start,))]
    assert changed_at == sorted(changed_at)
    # one notification per committing transaction, naming a seq that exists
    assert notified and set(notified) <= set(committed)
    xacts = fetch_all(database_url, "SELECT count(DISTINCT xact_id) AS n FROM news.changes WHERE seq > %s", (start,))
    assert len(notified) == xacts[0]["n"]


# --- corrections and deletions --------------------------------------------------------------------

def _changes(url: str, after: int = 0) -> list[dict]:
    return fetch_all(url, "SELECT * FROM news_api.changes WHERE seq > %s ORDER BY seq", (after,))


def test_a_corrected_page_updates_the_article_in_place_with_a_revision(database_url, settings, tmp_path):
    settings = settings.replace(correction_min_interval=0)
    with FaultServer() as fs:
        feeds = _feed_world(fs, tmp_path, {"/a": article_html("Bridge closed for repairs", seed="first")},
                            titles={"/a": "Bridge closed for repairs"})
        report = run_once(settings, feeds)
        assert report.ingest.loaded == 1
        [article] = _rows(database_url, "articles", "id", "body", "revision", "content_hash")
        mark = _last_seq(database_url)

        # the same page again, unchanged: requeued by an operator, fetched, nothing changes
        with db.transaction(database_url) as conn:
            assert entry_store.requeue(conn, include_loaded=True) == 1
        report = run_once(settings, feeds)
        assert report.ingest.unchanged == 1 and report.ingest.loaded == 0
        assert _changes(database_url, mark) == []

        # the publisher corrects the page and the item's title: the poll requeues it
        _feed_world(fs, tmp_path, {"/a": article_html("Bridge reopens after repairs", seed="second")},
                    titles={"/a": "Bridge reopens after repairs"})
        report = run_once(settings, feeds)
        assert sum(p.changed_entries for p in report.polls) == 1
        assert report.ingest.updated == 1 and report.ingest.loaded == 0
    now = _rows(database_url, "articles", "id", "body", "revision", "title", "content_hash")
    assert len(now) == 1 and now[0]["id"] == article["id"] and now[0]["revision"] == 2
    assert "reopens" in now[0]["body"] and now[0]["title"] == "Bridge reopens after repairs"
    revisions = fetch_all(database_url, "SELECT * FROM news_api.article_revisions")
    assert [(r["article_id"], r["revision"], r["body"]) for r in revisions] == [(article["id"], 1, article["body"])]
    updates = [c for c in _changes(database_url, mark) if c["entity"] == "article"]
    assert [(c["entity_id"], c["kind"]) for c in updates] == [(article["id"], "updated")]
    assert {"body", "title"} <= set(updates[0]["fields"])
    # it was placed again into the story it was in: the feed says so (issue 18, item 9)
    assert updates[0]["story_id"] == updates[0]["previous_story_id"]
    assert "story" not in updates[0]["fields"] and "relation" not in updates[0]["fields"]
    assert _totals(database_url).stories == 1
    members = fetch_all(database_url, "SELECT * FROM news_api.story_members")
    assert [m["article_id"] for m in members] == [article["id"]]


def test_a_deleted_article_leaves_a_tombstone_and_does_not_come_back(database_url, settings, tmp_path, capsys):
    settings = settings.replace(correction_min_interval=0)
    with FaultServer() as fs:
        feeds = _feed_world(fs, tmp_path, {"/gone": article_html("Retracted story", seed="x")})
        run_once(settings, feeds)
        [article] = _rows(database_url, "articles", "id", "canonical_url", "story_id")
        mark = _last_seq(database_url)

        os.environ["NEWSFLOW_DATABASE_URL"] = database_url
        try:
            assert cli.main(["purge", "--article", str(article["id"]), "--reason", "legal request"]) == 0
        finally:
            os.environ.pop("NEWSFLOW_DATABASE_URL")
        tomb = fetch_all(database_url, "SELECT * FROM news_api.tombstones")
        assert [(t["article_id"], t["canonical_url"], t["reason"]) for t in tomb] == \
            [(article["id"], article["canonical_url"], "legal request")]
        kinds = {(c["entity"], c["entity_id"]): c["kind"] for c in _changes(database_url, mark)}
        assert kinds == {("article", article["id"]): "deleted", ("story", article["story_id"]): "deleted"}

        # the item is seen again (requeued, as by a new poll): not loaded again
        with db.transaction(database_url) as conn:
            assert entry_store.requeue(conn) == 1
        report = run_once(settings, feeds)
        assert report.ingest.blocked == 1 and report.ingest.loaded == 0
        assert _totals(database_url).articles == 0

        # an operator allows it back: a new article (new id), the tombstone stays, lifted
        with db.transaction(database_url) as conn:
            assert entry_store.requeue(conn, allow_deleted=True) == 1
        report = run_once(settings, feeds)
        assert report.ingest.loaded == 1
    back = _rows(database_url, "articles", "id")
    assert len(back) == 1 and back[0]["id"] != article["id"]
    assert _rows(database_url, "tombstones", "lifted_at")[0]["lifted_at"] is not None


def test_purge_of_one_member_keeps_the_story(database_url):
    a = _article(database_url, title="Original", body="Alpha text.\nMore.", key="orig")
    b = _article(database_url, title="Copy", body="Alpha text copy.\nMore.", key="copy")
    story = _rows(database_url, "articles", "story_id", id=a)[0]["story_id"]
    own = _rows(database_url, "articles", "story_id", id=b)[0]["story_id"]
    with db.transaction(database_url) as conn:
        article_store.attach(conn, b, story, "copy", None, None)
        story_store.delete_empty(conn, [own])
    assert corrections.purge(database_url, article_ids=[a], reason="test") == [a]
    rows = _rows(database_url, "stories", "id", "representative_id", "article_count")
    assert rows == [{"id": story, "representative_id": b, "article_count": 1}]


def test_updated_at_follows_what_a_consumer_sees_and_nothing_else(database_url):
    """news_api.articles.updated_at changes with a story move (migration 011's trigger),
    not with a column consumers do not see."""
    a = _article(database_url, title="Mover", body="Some text.\nMore.", key="mover")
    def updated_at():
        return _rows(database_url, "articles", "updated_at", id=a)[0]["updated_at"]

    before = updated_at()
    # a column consumers do not see, written as no code path does: the trigger is the subject
    execute(database_url, "UPDATE news.articles SET fetched_at = fetched_at - interval '1 hour' WHERE id = %s", (a,))
    assert updated_at() == before
    other = _story(database_url)
    with db.transaction(database_url) as conn:
        article_store.attach(conn, a, other, "copy", None, None)
    assert updated_at() > before


def test_the_change_feed_lists_only_what_changed_net_of_the_transaction(database_url):
    """A story or relation that is back to its value at transaction start is not listed; a
    transaction that changes nothing net leaves no row (and sends no notification)."""
    a = _article(database_url, title="Mover", body="Some text.\nMore.", key="net")
    home = fetch_all(database_url, "SELECT story_id FROM news.articles WHERE id = %s", (a,))[0]["story_id"]
    other = _story(database_url)
    mark = fetch_all(database_url, "SELECT max(seq) AS s FROM news.changes")[0]["s"]
    # out and back (the correction's detach and place again), and a new title
    with db.transaction(database_url) as conn:
        conn.execute("UPDATE news.articles SET story_id = NULL, story_relation = NULL WHERE id = %s", (a,))
        conn.execute("UPDATE news.articles SET story_id = %s, story_relation = 'original', title = 'Moved' "
                     "WHERE id = %s", (home, a))
    rows = [c for c in _changes(database_url, mark) if c["entity"] == "article"]
    assert [(r["entity_id"], r["kind"], r["fields"]) for r in rows] == [(a, "updated", ["title"])]
    # out and back, nothing else: no article row at all
    mark = fetch_all(database_url, "SELECT max(seq) AS s FROM news.changes")[0]["s"]
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN news_changes")
        with db.transaction(database_url) as conn:
            conn.execute("UPDATE news.articles SET story_id = %s, story_relation = 'copy' WHERE id = %s", (other, a))
            conn.execute("UPDATE news.articles SET story_id = %s, story_relation = 'original' WHERE id = %s",
                         (home, a))
        assert [c for c in _changes(database_url, mark) if c["entity"] == "article"] == []
        payloads = [n.payload for n in listener.notifies(timeout=0.5, stop_after=5)]
    assert all(p.isdigit() for p in payloads)  # never an empty payload
    # a real move lists story (and relation when it changed)
    mark = fetch_all(database_url, "SELECT max(seq) AS s FROM news.changes")[0]["s"]
    with db.transaction(database_url) as conn:
        conn.execute("UPDATE news.articles SET story_id = NULL WHERE id = %s", (a,))
        conn.execute("UPDATE news.articles SET story_id = %s, story_relation = 'copy' WHERE id = %s", (other, a))
    rows = [c for c in _changes(database_url, mark) if c["entity"] == "article"]
    assert [(r["fields"], r["previous_story_id"], r["story_id"]) for r in rows] == \
        [(["relation", "story"], home, other)]


def test_change_feed_order_holds_between_writers_that_do_not_share_the_load_lock(database_url):
    """Only news.changes_lock() orders change numbers between a feeds-file sync (a publisher
    renamed: its stories' counts change; no load lock) and a purge (load lock): the purge
    draws its number after the open sync transaction and must not become visible before it.
    With the lock a no-op, the purge commits first and a reader that saw its seq later finds
    the sync's lower seq: a missed change."""
    import threading

    from newsflow.models import FeedSpec
    from newsflow.storage import feeds as feed_store

    kept = _article(database_url, title="Kept", body="Kept text.\nMore.", key="kept")
    gone = _article(database_url, title="Gone", body="Gone text.\nMore.", key="gone")
    feed = fetch_all(database_url, "INSERT INTO news.feeds (url, publisher) VALUES ('https://f.test/rss', 'Old') "
                                   "RETURNING id")[0]["id"]
    execute(database_url, "INSERT INTO news.entries (feed_id, guid, link, status, article_id) "
                          "VALUES (%s, 'g1', 'https://news.test/kept', 'loaded', %s)", (feed, kept))
    mark = fetch_all(database_url, "SELECT max(seq) AS s FROM news.changes")[0]["s"]

    sync = psycopg.connect(database_url, row_factory=psycopg.rows.dict_row)
    try:
        feed_store.update_declared(sync, [(feed, FeedSpec(url="https://f.test/rss", publisher="New"))])
        sync_seqs = [r["seq"] for r in sync.execute(
            "SELECT seq FROM news.changes WHERE xact_id = pg_current_xact_id()").fetchall()]
        assert sync_seqs, "the rename logged a change (the story's outlets)"
        purged: list[int] = []
        purger = threading.Thread(target=lambda: purged.extend(
            corrections.purge(database_url, article_ids=[gone], reason="test")))
        purger.start()
        with psycopg.connect(database_url, autocommit=True) as watch:
            # the purge is either done (no lock) or waiting on the changes lock the sync holds
            # (a row of news.locks: it waits on the sync's transaction). It tries that row every
            # 50 ms (storage.locks, SKIP LOCKED: no ungranted lock to see) right after taking
            # the load lock: the load row being locked means the purge is trying the changes row.
            def purge_waits() -> bool:
                return bool(watch.execute(
                    "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()").fetchone()) or (
                    watch.execute("SELECT name FROM news.locks WHERE name = 'load' FOR UPDATE SKIP LOCKED")
                    .fetchone() is None)
            while purger.is_alive() and not purge_waits():
                purger.join(0.01)
            seen = [r[0] for r in watch.execute("SELECT seq FROM news_api.changes WHERE seq > %s ORDER BY seq",
                                                (mark,)).fetchall()]
            sync.commit()
            purger.join()
            assert purged == [gone]
            later = [r[0] for r in watch.execute("SELECT seq FROM news_api.changes WHERE seq > %s ORDER BY seq",
                                                 (max(seen, default=mark),)).fetchall()]
            committed = [r[0] for r in watch.execute("SELECT seq FROM news_api.changes WHERE seq > %s "
                                                     "ORDER BY seq", (mark,)).fetchall()]
    finally:
        sync.close()
    assert set(sync_seqs) <= set(committed)
    assert seen + later == committed  # a reader following seq > cursor missed nothing


def test_a_transaction_with_many_changes_sends_one_notification_with_its_last_seq(database_url):
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN news_changes")
        with db.transaction(database_url) as conn:
            conn.execute("INSERT INTO news.stories SELECT FROM generate_series(1, 300)")
        with db.transaction(database_url) as conn:
            conn.execute("INSERT INTO news.stories DEFAULT VALUES")
        payloads = [int(n.payload) for n in listener.notifies(timeout=1.0, stop_after=10)]
    per_xact = fetch_all(database_url, "SELECT max(seq) AS last FROM news.changes GROUP BY xact_id ORDER BY 1")
    assert payloads == [r["last"] for r in per_xact] and len(payloads) == 2


def test_deleting_signatures_takes_their_band_rows(database_url, settings):
    from newsflow import stories
    from newsflow.storage import dedup_index

    with db.transaction(database_url) as conn:
        ids = [stories.add_article(conn, settings, Article(
            url=f"https://b.example/{i}", canonical_url=f"https://b.example/{i}", publisher="B", title=None,
            body=" ".join(f"w{i}x{j}" for j in range(80)), published_at=NOW, language="en", authors=[],
            image_url=None, site_name=None, content_hash=f"b{i}", word_count=80, body_source="page"))[0]
            for i in range(3)]
    assert len(_rows(database_url, "dedup_bands", "article_id")) == 3 * settings.dedup_bands
    with db.transaction(database_url) as conn:
        dedup_index.remove(conn, ids[:2])
    assert {r["article_id"] for r in _rows(database_url, "dedup_bands", "article_id")} == {ids[2]}


# --- export ---------------------------------------------------------------------------------------

NASTY = [
    r"C:\new\table\x41 and \\server\share",
    'She said "hello" and \'bye\'',
    "tab\there\nnewline\r\ncrlf",
    "ctrl \x01\x02\x1b\x1f del \x7f",
    "emoji 😀 clef 𝄞 cjk 漢字 rtl עברית",
    "line sep \u2028 para sep \u2029",
    '{"json": "inside \\"quoted\\" \\n"}',
    "\\.",
    "ends with backslash \\",
]


def test_export_round_trips_every_text(database_url, tmp_path):
    ids = {_article(database_url, title=f'title {i} \\ "q"', body=body, key=f"nasty-{i}"): body
           for i, body in enumerate(NASTY)}
    from newsflow.config import Settings
    from newsflow.export import export

    settings = Settings(database_url=database_url, export_batch_size=3)
    out = tmp_path / "changes.jsonl"
    result = export(database_url, settings, since_seq=0, until_seq=None, fmt="jsonl", output=str(out))
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == result.rows
    records = [json.loads(line) for line in lines[:-1]]  # every line is valid JSON
    bodies = {r["entity_id"]: r["body"] for r in records if r["entity"] == "article"}
    assert bodies == ids  # exactly the stored text
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and result.until_seq == seqs[-1]

    # resumable: the second half, from a seq in the middle
    middle = seqs[len(seqs) // 2]
    rest = tmp_path / "rest.jsonl"
    export(database_url, settings, since_seq=middle, until_seq=None, fmt="jsonl", output=str(rest))
    # split on "\n" only: str.splitlines() also splits on U+2028, U+0085, \x1c-\x1e inside strings
    assert [json.loads(x)["seq"] for x in rest.read_text(encoding="utf-8").split("\n")[:-1]] == \
        [s for s in seqs if s > middle]

    csv_out = tmp_path / "changes.csv"
    export(database_url, settings, since_seq=0, until_seq=None, fmt="csv", output=str(csv_out))
    with csv_out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["entity_id"]): r["body"] for r in rows if r["entity"] == "article"} == ids
    # NULL and '' differ in the CSV: PostgreSQL's COPY (FORMAT csv) reads them back as such
    empty, null = list(ids)[:2]
    execute(database_url, "UPDATE news.articles SET site_name = '' WHERE id = %s", (empty,))
    export(database_url, settings, since_seq=0, until_seq=None, fmt="csv", output=str(csv_out))
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in consumer.EXPORT_COLUMNS)
    with db.connect(database_url) as conn:
        conn.execute(sql.SQL("CREATE TEMP TABLE back ({})").format(columns))
        with conn.cursor().copy("COPY back FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write(csv_out.read_bytes())
        back = {int(r["entity_id"]): r for r in conn.execute(
            "SELECT DISTINCT ON (entity_id) entity_id, site_name, body FROM back WHERE entity = 'article' "
            "ORDER BY entity_id, seq::bigint DESC").fetchall()}
    assert back[empty]["site_name"] == "" and back[null]["site_name"] is None
    assert {k: r["body"] for k, r in back.items()} == ids

    try:
        import pyarrow.parquet as pq
    except ImportError:
        with pytest.raises(ValueError, match="pyarrow"):
            export(database_url, settings, since_seq=0, until_seq=None, fmt="parquet", output=str(tmp_path / "x"))
    else:
        pq_out = tmp_path / "changes.parquet"
        export(database_url, settings, since_seq=0, until_seq=None, fmt="parquet", output=str(pq_out))
        table = pq.read_table(pq_out).to_pylist()
        assert {r["entity_id"]: r["body"] for r in table if r["entity"] == "article"} == ids


def test_export_without_pyarrow_says_how_to_get_it(database_url, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    from newsflow.config import Settings
    from newsflow.export import export

    with pytest.raises(ValueError, match=r"newsflow\[parquet\]"):
        export(database_url, Settings(database_url=database_url), since_seq=0, until_seq=None,
               fmt="parquet", output="-")


# --- outlets and the pass summary -----------------------------------------------------------------

def test_story_outlets_table_matches_what_the_view_computed(database_url, settings, sample_world, sample_feeds):
    run_once(settings, sample_feeds)
    table = fetch_all(database_url, "SELECT * FROM news.story_outlets ORDER BY story_id, publisher")
    computed = fetch_all(database_url, """
        SELECT DISTINCT ON (a.story_id, f.publisher) a.story_id, f.publisher, a.id AS article_id,
               CASE WHEN f.publisher = a.publisher THEN a.story_relation ELSE 'identical' END AS relation,
               e.link AS url, coalesce(e.published_at, a.published_at) AS published_at
        FROM news.articles a JOIN news.entries e ON e.article_id = a.id JOIN news.feeds f ON f.id = e.feed_id
        ORDER BY a.story_id, f.publisher, (f.publisher = a.publisher) DESC,
                 coalesce(e.published_at, a.published_at), e.id""")
    assert table == computed
    counts = fetch_all(database_url, """
        SELECT s.id FROM news.stories s WHERE s.outlet_count <> (SELECT count(*) FROM news.story_outlets o
              WHERE o.story_id = s.id) OR s.article_count <> (SELECT count(*) FROM news.articles a
              WHERE a.story_id = s.id)""")
    assert counts == []
    assert all(s["sort_at"] is not None for s in _rows(database_url, "stories", "sort_at"))


def test_migration_010_on_a_database_with_data(pg_server_url, tmp_path):
    """Existing rows get their outlets, counts, search vectors and a "created" change each."""
    with database_before(pg_server_url, tmp_path, 10) as url:
        with db.connect(url) as conn:
            feeds = [conn.execute("INSERT INTO news.feeds (url, publisher) VALUES (%s, %s) RETURNING id",
                                  (f"https://{p}.test/rss", p)).fetchone()["id"] for p in ("Wire", "Daily")]
            story = conn.execute("INSERT INTO news.stories (title) VALUES ('Dam breaks') RETURNING id").fetchone()["id"]
            article = conn.execute("""
                INSERT INTO news.articles (url, canonical_url, publisher, title, body, language, word_count,
                                           content_hash, body_source, story_id, story_relation)
                VALUES ('https://wire.test/a', 'https://wire.test/a', 'Wire', 'Dam breaks after storm',
                        'The dam broke on Monday.\nRescuers arrived.', 'en', 8, 'h1', 'page', %s, 'original')
                RETURNING id""", (story,)).fetchone()["id"]
            for feed, link in zip(feeds, ("https://wire.test/a", "https://daily.test/dam"), strict=True):
                conn.execute("INSERT INTO news.entries (feed_id, guid, link, status, article_id) "
                             "VALUES (%s, %s, %s, 'loaded', %s)", (feed, link, link, article))
            conn.commit()
        db.upgrade(url)
        outlets = fetch_all(url, "SELECT publisher, relation FROM news_api.story_members ORDER BY publisher")
        assert outlets == [{"publisher": "Daily", "relation": "identical"}, {"publisher": "Wire", "relation": "original"}]
        story_row = fetch_all(url, "SELECT outlet_count, article_count, sort_at FROM news_api.stories")[0]
        assert story_row["outlet_count"] == 2 and story_row["article_count"] == 1 and story_row["sort_at"]
        changes = fetch_all(url, "SELECT seq, entity, entity_id, kind FROM news_api.changes ORDER BY seq")
        assert [(c["entity"], c["entity_id"], c["kind"]) for c in changes] == \
            [("story", story, "created"), ("article", article, "created")]
        with db.connect(url) as conn:
            assert [h.article_id for h in consumer.search(conn, "storms")] == [article]


def test_a_changed_item_requeues_its_loaded_entry_after_the_minimum_interval(database_url):
    from newsflow.models import ParsedEntry

    with db.transaction(database_url) as conn:
        feed = feed_store.insert_declared(conn, [FeedSpec(url="https://f.test/rss", publisher="F")])["https://f.test/rss"]
        first = [ParsedEntry(guid=f"g{i}", link=f"https://f.test/{i}", title=f"T{i}", summary="S", author=None,
                             published_at=NOW, updated_at=None) for i in range(3)]
        entry_store.insert_new(conn, feed, first, [None] * 3)
        conn.execute("UPDATE news.entries SET status = 'loaded'")  # as if loaded: no article needed here
    later = NOW + timedelta(hours=1)
    seen = [replace(first[0], updated_at=NOW),   # a first "updated" date: recorded only
            replace(first[1], title="T1 (corrected)"),
            first[2]]
    with db.transaction(database_url) as conn:
        assert entry_store.requeue_changed(conn, feed, seen, min_interval=0) == 1
    with db.transaction(database_url) as conn:
        bumped = [replace(first[0], updated_at=later)]
        assert entry_store.requeue_changed(conn, feed, bumped, min_interval=600) == 1
    rows = {r["guid"]: r for r in _rows(database_url, "entries", "guid", "status", "title", "feed_updated_at",
                                        "next_attempt_at")}
    waits = {g: r["next_attempt_at"] > datetime.now(timezone.utc) + timedelta(minutes=5) for g, r in rows.items()}
    assert rows["g1"]["status"] == "pending" and rows["g1"]["title"] == "T1 (corrected)" and not waits["g1"]
    assert rows["g0"]["status"] == "pending" and rows["g0"]["feed_updated_at"] == later and waits["g0"]
    assert rows["g2"]["status"] == "loaded"
