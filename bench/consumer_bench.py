"""Benchmark of the consumer contract (news_api, migration 010), not a test.

    PYTHONPATH=plugins .venv/bin/python bench/consumer_bench.py [--articles 500000 | --quick]
        [--database-url URL] [--procs 2] [--runs 5] [--keep] [--reuse DBNAME] [--json OUT]

Builds a throwaway database (every migration applied), fills it with N synthetic
articles (default 500,000; --quick: 20,000) by COPY, then times the consumer queries of
the issue through the news_api views and functions: median of --runs runs after one
warm-up, on the client (execute + fetch all), and the main nodes of the plan (EXPLAIN
ANALYZE; inside news_api.search via auto_explain when the login may load it). Prints a
Markdown table.

Server: --database-url, else $NEWSFLOW_BENCH_DATABASE_URL, else 127.0.0.1:5432 (user
postgres) when it answers, else an embedded pgserver. The login must be a superuser:
the bulk load skips triggers and FK checks (session_replication_role = replica) and
derives what the triggers would have written (story_outlets, counts, one "created"
change row per story and article) in set-based statements afterwards.

Synthetic world (the design measured in the prototype): en 60% / de 25% / fr 15%, 50
publishers with 2 feeds each, 120 days; 30% of stories carried by 2-6 outlets (copy,
excerpt, update relations; some byte-identical outlets as entries only); 2% of articles
undated. Vocabularies: PostgreSQL's stop words at the top Zipf ranks, then up to 40,000
words of the Debian word lists (/usr/share/dict; synthetic syllable words when absent);
titles of 8-12 words, bodies of 300-700 words in paragraphs, one per line; half the
stories carry a two-word topic phrase; every story one or two rare names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from multiprocessing import Process
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from newsflow import db  # noqa: E402
from tools.pgscratch import scratch_database, server  # noqa: E402

DAYS = 120
LANGS = ("en", "de", "fr")
LANG_P = (0.60, 0.25, 0.15)
PUBS_PER_LANG = {"en": 30, "de": 12, "fr": 8}
DICT = {"en": "/usr/share/dict/american-english", "de": "/usr/share/dict/ngerman",
        "fr": "/usr/share/dict/french"}
STOP = {"en": "english", "de": "german", "fr": "french"}
SIZES = np.array([2, 3, 4, 5, 6])
SIZE_P = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
MULTI_P = 0.30
ARTICLES_PER_STORY = 1 + MULTI_P * float((SIZES * SIZE_P).sum() - 1)  # ~1.62


# --- the synthetic world ---------------------------------------------------------------------

def _stop_words(lang: str) -> list[str]:
    import pgserver

    path = Path(pgserver.__file__).parent / "pginstall/share/postgresql/tsearch_data" / f"{STOP[lang]}.stop"
    return list(dict.fromkeys(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()))


def _dictionary(lang: str, rng) -> list[str]:
    ok = re.compile(r"^[A-Za-zäöüÄÖÜßéèêëàâîïôûùçœæÉÈÀÇ]{3,14}$")
    if os.path.exists(DICT[lang]):
        return sorted({w.strip() for w in open(DICT[lang], encoding="utf-8") if ok.match(w.strip())})
    syl = ["ka", "lo", "mi", "ra", "te", "vo", "be", "su", "dri", "ga", "mo", "pre", "ta", "ul", "ze"]
    return sorted({"".join(rng.choice(syl, int(rng.integers(2, 5)))) + lang for _ in range(60_000)})


class Vocab:
    def __init__(self, lang: str, rng, n_content: int = 40_000):
        stops = _stop_words(lang)
        rng.shuffle(stops)
        words = [w for w in _dictionary(lang, rng) if w.lower() not in set(stops)]
        content = list(rng.choice(np.array(words, dtype=object), size=min(n_content, len(words)), replace=False))
        self.words = np.array(stops + content, dtype=object)
        p = 1.0 / (np.arange(1, len(self.words) + 1) + 2.7)
        self.cdf = np.cumsum(p / p.sum())
        mid = self.words[len(stops) + 100: len(stops) + 3000]
        self.phrases = [f"{a} {b}" for a, b in zip(rng.choice(mid, 2000), rng.choice(mid, 2000), strict=True)]
        pp = 1.0 / np.arange(1, 2001)
        self.phrase_cdf = np.cumsum(pp / pp.sum())

    def draw(self, rng, n: int) -> np.ndarray:
        return self.words[np.searchsorted(self.cdf, rng.random(n))]


class World:
    def __init__(self, seed: int = 42):
        rng = np.random.default_rng(seed)
        self.vocab = {lang: Vocab(lang, rng) for lang in LANGS}
        syl = np.array(["ka", "lo", "mi", "ra", "ten", "vor", "bel", "sun", "dri", "gal", "mok", "pre",
                        "tas", "ul", "zen", "quo", "fen", "dar", "wis", "jor", "nak", "sel", "tum", "vik"],
                       dtype=object)
        self.entities = np.array(sorted({"".join(r).capitalize() for r in rng.choice(syl, (200_000, 4))}),
                                 dtype=object)
        towns = {"en": ["Herald", "Courier", "Times", "Post", "Chronicle", "Gazette", "Tribune", "Observer",
                        "Ledger", "Wire"],
                 "de": ["Zeitung", "Rundschau", "Kurier", "Anzeiger", "Allgemeine", "Nachrichten"],
                 "fr": ["Quotidien", "Courrier", "Dépêche", "Journal"]}
        self.feeds, self.pub_feeds, self.publishers, self.pub_weight = [], {}, {}, {}
        fid = 0
        for lang in LANGS:
            names = []
            for i in range(PUBS_PER_LANG[lang]):
                name = f"{towns[lang][i % len(towns[lang])]} {lang.upper()}{i + 1:02d}"
                names.append(name)
                self.pub_feeds[name] = []
                for section in ("world", "business"):
                    fid += 1
                    slug = name.lower().replace(" ", "")
                    self.feeds.append((fid, f"https://{slug}.example/rss/{section}.xml", name,
                                       f"{name} {section}", lang))
                    self.pub_feeds[name].append(fid)
            w = 1.0 / np.arange(1, len(names) + 1) ** 0.7
            self.publishers[lang], self.pub_weight[lang] = names, w / w.sum()


def story_plan(seed: int, n_stories: int):
    rng = np.random.default_rng(seed + 1)
    lang = rng.choice(3, n_stories, p=LANG_P)
    multi = rng.random(n_stories) < MULTI_P
    return lang, np.where(multi, rng.choice(SIZES, n_stories, p=SIZE_P), 1)


def make_body(v: Vocab, rng, n_words: int, phrase: str | None, names: list[str]) -> str:
    toks = v.draw(rng, n_words)
    if phrase:
        a, b = phrase.split(" ")
        for pos in rng.integers(0, n_words - 1, rng.integers(1, 4)):
            toks[pos], toks[pos + 1] = a, b
    for name in names:
        for pos in rng.integers(0, n_words, rng.integers(1, 3)):
            toks[pos] = name
    pars, par, i, si, pi = [], [], 0, 0, 0
    sent_lens = rng.integers(8, 23, n_words // 8 + 2)
    par_lens = rng.integers(2, 6, n_words // 8 + 2)
    while i < n_words:
        k = int(sent_lens[si]); si += 1
        t = " ".join(toks[i:i + k]); i += k
        par.append(t[0].upper() + t[1:] + ".")
        if len(par) >= par_lens[pi]:
            pars.append(" ".join(par)); par = []; pi += 1
    if par:
        pars.append(" ".join(par))
    return "\n".join(pars)


def make_title(v: Vocab, rng, phrase, names) -> str:
    toks = list(v.draw(rng, int(rng.integers(8, 13))))
    if phrase and rng.random() < 0.5:
        toks[0:2] = phrase.split(" ")
    if names and rng.random() < 0.5:
        toks[-1] = names[0]
    t = " ".join(toks)
    return t[0].upper() + t[1:]


def generate(world: World, seed: int, lo: int, hi: int, plan, now: datetime, art_id0: int):
    """(story row, article rows, entry rows) for stories lo..hi-1 (story id = index + 1)."""
    lang_idx, size = plan
    rng = np.random.default_rng(seed * 1000 + lo)
    art_id = art_id0
    for s in range(lo, hi):
        sid, lang, k = s + 1, LANGS[lang_idx[s]], int(size[s])
        v = world.vocab[lang]
        pubs = list(rng.choice(world.publishers[lang], k, replace=False, p=world.pub_weight[lang]))
        phrase = v.phrases[int(np.searchsorted(v.phrase_cdf, rng.random()))] if rng.random() < 0.5 else None
        names = list(rng.choice(world.entities, int(rng.integers(1, 3))))
        base = make_body(v, rng, int(rng.integers(300, 701)), phrase, names)
        title = make_title(v, rng, phrase, names)
        t0 = now - timedelta(seconds=float(rng.random() * DAYS * 86400))
        arts, entries = [], []
        for j, pub in enumerate(pubs):
            aid = art_id; art_id += 1
            t = t0 if j == 0 else min(now, t0 + timedelta(hours=float(rng.exponential(3.0))))
            fetched = min(now, t + timedelta(minutes=float(rng.uniform(2, 30))))
            pub_at = None if rng.random() < 0.02 else t
            if j == 0:
                body, rel = base, "original"
            else:
                r, pars = rng.random(), base.split("\n")
                if r < 0.7:
                    rel = "copy"
                    if len(pars) > 3 and rng.random() < 0.5:
                        del pars[int(rng.integers(1, len(pars)))]
                    body = f"{pub} —\n" + "\n".join(pars) + f"\n© {pub}"
                elif r < 0.9:
                    rel, body = "excerpt", f"{pub} —\n" + "\n".join(pars[:3]) + f"\nVia {pubs[0]}"
                else:
                    rel, body = "update", base + "\n" + make_body(v, rng, 60, None, [])
            canon = f"https://{pub.lower().replace(' ', '')}.example/{lang}/{t:%Y/%m/%d}/story-{sid}-{aid}"
            url = canon + "?utm_source=rss"
            a_title = title if (j == 0 or rng.random() < 0.6) else make_title(v, rng, phrase, names)
            wc = body.count(" ") + body.count("\n") + 1
            digest = hashlib.sha256(body.encode()).hexdigest()
            arts.append((aid, url, canon, pub, pub, a_title, body, pub_at, lang, [f"Author {aid % 997}"],
                         None, wc, digest, "page", None, sid, rel,
                         None if j == 0 else 0.7, None if j == 0 else 0.9, None, fetched, fetched, fetched))
            feed = world.pub_feeds[pub][int(rng.integers(0, 2))]
            entries.append((feed, f"guid-{aid}", url, a_title, None, None, pub_at, "loaded", 1, aid,
                            fetched - timedelta(minutes=1), fetched))
        if (k > 1 and rng.random() < 0.05) or (k == 1 and rng.random() < 0.01):
            others = [p for p in world.publishers[lang] if p not in pubs]
            if others:  # an outlet with a byte-identical copy: an entry pointing at an existing article
                pub = others[int(rng.integers(0, len(others)))]
                a = arts[int(rng.integers(0, len(arts)))]
                entries.append((world.pub_feeds[pub][0], f"guid-x-{a[0]}",
                                f"https://{pub.lower().replace(' ', '')}.example/{lang}/copy-{a[0]}",
                                a[5], None, None, a[7], "loaded", 1, a[0], a[20], a[20]))
        first_pub = min((a[7] for a in arts if a[7] is not None), default=None)
        first_seen = min(a[20] for a in arts)
        story = (sid, arts[0][0], arts[0][0], pubs[0], "earliest", title, first_pub, len(arts),
                 first_seen, first_seen, first_seen)
        yield story, arts, entries


ART_COLS = ("id, url, canonical_url, publisher, site_name, title, body, published_at, language, authors, "
            "image_url, word_count, content_hash, body_source, fallback_reason, story_id, story_relation, "
            "story_jaccard, story_containment, wire_credit, fetched_at, created_at, updated_at")
ENTRY_COLS = ("feed_id, guid, link, title, summary, author, published_at, status, attempts, article_id, "
              "first_seen_at, updated_at")
STORY_COLS = ("id, representative_id, origin_article_id, origin_publisher, origin_basis, title, "
              "first_published_at, article_count, first_seen_at, created_at, updated_at")


def load_part(url: str, seed: int, n_stories: int, lo: int, hi: int, art_id0: int, now: datetime) -> None:
    world, plan = World(seed), story_plan(seed, n_stories)
    stories, entries = [], []
    with psycopg.connect(url) as conn:
        conn.execute("SET session_replication_role = replica")  # bulk load: no triggers, no FK checks
        with conn.cursor() as cur:
            with cur.copy(f"COPY news.articles ({ART_COLS}) FROM STDIN") as cp:
                for story, arts, ents in generate(world, seed, lo, hi, plan, now, art_id0):
                    for a in arts:
                        cp.write_row(a)
                    stories.append(story)
                    entries.extend(ents)
            with cur.copy(f"COPY news.stories ({STORY_COLS}) FROM STDIN") as cp:
                for st in stories:
                    cp.write_row(st)
            with cur.copy(f"COPY news.entries ({ENTRY_COLS}) FROM STDIN") as cp:
                for e in entries:
                    cp.write_row(e)
        conn.commit()


# What the triggers write at load time, derived in bulk (the same statements as the
# migration's backfill for existing rows).
DERIVE = [
    ("story_outlets", """
        INSERT INTO news.story_outlets (story_id, publisher, article_id, relation, url, published_at)
        SELECT DISTINCT ON (a.story_id, f.publisher) a.story_id, f.publisher, a.id,
               CASE WHEN f.publisher = a.publisher THEN a.story_relation ELSE 'identical' END,
               e.link, coalesce(e.published_at, a.published_at)
        FROM news.articles a JOIN news.entries e ON e.article_id = a.id JOIN news.feeds f ON f.id = e.feed_id
        WHERE a.story_id IS NOT NULL
        ORDER BY a.story_id, f.publisher, (f.publisher = a.publisher) DESC,
                 coalesce(e.published_at, a.published_at), e.id"""),
    ("story counts", """
        UPDATE news.stories s SET outlet_count = o.n
        FROM (SELECT story_id, count(*) AS n FROM news.story_outlets GROUP BY story_id) o
        WHERE s.id = o.story_id"""),
    ("change rows", """
        INSERT INTO news.changes (seq, entity, entity_id, kind, story_id, changed_at)
        SELECT nextval('news.changes_seq'), entity, id, 'created', story_id, at FROM (
            SELECT 'story' AS entity, id, NULL::bigint AS story_id, created_at AS at FROM news.stories
            UNION ALL SELECT 'article', id, story_id, created_at FROM news.articles ORDER BY at, entity DESC, id) x"""),
]


def build(url: str, n_articles: int, procs: int) -> dict[str, float]:
    timings: dict[str, float] = {}

    def timed(label, fn):
        t = time.perf_counter()
        fn()
        timings[label] = time.perf_counter() - t
        print(f"  {label:44s} {timings[label]:8.1f} s", file=sys.stderr, flush=True)

    seed = 42
    n_stories = max(10, int(round(n_articles / ARTICLES_PER_STORY)))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    world = World(seed)
    _, size = story_plan(seed, n_stories)
    print(f"building: {n_stories} stories, {int(size.sum())} articles", file=sys.stderr, flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX news.articles_search_idx")  # built after the load, as a restore does
        conn.execute("SET session_replication_role = replica")
        with conn.cursor().copy("COPY news.feeds (id, url, publisher, name, language) FROM STDIN") as cp:
            for f in world.feeds:
                cp.write_row(f)
    bounds = np.linspace(0, n_stories, procs + 1).astype(int)
    cum = np.concatenate([[0], np.cumsum(size)])

    def load():
        ps = [Process(target=load_part, args=(url, seed, n_stories, int(bounds[i]), int(bounds[i + 1]),
                                              int(cum[bounds[i]]) + 1, now)) for i in range(procs)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
            assert p.exitcode == 0, "a loader process failed"

    timed(f"generate + COPY ({procs} processes, tsvector computed)", load)
    with psycopg.connect(url, autocommit=True) as conn:
        for seq in ("articles", "stories", "feeds"):
            conn.execute(f"SELECT setval('news.{seq}_id_seq', (SELECT max(id) FROM news.{seq}))")
        for label, statement in DERIVE:
            timed(f"derive {label}", lambda s=statement: conn.execute(s))
        timed("GIN index on search_vector",
              lambda: conn.execute("CREATE INDEX articles_search_idx ON news.articles USING gin (search_vector)"))
        timed("VACUUM (ANALYZE)", lambda: conn.execute("VACUUM (ANALYZE)"))
    return timings


# --- the queries ---------------------------------------------------------------------------------

def parameters(conn) -> dict:
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    p = {
        "story": one("SELECT id FROM news.stories WHERE outlet_count >= 4 ORDER BY id LIMIT 1"),
        "publisher": one("SELECT publisher FROM news.articles GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
        "canonical": one("SELECT canonical_url FROM news.articles ORDER BY id LIMIT 1 OFFSET "
                         "(SELECT count(*) / 2 FROM news.articles)"),
        "link": one("SELECT link FROM news.entries WHERE guid LIKE 'guid-x-%' ORDER BY id LIMIT 1")
        or one("SELECT link FROM news.entries ORDER BY id DESC LIMIT 1"),
        "cursor": one("SELECT coalesce(max(seq), 0) / 2 FROM news.changes"),
    }
    # a common word (from the data), a rare one (a synthetic name: ~2 stories each), and a
    # mid-frequency topic phrase of the world (rank 20 of 2,000), searched in the last 7 days
    p["common"] = one("""SELECT word FROM ts_stat($$SELECT search_vector FROM news.articles
                         WHERE id % 100 = 0 AND language = 'en'$$)
                         WHERE length(word) > 4 ORDER BY ndoc DESC OFFSET 10 LIMIT 1""")
    world = World(42)
    p["rare"] = str(world.entities[1000])
    p["phrase"] = f'"{world.vocab["en"].phrases[20]}"'
    # issue 18: the most frequent topic phrase in the last 7 days, and a term OR a phrase
    # over many matches (like `ISIS OR "Islamic State"`)
    p["phrase_top"] = f'"{world.vocab["en"].phrases[0]}"'
    p["many"] = f'{p["common"]} OR "{world.vocab["en"].phrases[0]}"'
    return p


QUERIES = [
    ("latest_stories", "latest 50 stories with outlets",
     "SELECT id, title, sort_at, outlet_count, article_count, outlets FROM news_api.stories "
     "ORDER BY sort_at DESC LIMIT 50"),
    ("story_members", "one story's members",
     "SELECT * FROM news_api.story_members WHERE story_id = %(story)s ORDER BY published_at"),
    ("search_common", "ranked search, common term",
     "SELECT * FROM news_api.search(%(common)s)"),
    ("search_rare", "ranked search, rare term",
     "SELECT * FROM news_api.search(%(rare)s)"),
    ("search_phrase7", "phrase search, last 7 days",
     "SELECT * FROM news_api.search(%(phrase)s, since => now() - interval '7 days')"),
    ("search_phrase7_top", "frequent phrase, last 7 days",
     "SELECT * FROM news_api.search(%(phrase_top)s, since => now() - interval '7 days')"),
    ("search_many", "term OR phrase, many matches",
     "SELECT * FROM news_api.search(%(many)s)"),
    ("publisher_latest", "publisher's latest 50",
     "SELECT id, title, url, sort_at FROM news_api.articles WHERE publisher = %(publisher)s "
     "ORDER BY sort_at DESC LIMIT 50"),
    ("language_latest", "latest 50 in a language (de)",
     "SELECT id, title, url, sort_at FROM news_api.articles WHERE language = 'de' ORDER BY sort_at DESC LIMIT 50"),
    ("stories_24h", "stories of the last 24 h by outlet count",
     "SELECT id, title, outlet_count, sort_at, outlets FROM news_api.stories "
     "WHERE sort_at >= now() - interval '24 hours' ORDER BY outlet_count DESC, sort_at DESC LIMIT 50"),
    ("changes_read", "change feed: 1,000 rows after a cursor",
     "SELECT * FROM news_api.changes WHERE seq > %(cursor)s ORDER BY seq LIMIT 1000"),
    ("url_canonical", "URL look-up (canonical)",
     "SELECT id, title, story_id FROM news_api.articles WHERE canonical_url = %(canonical)s"),
    ("url_entry", "URL look-up (any known URL: entry link)",
     "SELECT a.id, a.title, a.story_id, u.kind FROM news_api.article_urls u "
     "JOIN news_api.articles a ON a.id = u.article_id WHERE u.url = %(link)s"),
    ("counts_30d", "counts per day per publisher, 30 days",
     "SELECT publisher, (published_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM news_api.articles "
     "WHERE published_at >= now() - interval '30 days' GROUP BY 1, 2 ORDER BY 1, 2"),
    ("stories_changed", "stories changed since (1,000)",
     "SELECT id, title, updated_at FROM news_api.stories WHERE updated_at > now() - interval '2 days' "
     "ORDER BY updated_at LIMIT 1000"),
]


def _nodes(plan: dict, out: list[str], depth: int = 0) -> None:
    if depth > 5 or len(out) >= 6:
        return
    name = plan["Node Type"]
    if plan.get("Index Name"):
        name += f" {plan['Index Name']}"
    elif plan.get("Relation Name"):
        name += f" {plan['Relation Name']}"
    out.append(name)
    for child in plan.get("Plans", []):
        _nodes(child, out, depth + 1)


def main_nodes(conn, sql: str, params: dict) -> str:
    if "news_api.search(" in sql:
        try:  # the function's own statement, via auto_explain (superuser)
            notices: list[str] = []
            conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            conn.execute("LOAD 'auto_explain'")
            conn.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; "
                         "SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json; "
                         "SET client_min_messages = log")
            conn.execute(sql, params).fetchall()
            conn.execute("SET client_min_messages = notice; SET auto_explain.log_min_duration = -1")
            for text in notices:
                start = text.find("{")
                if "WITH cand" in text and start >= 0:
                    out: list[str] = []
                    _nodes(json.loads(text[start:])["Plan"], out)
                    return " > ".join(out)
        except psycopg.Error:
            pass
        return "Function Scan news_api.search"
    row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0]
    out: list[str] = []
    _nodes(row[0]["Plan"], out)
    return " > ".join(out)


def measure(url: str, runs: int) -> list[dict]:
    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        p = parameters(conn)
        print(f"parameters: common {p['common']!r}, rare {p['rare']!r}, phrase {p['phrase']}", file=sys.stderr)
        for key, label, sql in QUERIES:
            conn.execute(sql, p).fetchall()  # warm-up
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                rows = conn.execute(sql, p).fetchall()
                times.append((time.perf_counter() - t) * 1000)
            matches = None
            if key.startswith("search"):
                term = p[{"search_common": "common", "search_rare": "rare", "search_phrase7": "phrase",
                          "search_phrase7_top": "phrase_top", "search_many": "many"}[key]]
                since = "now() - interval '7 days'" if key.startswith("search_phrase7") else "'-infinity'"
                matches = conn.execute(f"SELECT count(*) FROM news_api.articles WHERE sort_at >= {since} "
                                       "AND search_vector @@ news_api.search_query(%s)", (term,)).fetchone()[0]
            results.append({"key": key, "label": label, "median_ms": statistics.median(times),
                            "runs_ms": [round(t, 2) for t in times], "rows": len(rows), "matches": matches,
                            "plan": main_nodes(conn, sql, p)})
            print(f"  {label:44s} {statistics.median(times):8.2f} ms", file=sys.stderr, flush=True)
    return results


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("""SELECT (SELECT count(*) FROM news.articles) AS articles,
                                      (SELECT count(*) FROM news.stories) AS stories,
                                      (SELECT count(*) FROM news.changes) AS changes,
                                      pg_database_size(current_database()) AS bytes""").fetchone()
    return dict(zip(("articles", "stories", "changes", "bytes"), rows, strict=True))


def table(results: list[dict], info: dict) -> str:
    lines = [f"{info['articles']:,} articles, {info['stories']:,} stories, {info['changes']:,} change rows, "
             f"database {info['bytes'] / 2**30:.1f} GiB; median of {len(results[0]['runs_ms'])} runs",
             "", "| query | median | rows | plan (main nodes) |", "|---|---|---|---|"]
    for r in results:
        extra = f" ({r['matches']:,} matches)" if r["matches"] is not None else ""
        lines.append(f"| {r['label']}{extra} | {r['median_ms']:.1f} ms | {r['rows']} | {r['plan']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=500_000)
    ap.add_argument("--quick", action="store_true", help="20,000 articles (CI speed)")
    ap.add_argument("--database-url")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    ap.add_argument("--reuse", help="measure an existing database (a name kept with --keep) without building")
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.articles
    with server(args.database_url, env=("NEWSFLOW_BENCH_DATABASE_URL",), try_local=True) as srv:
        if args.reuse:
            url = make_conninfo(srv, dbname=args.reuse)
            db.upgrade(url)
            timings, results = {}, measure(url, args.runs)
            info = sizes(url)
        else:
            with scratch_database(srv, prefix="nf_consumer_bench", keep=args.keep) as url:
                timings = build(url, n, args.procs)
                results = measure(url, args.runs)
                info = sizes(url)
    print(table(results, info))
    if args.json:
        Path(args.json).write_text(json.dumps({"build_s": timings, "sizes": info, "queries": results}, indent=1))


if __name__ == "__main__":
    main()
