"""The PostgreSQL dedup index in use: concurrent loads of one new story, and
`newsflow dedup rebuild` (determinism, thresholds, --since, idempotence).

Real PostgreSQL (a fresh database per test, see conftest), real code paths:
``stories.add_article`` / ``ingest.write`` and ``recluster.rebuild``.
"""

from __future__ import annotations

import json
from collections import Counter
import os
import random
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from conftest import REPO_ROOT, fetch_all
from tools.pgscratch import scratch_database
from newsflow import db, dedup, upgrade
from newsflow.stories import add_article
from newsflow.models import Article
from newsflow.normalize import content_hash, word_count
from newsflow.recluster import rebuild

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
GATE_KEY = 0x67617465_00000000  # "gate": parent-held advisory locks that start a round


# ------------------------------------------------------------------------ texts


def paragraphs(seed: int, n: int = 6, words: int = 50) -> list[str]:
    """``n`` paragraphs of pseudo-words; a vocabulary of its own per seed, so texts of
    different seeds share no shingle (and no LSH band)."""
    rng = random.Random(seed)
    syl = ["ka", "lo", "mi", "ner", "tu", "sa", "vel", "dor", "pi", "an", "reth", "ul", "zo", "be"]
    vocab = ["".join(rng.choice(syl) for _ in range(rng.randint(2, 4))) + str(seed % 97)
             for _ in range(800)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) + "." for _ in range(n)]


def variants(seed: int) -> dict[str, str]:
    """A wire story and copies of it: a trimmed copy (containment 1.0, Jaccard ~0.8)
    and an aggregator excerpt (2 of 6 paragraphs + commentary: containment ~0.75,
    Jaccard ~0.3, so it joins at the default thresholds only)."""
    p = paragraphs(seed)
    comment = paragraphs(seed + 100_000, n=1, words=30)[0]
    return {
        "wire": "\n\n".join(p),
        "trimmed": "\n\n".join(["Published with permission."] + p[:5]),
        "excerpt": "\n\n".join([comment, p[1], p[2], "Via Wire"]),
    }


def chain_texts(seed: int) -> dict[str, str]:
    """No-chaining trap: A ~ B and B ~ C (2 of 3 paragraphs shared), A !~ C (1 of 3)."""
    p = paragraphs(seed, n=5, words=60)
    return {"A": "\n\n".join(p[0:3]), "B": "\n\n".join(p[1:4]), "C": "\n\n".join(p[2:5])}


def make_article(key: str, body: str, published: datetime, publisher: str = "Outlet") -> Article:
    url = f"https://{publisher.lower().replace(' ', '')}.example/{key}"
    return Article(url=url, canonical_url=url, publisher=publisher, title=key, body=body,
                   published_at=published, language="en", authors=[], image_url=None,
                   site_name=publisher, content_hash=content_hash(body),
                   word_count=word_count(body), body_source="page")


def world() -> list[Article]:
    """Three syndicated stories with their copies, two chain traps, a loner."""
    out = []
    for i, seed in enumerate((11, 12, 13)):
        base = T0 + timedelta(hours=6 * i)
        for j, (kind, body) in enumerate(variants(seed).items()):
            out.append(make_article(f"s{seed}-{kind}", body, base + timedelta(minutes=20 * j)))
    for i, seed in enumerate((21, 22)):
        base = T0 + timedelta(days=1, hours=3 * i)
        for j, (kind, body) in enumerate(chain_texts(seed).items()):
            out.append(make_article(f"c{seed}-{kind}", body, base + timedelta(minutes=30 * j)))
    out.append(make_article("loner", "\n\n".join(paragraphs(31)), T0 + timedelta(days=2)))
    return out


def load(url: str, settings, articles) -> None:
    """Each article in its own transaction under the write locks, as ingest.write does."""
    from newsflow.storage.locks import take_write_locks

    for a in articles:
        with db.transaction(url) as conn:
            take_write_locks(conn, timeout=settings.lock_timeout)
            add_article(conn, settings, a)


def partition(url: str) -> set[frozenset[str]]:
    rows = fetch_all(url, "SELECT story_id, canonical_url FROM news.articles")
    stories: dict[int, set[str]] = {}
    for r in rows:
        stories.setdefault(r["story_id"], set()).add(r["canonical_url"])
    return {frozenset(s) for s in stories.values()}


def story_facts(url: str) -> dict[frozenset[str], tuple]:
    """Per story (by member URLs): representative, origin, count, first date, and each
    member's relation; everything but row ids."""
    members = fetch_all(url, """SELECT story_id, canonical_url, story_relation,
                                       round(story_containment::numeric, 4) AS c
                                FROM news.articles ORDER BY canonical_url""")
    stories = fetch_all(url, """
        SELECT s.id, r.canonical_url AS rep, o.canonical_url AS origin, s.origin_publisher,
               s.article_count, s.first_published_at
        FROM news.stories s LEFT JOIN news.articles r ON r.id = s.representative_id
                            LEFT JOIN news.articles o ON o.id = s.origin_article_id""")
    out = {}
    for s in stories:
        mine = [(m["canonical_url"], m["story_relation"], m["c"]) for m in members
                if m["story_id"] == s["id"]]
        out[frozenset(m[0] for m in mine)] = (s["rep"], s["origin"], s["origin_publisher"],
                                              s["article_count"], s["first_published_at"],
                                              tuple(mine))
    return out


def check_consistent(url: str, settings) -> None:
    """Invariants after any load or rebuild."""
    empty = fetch_all(url, """SELECT s.id FROM news.stories s WHERE NOT EXISTS
                              (SELECT 1 FROM news.articles a WHERE a.story_id = s.id)""")
    assert empty == [], "stories without members"
    bad = fetch_all(url, """
        SELECT s.id, s.article_count, count(a.id) AS n, s.representative_id,
               bool_or(a.id = s.representative_id) AS rep_is_member,
               bool_or(a.id = s.origin_article_id) AS origin_is_member
        FROM news.stories s JOIN news.articles a ON a.story_id = s.id
        GROUP BY s.id HAVING s.article_count <> count(a.id) OR s.representative_id IS NULL
            OR NOT bool_or(a.id = s.representative_id) OR NOT bool_or(a.id = s.origin_article_id)""")
    assert bad == [], f"stale stories: {bad}"
    assert fetch_all(url, "SELECT count(*) AS n FROM news.articles WHERE story_id IS NULL")[0]["n"] == 0
    n = fetch_all(url, "SELECT count(*) AS n FROM news.articles")[0]["n"]
    sig = fetch_all(url, "SELECT count(*) AS n FROM news.dedup_signatures")[0]["n"]
    bands = fetch_all(url, "SELECT count(*) AS n FROM news.dedup_bands")[0]["n"]
    assert sig == n and bands == n * settings.dedup_bands, (n, sig, bands)


@pytest.fixture
def second_database(pg_server_url):
    with scratch_database(pg_server_url) as url:
        yield url


# ------------------------------------------------------------ the texts themselves


def test_test_texts_have_the_intended_similarities(settings):
    v = {k: dedup.fingerprint(t, settings).shingles for k, t in variants(11).items()}
    assert dedup.same_story(v["wire"], v["trimmed"], settings)[0]
    ok, jac, cont = dedup.same_story(v["wire"], v["excerpt"], settings)
    assert ok and cont < 0.95 and jac < 0.9  # splits off at containment 0.95 / Jaccard 0.9
    c = {k: dedup.fingerprint(t, settings).shingles for k, t in chain_texts(21).items()}
    assert dedup.same_story(c["A"], c["B"], settings)[0] and dedup.same_story(c["B"], c["C"], settings)[0]
    assert not dedup.same_story(c["A"], c["C"], settings)[0]
    other = dedup.fingerprint(variants(12)["wire"], settings)
    assert not set(other.bands) & set(dedup.fingerprint(variants(11)["wire"], settings).bands)


# ------------------------------------------------------------------ concurrency

CHILD = r"""
import json, sys
from newsflow import db
from newsflow.config import Settings
from newsflow.stories import add_article
from newsflow.storage.locks import take_write_locks
from newsflow.models import Article
from datetime import datetime
url, gate, mode, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
settings = Settings(database_url=url)
for r, a in enumerate(spec):
    a["published_at"] = datetime.fromisoformat(a["published_at"])
    article = Article(**a)
    with db.connect(url) as conn:
        with conn.transaction():
            # wait for the start signal: the parent releases the round's gate lock
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (gate + 2 * r,))
            if mode == "locked":  # what ingest.write does before loading
                take_write_locks(conn, timeout=settings.lock_timeout)
            else:  # control: without the consumer triggers, whose changes lock (migration 010)
                # would serialise the two writes and keep the second child from its gate
                conn.execute("SET LOCAL session_replication_role = replica")
            article_id, _ = add_article(conn, settings, article)
            if mode == "unlocked":  # control: both decide before either commits
                conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (gate + 2 * r + 1,))
    print(json.dumps({"round": r, "article_id": article_id}), flush=True)
"""


def _waiting_on(conn, key: int) -> int:
    return conn.execute("""SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                           AND NOT granted AND ((classid::bigint << 32) | objid::bigint) = %s""",
                        (key,)).fetchone()[0]


def _release_when_both_wait(conn, key: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _waiting_on(conn, key) < 2:
        assert time.monotonic() < deadline, f"children never reached gate {key}"
        time.sleep(0.005)
    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def race_rounds(url: str, rounds: int, mode: str) -> list[tuple[int, int]]:
    """``rounds`` new stories; per round, two processes load one copy each (wire text
    vs a trimmed copy, different canonical URLs) released at the same instant.
    Returns the (story of copy 1, story of copy 2) per round."""
    specs = [[], []]
    for r in range(rounds):
        v = variants(1000 + r)
        when = T0 + timedelta(days=r)
        for side, (kind, pub) in enumerate((("wire", "Wire"), ("trimmed", "Portal"))):
            a = make_article(f"race{r}-{kind}", v[kind], when + timedelta(minutes=side), pub)
            d = dict(a.__dict__, published_at=a.published_at.isoformat())
            d.pop("fingerprint")
            specs[side].append(d)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "plugins"))
    with psycopg.connect(url, autocommit=True) as gatekeeper:
        for r in range(rounds):  # hold every gate before the children start
            gatekeeper.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)",
                               (GATE_KEY + 2 * r, GATE_KEY + 2 * r + 1))
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, url, str(GATE_KEY), mode,
                                   json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for spec in specs]
        try:
            for r in range(rounds):
                _release_when_both_wait(gatekeeper, GATE_KEY + 2 * r)
                if mode == "unlocked":
                    _release_when_both_wait(gatekeeper, GATE_KEY + 2 * r + 1)
                else:
                    gatekeeper.execute("SELECT pg_advisory_unlock(%s)", (GATE_KEY + 2 * r + 1,))
            outputs = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    ids = [[json.loads(line)["article_id"] for line in out.splitlines()] for out, _ in outputs]
    stories = {r["id"]: r["story_id"] for r in fetch_all(url, "SELECT id, story_id FROM news.articles")}
    return [(stories[a], stories[b]) for a, b in zip(*ids, strict=True)]


def test_two_processes_loading_copies_of_a_new_story_make_one_story(database_url, settings):
    rounds = race_rounds(database_url, 6, "locked")
    assert all(a == b for a, b in rounds), rounds
    sizes = fetch_all(database_url, "SELECT article_count FROM news.stories ORDER BY id")
    assert [s["article_count"] for s in sizes] == [2] * 6
    check_consistent(database_url, settings)


def test_race_harness_does_split_a_story_without_the_load_lock(database_url, settings):
    """Control: the same harness, the load lock left out and both transactions made to
    decide before either commits, ends in two stories per round; so the test above
    would catch a lost or mis-scoped lock."""
    rounds = race_rounds(database_url, 2, "unlocked")
    assert all(a != b for a, b in rounds), rounds


class _RacePages(BaseHTTPRequestHandler):
    """Serves /r<round>/<side>.html; answers a round's two pages only once both were
    requested, so two ingest processes reach their load phase together."""

    pages: dict[str, bytes] = {}
    barriers: dict[str, threading.Barrier] = {}

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = self.pages.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.barriers[self.path.split("/")[1]].wait(timeout=60)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


INGEST_CHILD = r"""
import json, sys
from newsflow.config import Settings
from newsflow.httpclient import SafeClient
from newsflow.ingest import ingest_pending
url, data_dir, entry_ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings = Settings(database_url=url, data_dir=data_dir, allow_private_networks=True,
                    per_host_delay=0.0, per_host_concurrency=4, extract_workers=1, ingest_concurrency=1)
client = SafeClient(settings)
for entry_id in entry_ids:
    out = ingest_pending(url, settings, entry_ids=[entry_id], max_batches=1, client=client)
    print(json.dumps({"loaded": out.loaded, "near": out.near_duplicates, "errors": out.errors}),
          flush=True)
client.close()
"""


def test_two_ingest_batches_racing_on_a_new_story_make_one_story(database_url, settings, tmp_path):
    """The same race through a whole batch (ingest_pending): two processes, one entry each, the
    page server holding both pages until both are requested."""
    rounds = 4
    handler = type("H", (_RacePages,), {"pages": {}, "barriers": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    entry_ids: list[list[int]] = [[], []]
    try:
        with db.transaction(database_url) as conn:
            feeds = [conn.execute("INSERT INTO news.feeds (url, publisher) VALUES (%s, %s) RETURNING id",
                                  (f"{base}/{p}.xml", p)).fetchone()["id"] for p in ("Wire", "Portal")]
            for r in range(rounds):
                v = variants(2000 + r)
                handler.barriers[f"r{r}"] = threading.Barrier(2)
                for side, kind in enumerate(("wire", "trimmed")):
                    paras = "".join(f"<p>{p}</p>" for p in v[kind].split("\n\n"))
                    path = f"/r{r}/{kind}.html"
                    handler.pages[path] = (f"<html><head><title>Story {r}</title></head><body>"
                                           f"<article><h1>Story {r}</h1>{paras}</article></body></html>"
                                           ).encode()
                    entry_ids[side].append(conn.execute("""
                        INSERT INTO news.entries (feed_id, guid, link, title, published_at)
                        VALUES (%s, %s, %s, %s, %s) RETURNING id""",
                        (feeds[side], path, base + path, f"Story {r}",
                         T0 + timedelta(days=r, minutes=side))).fetchone()["id"])
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "plugins"))
        procs = [subprocess.Popen([sys.executable, "-c", INGEST_CHILD, database_url,
                                   str(tmp_path / f"state{i}"), json.dumps(ids)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, ids in enumerate(entry_ids)]
        try:
            outputs = [p.communicate(timeout=180) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    finally:
        httpd.shutdown()
        httpd.server_close()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        results = [json.loads(line) for line in out.splitlines()]
        assert [r["loaded"] for r in results] == [1] * rounds, results
    rows = fetch_all(database_url, """
        SELECT e.id, a.story_id FROM news.entries e JOIN news.articles a ON a.id = e.article_id""")
    story_of = {r["id"]: r["story_id"] for r in rows}
    assert [story_of[a] == story_of[b] for a, b in zip(*entry_ids, strict=True)] == [True] * rounds
    sizes = fetch_all(database_url, "SELECT article_count FROM news.stories")
    assert sorted(s["article_count"] for s in sizes) == [2] * rounds
    check_consistent(database_url, settings)


# ---------------------------------------------------------------------- rebuild


def test_rebuild_gives_the_same_stories_whatever_the_insertion_order(database_url, second_database,
                                                                      settings):
    articles = world()
    in_order = sorted(articles, key=lambda a: a.published_at)
    shuffled = list(reversed(in_order))  # copies first, originals last
    random.Random(5).shuffle(shuffled[3:])
    load(database_url, settings, in_order)
    load(second_database, settings, shuffled)
    # before the rebuild arrival order shows: the chain trap clusters differently
    assert partition(database_url) != partition(second_database)
    for url in (database_url, second_database):
        result = rebuild(url, settings)
        assert result["articles"] == len(articles)
        check_consistent(url, settings)
    expected = {frozenset(f"https://outlet.example/{k}" for k in keys) for keys in (
        ["s11-wire", "s11-trimmed", "s11-excerpt"], ["s12-wire", "s12-trimmed", "s12-excerpt"],
        ["s13-wire", "s13-trimmed", "s13-excerpt"], ["c21-A", "c21-B"], ["c21-C"],
        ["c22-A", "c22-B"], ["c22-C"], ["loner"])}
    assert partition(database_url) == expected
    assert story_facts(database_url) == story_facts(second_database)


def test_rebuild_follows_threshold_changes(database_url, settings):
    load(database_url, settings, world())
    strict = settings.replace(dedup_containment=0.95, dedup_jaccard=0.9, dedup_quote_containment=0.95)
    rebuild(database_url, strict)
    check_consistent(database_url, strict)
    parts = partition(database_url)
    for seed in (11, 12, 13):
        u = lambda k, seed=seed: f"https://outlet.example/s{seed}-{k}"  # noqa: E731
        assert frozenset({u("wire"), u("trimmed")}) in parts
        assert frozenset({u("excerpt")}) in parts
    rebuild(database_url, settings)
    check_consistent(database_url, settings)
    for seed in (11, 12, 13):
        u = lambda k, seed=seed: f"https://outlet.example/s{seed}-{k}"  # noqa: E731
        assert frozenset({u("wire"), u("trimmed"), u("excerpt")}) in partition(database_url)


def test_rebuild_is_idempotent_and_keeps_story_ids(database_url, settings):
    load(database_url, settings, sorted(world(), key=lambda a: a.canonical_url))
    rebuild(database_url, settings)
    q = """SELECT a.canonical_url, a.story_id, a.story_relation, a.story_jaccard, a.story_containment,
                  s.representative_id, s.origin_article_id, s.origin_publisher, s.origin_basis,
                  s.article_count, s.first_published_at, s.title
           FROM news.articles a JOIN news.stories s ON s.id = a.story_id ORDER BY a.canonical_url"""
    first = fetch_all(database_url, q)
    index_q = "SELECT * FROM news.dedup_bands ORDER BY article_id, band"
    first_index = fetch_all(database_url, index_q)
    rebuild(database_url, settings)
    assert fetch_all(database_url, q) == first
    assert fetch_all(database_url, index_q) == first_index
    check_consistent(database_url, settings)


def test_rebuild_since_reclusters_only_newer_articles(database_url, settings):
    old_v, span_v, new_v = variants(41), variants(42), variants(43)
    old = [make_article(f"old-{k}", b, T0 + timedelta(minutes=i)) for i, (k, b) in enumerate(old_v.items())]
    # a story across the boundary: wire before it, excerpt and trimmed copy after it
    span = [make_article("span-wire", span_v["wire"], T0 + timedelta(days=2)),
            make_article("span-excerpt", span_v["excerpt"], T0 + timedelta(days=3, hours=1)),
            make_article("span-trimmed", span_v["trimmed"], T0 + timedelta(days=3, hours=2))]
    new = [make_article(f"new-{k}", b, T0 + timedelta(days=4, minutes=i)) for i, (k, b) in enumerate(new_v.items())]
    # arrival order: the excerpt of the spanning story came in first and is its representative
    load(database_url, settings, old + [span[1], span[0], span[2]] + new)
    since = T0 + timedelta(days=3)
    q = """SELECT a.canonical_url, a.story_id, a.story_relation, s.article_count, s.representative_id
           FROM news.articles a JOIN news.stories s ON s.id = a.story_id
           WHERE a.published_at < %s ORDER BY 1"""
    old_before = fetch_all(database_url, q, (since,))
    url = lambda k: f"https://outlet.example/{k}"  # noqa: E731

    strict = settings.replace(dedup_containment=0.95, dedup_jaccard=0.9, dedup_quote_containment=0.95)
    result = rebuild(database_url, strict, since=since)
    assert result["articles"] == 5  # span-excerpt, span-trimmed and the three new ones
    check_consistent(database_url, strict)
    parts = partition(database_url)
    # older articles' stories untouched: the old excerpt stays although strict would split it
    assert frozenset(url(f"old-{k}") for k in old_v) in parts
    # the spanning story keeps its wire (older), the trimmed copy rejoins it, the
    # newer excerpt is split off; the new story is re-clustered in full
    assert frozenset({url("span-wire"), url("span-trimmed")}) in parts
    assert frozenset({url("span-excerpt")}) in parts
    assert frozenset({url("new-wire"), url("new-trimmed")}) in parts
    assert frozenset({url("new-excerpt")}) in parts
    after = {r["canonical_url"]: r for r in fetch_all(database_url, q, (since,))}
    for r in old_before:
        if not r["canonical_url"].startswith(url("span")):
            assert after[r["canonical_url"]] == r
    assert after[url("span-wire")]["story_id"] == old_before[[r["canonical_url"] for r in old_before]
                                                             .index(url("span-wire"))]["story_id"]

    rebuild(database_url, settings, since=since)  # back to the defaults: merged again
    check_consistent(database_url, settings)
    parts = partition(database_url)
    assert frozenset({url("span-wire"), url("span-trimmed"), url("span-excerpt")}) in parts
    assert frozenset(url(f"new-{k}") for k in new_v) in parts
    assert frozenset(url(f"old-{k}") for k in old_v) in parts


def test_signatures_of_an_older_scheme_are_computed_again_once(database_url, settings):
    """After an upgrade that changes the fingerprint (models.SIGNATURE_SCHEME), the next
    start recomputes the stored signatures from the articles' text, and copies of old
    stories are recognised again."""
    from newsflow.models import SIGNATURE_SCHEME

    load(database_url, settings, world())
    stories_before = partition(database_url)
    # as stored before: an older scheme, and no passage sketch (migration 017's default)
    fetch_all(database_url, """UPDATE news.dedup_signatures SET scheme = 2, minhash = '{1,2,3}', passages = '{}'
                               RETURNING 1""")
    fetch_all(database_url, "DELETE FROM news.dedup_bands RETURNING 1")
    assert upgrade.ready(settings) == database_url
    rows = fetch_all(database_url, """SELECT s.scheme, cardinality(s.minhash) AS n, s.passages, a.body
                                      FROM news.dedup_signatures s JOIN news.articles a ON a.id = s.article_id""")
    assert rows and all((r["scheme"], r["n"]) == (SIGNATURE_SCHEME, settings.dedup_num_perm) for r in rows)
    assert all(tuple(r["passages"]) == dedup.fingerprint(r["body"], settings).passages for r in rows)
    assert all(r["passages"] for r in rows)  # every text of this world is long enough for a sketch
    bands = fetch_all(database_url, "SELECT count(*) AS n FROM news.dedup_bands")[0]["n"]
    assert bands == len(rows) * settings.dedup_bands
    from newsflow.recluster import rebuild

    rebuild(database_url, settings)  # the recomputed index clusters exactly as before
    assert partition(database_url) == stories_before


def test_the_article_row_keeps_the_evidence_that_placed_it(database_url, settings):
    load(database_url, settings, world())
    rows = {r["canonical_url"].rsplit("/", 1)[1]: r for r in fetch_all(database_url, """
        SELECT canonical_url, story_relation, story_signal, story_signal_value, story_containment
        FROM news.articles""")}
    assert rows["s11-wire"]["story_signal"] is None  # the first member
    assert rows["s11-trimmed"]["story_signal"] == "containment"
    assert rows["s11-trimmed"]["story_signal_value"] == pytest.approx(rows["s11-trimmed"]["story_containment"])
    # a credited excerpt below the copy thresholds keeps its quoted run as the evidence
    strict = settings.replace(dedup_containment=0.95, dedup_jaccard=0.9)
    rebuild(database_url, strict)
    excerpt = fetch_all(database_url, """SELECT story_relation, story_signal, story_signal_value
                                         FROM news.articles WHERE canonical_url LIKE %s""", ("%s12-excerpt",))[0]
    assert (excerpt["story_relation"], excerpt["story_signal"]) == ("excerpt", "credited_quote")
    assert excerpt["story_signal_value"] >= strict.dedup_quote_run


# ------------------------------------------- quoted passages of long articles (issue 16)


def long_story_texts() -> dict[str, str]:
    """A long article (30 paragraphs, 1,800 words); an aggregator's post quoting two of
    its paragraphs under as much commentary of its own, credited ("Via Reuters"); and the
    agency's next-day follow-up, under its own dateline, that reuses one background
    paragraph of it at the end; and an outlet's uncredited extract: a line of its own and
    three paragraphs of the article. All share too little with the article as a whole
    for an LSH band (Jaccard < 0.1)."""
    p = paragraphs(41, n=30, words=60)
    comment = paragraphs(41 + 100_000, n=3, words=45)
    news = paragraphs(41 + 200_000, n=2, words=60)
    return {
        "article": "\n\n".join(p),
        "post": "\n\n".join([comment[0], comment[1], p[7], p[8], comment[2], "Via Reuters"]),
        "follow-up": "\n\n".join(["BERLIN (Reuters) - " + news[0], news[1], p[3]]),
        "extract": "\n\n".join([paragraphs(41 + 300_000, n=1, words=20)[0], *p[2:5]]),
    }


def test_a_commentary_heavy_credited_excerpt_is_found_by_its_quoted_passages(database_url, settings):
    """The post joins the long article as an excerpt, with its evidence, through the batch
    index ingestion uses (one lookup for the batch); the follow-up is found too, but its
    verification keeps it apart (its dateline is its own byline, not the quotation's);
    the uncredited extract is found by the sketch too and joins on containment; the
    in-memory index decides the same."""
    from newsflow.storage import dedup_index
    from newsflow.storage.locks import take_write_locks
    from newsflow.credit import credit_window, wire_credit

    texts = long_story_texts()
    fps = {k: dedup.fingerprint(t, settings) for k, t in texts.items()}
    article = fps["article"]
    for key in ("post", "follow-up", "extract"):
        assert not set(enumerate(fps[key].bands)) & set(enumerate(article.bands))  # no band: LSH misses it
        assert set(fps[key].passages) & set(article.passages)  # the sketch does not
        jaccard, containment = dedup.similarity(fps[key].shingles, article.shingles)
        assert jaccard < 0.1 and settings.dedup_quote_containment <= containment
        assert (containment >= settings.dedup_containment) == (key == "extract")

    load(database_url, settings, [make_article("article", texts["article"], T0)])
    later = [make_article(k, texts[k], T0 + timedelta(hours=n))
             for n, k in enumerate(("post", "follow-up", "extract"), 1)]
    for a in later:  # as the extraction worker reads the credit
        a.wire_credit = wire_credit(credit_window(a.body))
    with db.transaction(database_url) as conn:
        take_write_locks(conn, timeout=settings.lock_timeout)
        index = dedup_index.BatchIndex(conn, settings.dedup_window_days,
                                       [(dedup.fingerprint(a.body, settings), a.published_at) for a in later])
        proposed = {k: {m.article_id for m in index.candidates(fps[k].bands, fps[k].passages)}
                    for k in ("post", "follow-up", "extract")}
        for a in later:
            add_article(conn, settings, a, index=index)
        index.flush()
    article_id = fetch_all(database_url, "SELECT id FROM news.articles WHERE title = 'article'")[0]["id"]
    assert later[2].wire_credit is None
    assert proposed == {"post": {article_id}, "follow-up": {article_id}, "extract": {article_id}}
    rows = {r["title"]: r for r in fetch_all(database_url, """
        SELECT title, story_id, story_relation, story_signal, story_signal_value FROM news.articles""")}
    assert rows["post"]["story_id"] == rows["article"]["story_id"]
    assert (rows["post"]["story_relation"], rows["post"]["story_signal"]) == ("excerpt", "credited_quote")
    assert rows["post"]["story_signal_value"] >= settings.dedup_quote_run  # the quoted run, in shingles
    assert rows["follow-up"]["story_id"] not in (rows["article"]["story_id"], rows["post"]["story_id"])
    assert (rows["follow-up"]["story_relation"], rows["follow-up"]["story_signal"]) == ("original", None)
    assert rows["extract"]["story_id"] == rows["article"]["story_id"]
    assert (rows["extract"]["story_relation"], rows["extract"]["story_signal"]) == ("excerpt", "containment")
    check_consistent(database_url, settings)

    # the sketch is stored with the signature row, and the in-memory index agrees
    stored = fetch_all(database_url, """SELECT a.title, s.passages FROM news.dedup_signatures s
                                        JOIN news.articles a ON a.id = s.article_id""")
    assert {r["title"]: tuple(r["passages"]) for r in stored} == {k: fp.passages for k, fp in fps.items()}
    order = ("article", "post", "follow-up", "extract")
    memory = dedup.cluster([(f"{n}-{k}", texts[k]) for n, k in enumerate(order)],
                           settings)
    assert memory == {"0-article": 1, "1-post": 1, "2-follow-up": 2, "3-extract": 1}


def test_a_passage_hash_many_texts_share_proposes_nobody(database_url, settings):
    """A passage hash more indexed texts of the window share than dedup_passage_max_texts
    (a publisher's standing footer, not a quotation) proposes nobody, in PostgreSQL as in
    memory; the sketch is window-limited like the bands."""
    from newsflow.storage import dedup_index

    cfg = settings.replace(dedup_passage_max_texts=2)
    footer = paragraphs(51, n=1, words=60)[0]
    texts = ["\n\n".join(paragraphs(60 + i, n=4, words=50) + [footer]) for i in range(4)]
    fps = [dedup.fingerprint(t, cfg) for t in texts]
    load(database_url, cfg, [make_article(f"own-{i}", t, T0 + timedelta(hours=i)) for i, t in enumerate(texts[:3])])
    assert len({r["story_id"] for r in fetch_all(database_url, "SELECT story_id FROM news.articles")}) == 3

    # which stored texts each cap lets the fourth find: a hash counts when at most `cap`
    # stored texts hold it (the footer's own windows are in all three; those at its edges
    # may be selected in some texts only)
    shared = Counter(h for fp in fps[:3] for h in fp.passages)

    def expected(cap: int) -> set[str]:  # (the footer may also give a text a band in common)
        return {f"own-{i}" for i, fp in enumerate(fps[:3])
                if any(shared[h] <= cap for h in set(fp.passages) & set(fps[3].passages))
                or set(enumerate(fp.bands)) & set(enumerate(fps[3].bands))}

    assert any(shared[h] == 3 for h in fps[3].passages)
    assert expected(2) != expected(3)  # the cap does leave one out
    memory = dedup.MemoryIndex()
    for i, fp in enumerate(fps[:3]):
        memory.add(i, i, fp)
    with db.connect(database_url) as conn:
        ids = {r["id"]: r["title"] for r in conn.execute("SELECT id, title FROM news.articles")}

        def found(cap: int, around=T0) -> set[str]:
            index = dedup_index.PgIndex(conn, around, cfg.dedup_window_days, cap)
            return {ids[m.article_id] for m in index.candidates(fps[3].bands, fps[3].passages)}

        for cap in (1, 2, 3):
            memory.passage_max_texts = cap
            in_memory = {f"own-{m.article_id}" for m in memory.candidates(fps[3].bands, fps[3].passages)}
            assert found(cap) == in_memory == expected(cap), cap
        assert found(3) == {"own-0", "own-1", "own-2"}
        assert found(100, around=T0 + timedelta(days=cfg.dedup_window_days + 1)) == set()  # out of the window
