"""Events above stories and citations (issue 17), on a real PostgreSQL: the sample world's
coverage of the coalition's ISIS count ends in one event with the aggregator's three
citations; same-day different happenings stay apart; a bridging story merges two events
and the change feed says so; `newsflow events rebuild` is idempotent and resumable."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from conftest import database_before, fetch_all
from newsflow import citations, corrections, db, events, readers, stories
from newsflow.models import Article
from newsflow.pipeline import run_once
from newsflow.storage import revisions
from newsflow.storage.locks import take_write_locks

from bench.events_dataset import BOE, ECB, ECB_AGAIN, FIRE_A, FIRE_B, FIRE_C, QUAKE_1, QUAKE_2
from test_pipeline import FOLLOW_UP, HERALD_ISIS, ISIS_WIRE, article

DIGEST_ISIS = "/digest/posts/2026/11/caliphate-last-thousand.html"
DIGEST_WEEK = "/digest/posts/2026/11/week-in-five-stories-47.html"
BOC_WIRE = "/wire/markets/bank-of-canada-cuts-key-rate-to-2-signals-end-of-easing-2026-11-18.html"
DAY = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def sample_pass(settings, sample_feeds, sample_world):
    run_once(settings, sample_feeds)
    return sample_world.base


def event_of(url: str, article_id: int) -> int:
    return fetch_all(url, """SELECT es.event_id FROM news.articles a JOIN news.event_stories es
                             ON es.story_id = a.story_id WHERE a.id = %s""", (article_id,))[0]["event_id"]


def test_isis_statement_write_up_and_aggregator_are_one_event_with_three_citations(sample_pass, settings):
    url, base = settings.database_url, sample_pass
    wire, herald, digest = (article(url, base, p) for p in (ISIS_WIRE, HERALD_ISIS, DIGEST_ISIS))
    assert wire["story_id"] != herald["story_id"]  # different texts: different stories ...
    event = event_of(url, wire["id"])
    assert event_of(url, herald["id"]) == event == event_of(url, digest["id"])  # ... one event
    # the follow-up two days later (new strikes) and the weekly round-up are other events
    assert event_of(url, article(url, base, FOLLOW_UP)["id"]) != event
    assert event_of(url, article(url, base, DIGEST_WEEK)["id"]) != event
    assert event_of(url, article(url, base, BOC_WIRE)["id"]) != event

    row = fetch_all(url, "SELECT * FROM news_api.events WHERE id = %s", (event,))[0]
    assert row["story_count"] == 2 and row["languages"] == ["en"]
    assert set(row["outlets"]) == {"Reuters Wire", "NBC News", "The Sunday Times", "NewsDigest",
                                   "The Daily Herald"}
    assert row["label"] == wire["title"]  # the earliest story's title

    cited = fetch_all(url, """SELECT cited_name, cited_publisher, kind, cited_story_ids, event_id
                              FROM news_api.citations WHERE article_id = %s ORDER BY position""", (digest["id"],))
    assert [(c["cited_name"], c["cited_publisher"], c["kind"]) for c in cited] == [
        ("Reuters", "Reuters Wire", "via"), ("NBC News", "NBC News", "via"),
        ("Sunday Times", "The Sunday Times", "via")]
    # within the event, each cited outlet links to the story it carried
    assert all(c["event_id"] == event and c["cited_story_ids"] == [wire["story_id"]] for c in cited)
    assert [s["story_id"] for s in fetch_all(url, """SELECT story_id FROM news_api.event_stories
            WHERE event_id = %s ORDER BY published_at""", (event,))] == [wire["story_id"], herald["story_id"]]
    assert fetch_all(url, "SELECT event_id FROM news_api.stories WHERE id = %s",
                     (herald["story_id"],))[0]["event_id"] == event
    assert "cites NBC News, Reuters Wire, The Sunday Times" in events.overview_text(url)


def test_every_story_is_in_exactly_one_event(sample_pass, settings):
    rows = fetch_all(settings.database_url, """
        SELECT count(*) AS stories, count(es.story_id) AS placed, count(DISTINCT es.event_id) AS events
        FROM news.stories s LEFT JOIN news.event_stories es ON es.story_id = s.id""")[0]
    assert rows["stories"] == rows["placed"] == 9 and rows["events"] == 8


def _article(title: str, body: str, *, when: datetime = DAY, language: str = "en",
             publisher: str = "Test News", at: str | None = None) -> Article:
    key = hashlib.sha256((title + body).encode()).hexdigest()
    link = at or f"https://news.test/{key[:16]}"
    return Article(url=link, canonical_url=link, publisher=publisher, title=title, body=body, published_at=when,
                   language=language, authors=[], image_url=None, site_name=None, content_hash=key,
                   word_count=len(body.split()), body_source="page")


def _load(settings, title: str, body: str, *, when: datetime = DAY, language: str = "en",
          publisher: str = "Test News") -> int:
    """An article loaded the way ingestion loads it (write locks, story, then the hook)."""
    item = _article(title, body, when=when, language=language, publisher=publisher)
    with db.transaction(settings.database_url) as conn:
        take_write_locks(conn, timeout=settings.lock_timeout)
        article_id, _ = stories.add_article(conn, settings, item)
        events.after_load(conn, settings, article_id, body)
    return article_id



def test_same_day_different_events_stay_apart(database_url, settings):
    ids = [_load(settings, t, b, when=DAY + timedelta(hours=i)) for i, (t, b) in enumerate((ECB, BOE, QUAKE_1, QUAKE_2))]
    assert len({event_of(database_url, i) for i in ids}) == 4
    # the same statement written up independently by another outlet joins its event
    ecb_again = _load(settings, *ECB_AGAIN, when=DAY + timedelta(hours=5), publisher="Other Daily")
    assert event_of(database_url, ecb_again) == event_of(database_url, ids[0])


def test_never_merged_across_languages(database_url, settings):
    first = _load(settings, *ECB)
    german = _load(settings, "EZB hält Zinsen bei 2.25% – Lagarde warnt vor starkem Euro",
                   "Die Europäische Zentralbank (EZB) hält den Einlagensatz bei 2.25%, sagte Christine Lagarde "
                   "am Donnerstag in Frankfurt. Der starke Euro belaste Exporteure in Germany und Italy; "
                   "Märkte sehen eine Chance von 35% für eine Senkung im Juni.", language="de")
    assert event_of(database_url, first) != event_of(database_url, german)



def test_a_bridging_story_merges_two_events_in_the_change_feed(database_url, settings):
    # the fire's first two reports link at 0.79 (same happening, other words); a threshold
    # above that keeps them apart until the third report, which matches both at > 0.99
    settings = settings.replace(event_threshold=0.85)
    a = _load(settings, *FIRE_A)
    c = _load(settings, *FIRE_C, when=DAY + timedelta(hours=2))
    event_a, event_c = event_of(database_url, a), event_of(database_url, c)
    assert event_a != event_c
    seq = fetch_all(database_url, "SELECT max(seq) AS s FROM news_api.changes")[0]["s"]
    b = _load(settings, *FIRE_B, when=DAY + timedelta(hours=3))
    assert event_of(database_url, a) == event_of(database_url, b) == event_of(database_url, c) == event_a
    feed = fetch_all(database_url, """SELECT entity, entity_id, kind, fields, event_id, previous_event_id
                                      FROM news_api.changes WHERE seq > %s ORDER BY seq""", (seq,))
    assert {"entity": "event", "entity_id": event_c, "kind": "merged", "fields": None, "event_id": event_a,
            "previous_event_id": None} in feed
    story_c = fetch_all(database_url, "SELECT story_id FROM news.articles WHERE id = %s", (c,))[0]["story_id"]
    moved = [r for r in feed if r["entity"] == "story" and r["entity_id"] == story_c]
    assert moved and moved[0]["event_id"] == event_a and moved[0]["previous_event_id"] == event_c
    assert "event" in moved[0]["fields"]
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.events WHERE id = %s", (event_c,))[0]["n"] == 0


def _correct(settings, article_id: int, title: str, body: str, **kw) -> None:
    """A corrected text for an article we hold (same URL), as ingestion applies it."""
    url = fetch_all(settings.database_url, "SELECT canonical_url FROM news.articles WHERE id = %s",
                    (article_id,))[0]["canonical_url"]
    item = _article(title, body, at=url, **kw)
    with db.transaction(settings.database_url) as conn:
        take_write_locks(conn, timeout=settings.lock_timeout)
        target, _ = revisions.known(conn, article_id=article_id, canonical_url=url, content_hash=item.content_hash)
        corrections.revise(conn, settings, target, item)


def test_a_corrected_text_is_placed_again_and_its_citations_extracted_again(database_url, settings):
    ecb = _load(settings, *ECB)
    again = _load(settings, *ECB_AGAIN, when=DAY + timedelta(hours=5), publisher="Other Daily")
    event = event_of(database_url, ecb)
    assert event_of(database_url, again) == event
    seq = fetch_all(database_url, "SELECT max(seq) AS s FROM news_api.changes")[0]["s"]
    # the outlet replaces its text with a report of another happening, crediting Reuters
    _correct(settings, again, BOE[0], BOE[1] + "\nThe vote was announced in London, according to Reuters.",
             when=DAY + timedelta(hours=5), publisher="Other Daily")
    moved_to = event_of(database_url, again)
    assert moved_to != event and event_of(database_url, ecb) == event
    assert [(c["cited_name"], c["kind"]) for c in fetch_all(
        database_url, "SELECT cited_name, kind FROM news.article_citations WHERE article_id = %s",
        (again,))] == [("Reuters", "according_to")]
    story = fetch_all(database_url, "SELECT story_id FROM news.articles WHERE id = %s", (again,))[0]["story_id"]
    feed = fetch_all(database_url, """SELECT event_id, previous_event_id FROM news_api.changes
                                      WHERE seq > %s AND entity = 'story' AND entity_id = %s""", (seq, story))
    assert feed == [{"event_id": moved_to, "previous_event_id": event}]
    assert fetch_all(database_url, "SELECT story_count FROM news.events WHERE id = %s",
                     (event,))[0]["story_count"] == 1
    # corrected back: it rejoins the ECB's event, and the credit is gone with the text
    _correct(settings, again, *ECB_AGAIN, when=DAY + timedelta(hours=5), publisher="Other Daily")
    assert event_of(database_url, again) == event
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.article_citations WHERE article_id = %s",
                     (again,))[0]["n"] == 0
    placed = fetch_all(database_url, "SELECT count(*) AS n FROM news.event_stories WHERE rebuild_pending")
    assert placed[0]["n"] == 0
    assert key_counts_match(database_url)  # placed again twice: its old keys un-counted each time


def test_dedup_rebuild_places_new_stories_in_events(database_url, settings):
    from test_dedup_store import load, world

    from newsflow.recluster import rebuild as dedup_rebuild

    load(database_url, settings, world())
    events.rebuild(database_url, settings)
    before = {r["story_id"] for r in fetch_all(database_url, "SELECT story_id FROM news.event_stories")}
    # stricter thresholds split the excerpts off their wire stories: new story ids
    result = dedup_rebuild(database_url, settings.replace(dedup_containment=0.95, dedup_jaccard=0.9,
                                                          dedup_quote_containment=0.95))
    rows = fetch_all(database_url, """SELECT s.id, es.event_id, es.rebuild_pending FROM news.stories s
                                      LEFT JOIN news.event_stories es ON es.story_id = s.id""")
    assert {r["id"] for r in rows} - before, "the rebuild made new stories"
    assert all(r["event_id"] is not None and not r["rebuild_pending"] for r in rows)
    assert result["events_placed"] == len({r["id"] for r in rows} - before)
    # what the same signatures give: `newsflow events rebuild` moves nothing afterwards
    assert events.rebuild(database_url, settings)["moved"] == 0


def test_rebuild_is_idempotent_and_resumable(sample_pass, settings):
    url = settings.database_url
    before = fetch_all(url, "SELECT story_id, event_id FROM news.event_stories ORDER BY story_id")
    seq = fetch_all(url, "SELECT max(seq) AS s FROM news_api.changes")[0]["s"]
    result = events.rebuild(url, settings)
    assert result["stories"] == 9 and result["moved"] == 0 and result["merged"] == 0
    assert fetch_all(url, "SELECT story_id, event_id FROM news.event_stories ORDER BY story_id") == before
    assert fetch_all(url, "SELECT count(*) AS n FROM news_api.changes WHERE seq > %s", (seq,))[0]["n"] == 0

    # interrupted after two batches of two stories: the next run finishes, same events
    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done >= 4:
            raise Stop

    small = settings.replace(event_rebuild_batch=2)
    with pytest.raises(Stop):
        events.rebuild(url, small, progress=stop_after_two)
    assert fetch_all(url, "SELECT count(*) AS n FROM news.event_stories WHERE rebuild_pending")[0]["n"] == 5
    assert events.rebuild(url, small)["stories"] == 5
    assert fetch_all(url, "SELECT story_id, event_id FROM news.event_stories ORDER BY story_id") == before
    assert key_counts_match(url)


def key_counts_match(url: str) -> bool:
    """news.event_keys holds exactly the keys of the placed stories, '*' (all stories of a
    day) included: what the rule's rarity reads."""
    stored = fetch_all(url, "SELECT key, day, stories FROM news.event_keys WHERE stories <> 0 ORDER BY 1, 2")
    recount = fetch_all(url, """
        SELECT split_part(x, '@', 1) AS key, split_part(x, '@', 2)::date AS day, count(*)::int AS stories
        FROM news.event_stories es, unnest(es.keys) x WHERE NOT es.rebuild_pending
        GROUP BY 1, 2 ORDER BY 1, 2""")
    days = fetch_all(url, """SELECT (published_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS n
                             FROM news.event_stories WHERE NOT rebuild_pending GROUP BY 1""")
    stars = {(r["key"], r["day"]): r["stories"] for r in stored if r["key"] == "*"}
    return stored == recount and stars == {("*", d["day"]): d["n"] for d in days}


def test_the_key_counts_follow_placements_corrections_and_an_interrupted_rebuild(sample_pass, settings):
    url = settings.database_url
    assert key_counts_match(url)

    class Stop(Exception):
        pass

    def stop_early(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        events.rebuild(url, settings.replace(event_rebuild_batch=3), progress=stop_early)
    assert key_counts_match(url)  # the waiting stories are out of the counts, the placed ones in
    events.rebuild(url, settings)
    assert key_counts_match(url)


def test_migration_019_counts_the_stories_of_each_day(pg_server_url, tmp_path):
    """Placed stories stored before 019 get their '*@day' key and are counted under '*';
    stories an interrupted rebuild left waiting leave the counts."""
    with database_before(pg_server_url, tmp_path, 19) as url:
        with db.connect(url) as conn:
            ids = [conn.execute("INSERT INTO news.stories (title) VALUES ('T') RETURNING id").fetchone()["id"]
                   for _ in range(3)]
            event = conn.execute("INSERT INTO news.events DEFAULT VALUES RETURNING id").fetchone()["id"]
            for story_id, pending, keys in ((ids[0], False, ["e:okafor@2026-11-20", "n:950@2026-11-20"]),
                                            (ids[1], False, ["e:okafor@2026-11-20"]),
                                            (ids[2], True, ["e:okafor@2026-11-20"])):
                conn.execute("""INSERT INTO news.event_stories (story_id, event_id, published_at, language, terms,
                                    entities, numbers, keys, rebuild_pending)
                                VALUES (%s, %s, '2026-11-20 23:30+00', 'en', '{}', '{}', '{}', %s, %s)""",
                             (story_id, event, keys, pending))
            conn.execute("""INSERT INTO news.event_keys (key, day, stories)
                            VALUES ('e:okafor', '2026-11-20', 3), ('n:950', '2026-11-20', 1)""")
            conn.commit()
        db.upgrade(url)
        assert key_counts_match(url)
        counts = {r["key"]: r["stories"] for r in fetch_all(url, "SELECT key, stories FROM news.event_keys")}
        assert counts == {"e:okafor": 2, "n:950": 1, "*": 2}
        keys = {r["story_id"]: r["keys"] for r in fetch_all(url, "SELECT story_id, keys FROM news.event_stories")}
        assert keys[ids[0]][-1] == "*@2026-11-20" and keys[ids[2]] == []


@pytest.mark.parametrize("text, expected", [
    ("(Via Reuters, NBC News & Sunday Times)", [("Reuters", "via"), ("NBC News", "via"), ("Sunday Times", "via")]),
    ("Police made arrests, according to Reuters.", [("Reuters", "according_to")]),
    ("The analyst told NBC News on Sunday that cells remain.", [("NBC News", "told")]),
    ("The Sunday Times reports that fighters fled to Turkey.", [("Sunday Times", "reports")]),
    ("WASHINGTON (AP) — The Senate voted on Tuesday.", [("AP", "dateline")]),
    ("Reuters contributed to this report.", [("Reuters", "credit")]),
    ("The numbers fell, according to Colonel Okafor.", []),
    ("according to people familiar with the matter", []),
    ("Okafor told reporters in Baghdad.", []),
    ("We travelled via Frankfurt and Vienna to get there.", []),
])
def test_citation_extraction(text, expected):
    assert [(c.name, c.kind) for c in citations.extract(text)] == expected


@pytest.fixture
def reader_url(database_url):
    """A login with nothing but newsflow_reader (``newsflow db grant-reader``)."""
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    role = f"nf_reader_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        readers.grant_reader(database_url, role)
        yield make_conninfo(database_url, user=role)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_consumer_examples_as_the_reader(sample_pass, settings, reader_url):
    """docs/consumers.md's event queries, as the reader role, 'now' being the sample world's
    last day."""
    import psycopg
    from psycopg.rows import dict_row

    url, base = settings.database_url, sample_pass
    herald = article(url, base, HERALD_ISIS)
    now = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
    with psycopg.connect(reader_url, row_factory=dict_row) as conn:
        coverage = conn.execute("""
            SELECT m.published_at, m.publisher, m.relation, es.title, m.url
            FROM news_api.event_stories es JOIN news_api.story_members m ON m.story_id = es.story_id
            WHERE es.event_id = (SELECT event_id FROM news_api.stories WHERE id = %s)
            ORDER BY m.published_at NULLS LAST, m.publisher""", (herald["story_id"],)).fetchall()
        assert [r["publisher"] for r in coverage] == ["Reuters Wire", "NBC News", "The Daily Herald",
                                                      "The Sunday Times", "NewsDigest"]
        cited = conn.execute("""
            SELECT coalesce(cited_publisher, cited_name) AS outlet, count(*) AS citations,
                   count(DISTINCT citing_publisher) AS citing_outlets
            FROM news_api.citations
            WHERE sort_at >= %s - interval '7 days'
            GROUP BY 1 ORDER BY citations DESC, outlet LIMIT 20""", (now,)).fetchall()
        assert cited[0]["outlet"] == "Reuters Wire" and cited[0]["citing_outlets"] == 4
        assert {"NBC News", "The Sunday Times"} <= {r["outlet"] for r in cited}
        big = conn.execute("""
            SELECT id, label, outlet_count, outlets, first_published_at
            FROM news_api.events
            WHERE last_published_at >= %s - interval '24 hours' AND outlet_count >= 5
            ORDER BY outlet_count DESC, last_published_at DESC""", (now,)).fetchall()
        assert [r["label"] for r in big] == [herald_event_label(url, herald["story_id"])]
        moves = conn.execute("""SELECT count(*) AS n FROM news_api.changes
                                WHERE entity = 'event' OR 'event' = ANY(fields)""").fetchone()
        assert moves["n"] > 0


def herald_event_label(url: str, story_id: int) -> str:
    return fetch_all(url, """SELECT e.label FROM news.events e JOIN news.event_stories es ON es.event_id = e.id
                             WHERE es.story_id = %s""", (story_id,))[0]["label"]


def test_cli_events_rebuild(sample_pass, settings, monkeypatch, capsys):
    from newsflow import cli

    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", settings.database_url)
    assert cli.main(["events", "rebuild"]) == 0
    assert "9 stories placed into 8 events (0 changed event, 0 events merged)" in capsys.readouterr().out
    # a dedup rebuild with the same settings keeps every story and its event: none placed again
    assert cli.main(["dedup", "rebuild"]) == 0
    assert "0 placed in events)" in capsys.readouterr().out


def test_the_look_up_index_has_no_pending_list(database_url):
    """Migration 018: every GIN search scans the pending list, so the look-up index is
    updated directly (docs/events.md: 65 ms against 1.6 ms at 1M with 3,000 pending)."""
    options = fetch_all(database_url, """SELECT reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                         WHERE n.nspname = 'news' AND c.relname = 'event_stories_keys_idx'""")
    assert options == [{"reloptions": ["fastupdate=off"]}]
