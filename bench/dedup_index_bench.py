"""Benchmark of the PostgreSQL dedup index (newsflow.storage.dedup_index), not a test.

    PYTHONPATH=plugins .venv/bin/python bench/dedup_index_bench.py [--database-url URL]
        [--window 100000] [--big 1000000] [--articles 3000] [--noise 0,98] [--keep]

Targets (dedup issue): fingerprint + lookup + assign + insert >= 1,000 articles/s on one
core with 100k articles in the window; candidate lookup p95 <= 5 ms with 1M indexed.

Server: --database-url, else $NEWSFLOW_BENCH_DATABASE_URL, else 127.0.0.1:5432 (user
postgres) when it answers, else an embedded pgserver in a temporary directory. A
throwaway database is created (migrated with sql/*.sql) and dropped at the end.

Index population: synthetic rows generated server-side (INSERT ... SELECT
generate_series; band indexes dropped during the load and rebuilt after it, as a bulk
load does). Every row the index references exists (news.articles rows, each in its own
news.stories row, representative = itself); FK *checks* are skipped during the bulk
load only (session_replication_role = replica). Synthetic signatures: 680 shingle
hashes (a ~700-word article), 128 MinHash values, 64 band hashes, 45 passage-sketch
hashes (their GIN index built after the load), dates spread over the window. The measured articles go through the real code with every FK checked.

Measured texts: pseudo-word texts (no shared vocabulary with the index, so by default
no foreign LSH candidate), 300-1,500 words (mean ~700, the corpus mean is 684); one in
four is a copy (header added, tail trimmed) of an earlier one, so assign verifies and
joins. --noise K adds K foreign candidates per measured article (synthetic articles
sharing one band hash with it, each its own story, verified and rejected): the
evaluation measured 9.8 foreign candidates per 10k indexed articles on its hard set,
i.e. ~98 at 100k (docs/dedup.md).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from newsflow import db, dedup  # noqa: E402
from newsflow.config import Settings  # noqa: E402
from newsflow.stories import add_article  # noqa: E402
from newsflow.storage.locks import take_write_locks  # noqa: E402
from newsflow.models import SIGNATURE_SCHEME, Article  # noqa: E402
from newsflow.normalize import content_hash, word_count  # noqa: E402
from newsflow.storage import dedup_index  # noqa: E402

from benchlib import table  # noqa: E402
from tools.pgscratch import scratch_database, server  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
WINDOW_SECONDS = 7 * 86400  # synthetic rows are spread over 7 days, all inside the window
MID = T0 + timedelta(seconds=WINDOW_SECONDS // 2)  # the measured articles' date
SHINGLES = 680
PASSAGES = 45  # passage sketch values (dedup.passage_hashes) of a ~700-word text
BIG_FIRST = 20_000_001  # ids of the synthetic rows added for the 1M run (clear of the sequences)


# --------------------------------------------------------------- population

def band_index_ddl(conn) -> list[tuple[str, str, bool]]:
    """(name, definition, is_constraint) of every index on news.dedup_bands."""
    rows = conn.execute("""
        SELECT i.relname, pg_get_indexdef(i.oid), c.conname IS NOT NULL
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = i.oid
        WHERE x.indrelid = 'news.dedup_bands'::regclass ORDER BY 1""").fetchall()
    return [(name, ddl, is_con) for name, ddl, is_con in rows]


def populate(url: str, first: int, last: int) -> dict[str, float]:
    """Synthetic indexed articles first..last (ids), as described in the module doc."""
    t: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("SET session_replication_role = replica")
        except psycopg.Error:
            print("  (not superuser: FK checks stay on during the bulk load)")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")
        at = f"timestamptz '{T0.isoformat()}' + (g % {WINDOW_SECONDS}) * interval '1 second'"
        span = f"generate_series({first}::bigint, {last}::bigint) g"

        def step(label: str, sql: str) -> None:
            start = time.perf_counter()
            conn.execute(sql)
            t[label] = t.get(label, 0.0) + time.perf_counter() - start

        step("articles", f"""INSERT INTO news.stories (id, representative_id, origin_article_id,
                                 article_count, first_published_at)
                             SELECT g, g, g, 1, {at} FROM {span}""")
        step("articles", f"""INSERT INTO news.articles (id, url, canonical_url, publisher, body,
                                 published_at, word_count, content_hash, body_source, story_id,
                                 story_relation)
                             SELECT g, 'https://synthetic.example/' || g, 'https://synthetic.example/' || g,
                                 'Synthetic', 'synthetic', {at}, 700, md5(g::text), 'page', g, 'original'
                             FROM {span}""")
        passage_index = conn.execute("SELECT pg_get_indexdef('news.dedup_signatures_passages_idx'::regclass)"
                                     ).fetchone()[0]  # as the migration made it (fastupdate off)
        conn.execute("DROP INDEX news.dedup_signatures_passages_idx")
        step("signatures", f"""INSERT INTO news.dedup_signatures (article_id, published_at, shingles, minhash,
                                                                 scheme, bands, passages)
                               SELECT g, {at},
                                 ARRAY(SELECT hashint8extended(g * 1000 + k, 7) FROM generate_series(1, {SHINGLES}) k ORDER BY 1),
                                 ARRAY(SELECT abs(hashint8extended(g * 1000 + k, 8)) FROM generate_series(1, 128) k),
                                 {SIGNATURE_SCHEME},
                                 ARRAY(SELECT hashint8extended(g * 64 + b, 42) FROM generate_series(0, 63) b),
                                 ARRAY(SELECT hashint8extended(g * 1000 + k, 9) FROM generate_series(1, {PASSAGES}) k ORDER BY 1)
                               FROM {span}""")
        step("passage index", passage_index)
        ddl = band_index_ddl(conn)
        for name, _, is_con in ddl:
            conn.execute(f"ALTER TABLE news.dedup_bands DROP CONSTRAINT {name}" if is_con
                         else f"DROP INDEX news.{name}")
        step("bands", f"""INSERT INTO news.dedup_bands (band, hash, article_id, published_at)
                          SELECT b, hashint8extended(g * 64 + b, 42), g, {at}
                          FROM {span}, generate_series(0, 63) b""")
        for name, definition, is_con in ddl:
            step("band indexes", definition)
            if is_con:
                conn.execute(f"ALTER TABLE news.dedup_bands ADD CONSTRAINT {name} "
                             f"PRIMARY KEY USING INDEX {name}")
        for seq, table in (("stories_id_seq", "stories"), ("articles_id_seq", "articles")):
            conn.execute(f"SELECT setval('news.{seq}', (SELECT max(id) FROM news.{table}))")
        step("analyze", "VACUUM ANALYZE news.articles, news.stories, news.dedup_signatures, news.dedup_bands")
    return t


# -------------------------------------------------------------------- texts


class Texts:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        syl = ["ka", "lo", "mi", "ner", "tu", "sa", "vel", "dor", "pi", "an", "reth", "ul", "zo"]
        self.vocab = ["".join(self.rng.choice(syl) for _ in range(self.rng.randint(1, 4)))
                      for _ in range(20000)]
        self.made: list[str] = []

    def next(self) -> str:
        rng = self.rng
        if self.made and rng.random() < 0.25:  # a copy of an earlier article
            base = rng.choice(self.made[-200:]).split(" ")
            cut = int(len(base) * rng.uniform(0.75, 0.95))
            text = "Republished with permission from our partners. " + " ".join(base[:cut])
        else:
            words = max(300, min(1500, int(rng.lognormvariate(6.45, 0.45))))
            text = " ".join(rng.choice(self.vocab) for _ in range(words))
        self.made.append(text)
        return text


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    s = sorted(ms)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return pick(0.50), pick(0.95), pick(0.99)


# ---------------------------------------------------------------- measuring


def add_noise(conn, fps: list[dedup.Fingerprint], per_article: int, id_range: tuple[int, int],
              rng: random.Random) -> None:
    """``per_article`` synthetic indexed articles share one band hash with each fp."""
    if not per_article:
        return
    with conn.cursor() as cur, cur.copy(
            "COPY news.dedup_bands (band, hash, article_id, published_at) FROM STDIN") as copy:
        done = set()
        for fp in fps:
            for article_id in rng.sample(range(*id_range), per_article):
                band = rng.randrange(len(fp.bands))
                if (band, fp.bands[band], article_id) not in done:  # copies share bands
                    done.add((band, fp.bands[band], article_id))
                    copy.write_row((band, fp.bands[band], article_id, MID))
    conn.execute("ANALYZE news.dedup_bands")


def _articles(conn, texts: list[str], first_id: int) -> None:
    """Article rows (each its own story) for the measured texts, outside the timing."""
    with conn.cursor() as cur, cur.copy("""COPY news.stories (id, representative_id,
            article_count) FROM STDIN""") as copy:
        for i in range(len(texts)):
            copy.write_row((first_id + i, None, 1))
    with conn.cursor() as cur, cur.copy("""COPY news.articles (id, url, canonical_url,
            publisher, body, published_at, word_count, content_hash, body_source, story_id,
            story_relation) FROM STDIN""") as copy:
        for i, text in enumerate(texts):
            u = f"https://bench.example/{first_id + i}"
            copy.write_row((first_id + i, u, u, "Bench", text, MID, word_count(text),
                            f"bench-{first_id + i}", "page", first_id + i, "original"))
    conn.execute("UPDATE news.stories SET representative_id = id WHERE id >= %s", (first_id,))


def index_path(url: str, settings: Settings, texts: list[str], first_id: int) -> dict:
    """The dedup write path as ingestion's write phase runs it, batch by batch
    (``batch_size`` texts): fingerprint each text, look all of them up at once
    (BatchIndex: one query), verify and assign each (dedup.assign; texts placed earlier
    in the batch are found in memory), write the batch's index rows (one COPY, one
    INSERT). Times per article; the article rows themselves are made beforehand."""
    with psycopg.connect(url, autocommit=True) as conn:
        _articles(conn, texts, first_id)
    steps = {"fingerprint": [], "candidates": [], "assign": [], "add": []}
    joined = candidates_seen = 0
    with db.connect(url) as conn:
        start = time.perf_counter()
        for b in range(0, len(texts), settings.batch_size):
            ids = range(b, min(b + settings.batch_size, len(texts)))
            with conn.transaction():
                t0 = time.perf_counter()
                fps = {i: dedup.fingerprint(texts[i], settings) for i in ids}
                t1 = time.perf_counter()
                index = dedup_index.BatchIndex(conn, settings.dedup_window_days, [(fps[i], MID) for i in ids])
                t2 = time.perf_counter()
                for i in ids:
                    found = index.candidates(fps[i].bands, fps[i].passages)
                    assignment = dedup.assign(fps[i], index, settings)
                    story_id = assignment.story_id or first_id + i
                    index.stage(first_id + i, story_id, fps[i], MID, representative=assignment.story_id is None)
                    joined += assignment.story_id is not None
                    candidates_seen += len(found)
                t3 = time.perf_counter()
                index.flush()
                t4 = time.perf_counter()
            for name, a, z in (("fingerprint", t0, t1), ("candidates", t1, t2), ("assign", t2, t3),
                               ("add", t3, t4)):
                steps[name] += [(z - a) * 1e3 / len(ids)] * len(ids)
        total = time.perf_counter() - start
    return {"rate": len(texts) / total, "steps": steps, "joined": joined,
            "candidates": candidates_seen / len(texts)}


def one_at_a_time(url: str, settings: Settings, texts: list[str], first_id: int) -> dict:
    """The same path, one text at a time (PgIndex, written at once): the rebuild's way,
    and what the batch path is compared with."""
    with psycopg.connect(url, autocommit=True) as conn:
        _articles(conn, texts, first_id)
    steps = {"fingerprint": [], "candidates": [], "assign": [], "add": []}
    with db.connect(url) as conn:
        start = time.perf_counter()
        for b in range(0, len(texts), settings.batch_size):
            with conn.transaction():
                for i in range(b, min(b + settings.batch_size, len(texts))):
                    t0 = time.perf_counter()
                    fp = dedup.fingerprint(texts[i], settings)
                    t1 = time.perf_counter()
                    index = dedup_index.PgIndex(conn, MID, settings.dedup_window_days)
                    found = index.candidates(fp.bands, fp.passages)
                    t2 = time.perf_counter()
                    dedup.assign(fp, _Replay(index, found), settings)
                    t3 = time.perf_counter()
                    dedup_index.add_many(conn, [(first_id + i, fp, MID)])
                    t4 = time.perf_counter()
                    for name, a, z in (("fingerprint", t0, t1), ("candidates", t1, t2),
                                       ("assign", t2, t3), ("add", t3, t4)):
                        steps[name].append((z - a) * 1e3)
        total = time.perf_counter() - start
    return {"rate": len(texts) / total, "steps": steps}


class _Replay:
    """Hands assign the candidates already fetched (so the lookup is timed apart);
    representative() goes to the database as usual."""

    def __init__(self, index, found):
        self.index, self.found = index, found

    def candidates(self, bands, passages=()):
        return self.found

    def representative(self, story_id):
        return self.index.representative(story_id)

    def order(self, story_id):
        return self.index.order(story_id)


def full_load(url: str, settings: Settings, texts: list[str], tag: str) -> float:
    """stories.add_article (article insert, story, index, story refresh), batches of
    batch_size under the write locks, as ingest.write does."""
    articles, seen = [], set()
    for i, text in enumerate(texts):
        if content_hash(text) in seen:  # an exact duplicate never reaches add_article
            continue
        seen.add(content_hash(text))
        u = f"https://{tag}.example/{i}"
        articles.append(Article(url=u, canonical_url=u, publisher="Bench", title=f"t{i}", body=text,
                                published_at=MID + timedelta(seconds=i), language="en", authors=[],
                                image_url=None, site_name=None, content_hash=content_hash(text),
                                word_count=word_count(text), body_source="page"))
    with db.connect(url) as conn:
        start = time.perf_counter()
        for b in range(0, len(articles), settings.batch_size):
            batch = articles[b:b + settings.batch_size]
            with conn.transaction():
                take_write_locks(conn, timeout=settings.lock_timeout)
                for a in batch:  # the extraction workers fingerprint page texts
                    a.fingerprint = dedup.fingerprint(a.body, settings)
                index = dedup_index.BatchIndex(conn, settings.dedup_window_days,
                                               [(a.fingerprint, a.published_at) for a in batch])
                for a in batch:
                    add_article(conn, settings, a, index)
                index.flush()
        return len(articles) / (time.perf_counter() - start)


def lookups(url: str, settings: Settings, n: int, ids: Sequence[int], rng: random.Random) -> dict:
    """PgIndex.candidates latency: half misses (random band hashes), half hits (the
    bands of an indexed article: one candidate, with its shingles)."""
    with db.connect(url, autocommit=True) as conn:
        hit_ids = rng.sample(ids, n // 2)
        # a signature row carries its band hashes (band rows have no article index)
        hits = [list(conn.execute("SELECT bands FROM news.dedup_signatures WHERE article_id = %s",
                                  (i,)).fetchone()["bands"]) for i in hit_ids]
        misses = [[rng.getrandbits(64) - (1 << 63) for _ in range(settings.dedup_bands)]
                  for _ in range(n - n // 2)]
        queries = hits + misses
        rng.shuffle(queries)
        index = dedup_index.PgIndex(conn, MID, settings.dedup_window_days)
        for q in queries[:100]:  # warm-up
            index.candidates(q)
        ms = []
        for q in queries:
            t = time.perf_counter()
            index.candidates(q)
            ms.append((time.perf_counter() - t) * 1e3)
    return {"p": percentiles(ms), "mean": statistics.mean(ms)}


def sizes(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("""SELECT pg_size_pretty(pg_total_relation_size('news.dedup_bands')),
                                     pg_size_pretty(pg_total_relation_size('news.dedup_signatures')),
                                     pg_size_pretty(pg_database_size(current_database()))""").fetchone()
    return f"dedup_bands {row[0]}, dedup_signatures {row[1]}, database {row[2]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url")
    p.add_argument("--window", type=int, default=100_000, help="indexed articles for the throughput run")
    p.add_argument("--big", type=int, default=1_000_000, help="indexed articles for the lookup run")
    p.add_argument("--articles", type=int, default=3000, help="measured articles per throughput run")
    p.add_argument("--noise", default="0,98", help="foreign candidates per article, comma-separated runs")
    p.add_argument("--lookups", type=int, default=4000)
    p.add_argument("--keep", action="store_true", help="keep the database")
    args = p.parse_args(argv)
    settings = Settings()
    rng = random.Random(20241120)

    with server(args.database_url, env=("NEWSFLOW_BENCH_DATABASE_URL",), try_local=True) as admin_url, \
            scratch_database(admin_url, prefix="nf_bench", keep=args.keep) as url:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            version = admin.execute("SHOW server_version").fetchone()[0]
        print(f"database on PostgreSQL {version} ({db.redact(admin_url)}), "
              f"{os.cpu_count()} cores; bands {settings.dedup_bands}x{settings.dedup_rows}, "
              f"batch {settings.batch_size}")
        rows: list[tuple[str, str]] = []
        start = time.perf_counter()
        t = populate(url, 1, args.window)
        took = time.perf_counter() - start
        print(f"populated {args.window:,} synthetic indexed articles in {took:.1f}s "
              + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()) + f"; {sizes(url)}")
        rows.append((f"populate {args.window:,} (bulk, server-side)", f"{took:.1f} s"))

        next_id = 10_000_000
        for noise in [int(x) for x in args.noise.split(",")]:
            texts_gen = Texts(seed=noise + 1)
            texts = [texts_gen.next() for _ in range(args.articles)]
            if noise:
                with psycopg.connect(url, autocommit=True) as conn:
                    fps = [dedup.fingerprint(x, settings) for x in texts]
                    add_noise(conn, fps, noise, (1, args.window + 1), rng)
            r = index_path(url, settings, texts, next_id)
            next_id += args.articles
            words = statistics.mean(len(x.split()) for x in texts)
            step_means = {k: statistics.mean(v) for k, v in r["steps"].items()}
            print(f"index path, {args.window:,} indexed, noise {noise}: {r['rate']:,.0f} articles/s "
                  f"({words:.0f} words avg, {r['candidates']:.1f} candidates/article, "
                  f"{r['joined']} joined); mean ms: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in step_means.items()))
            rows.append((f"dedup write path (batches of {settings.batch_size}), {args.window:,} indexed, "
                         f"{noise} foreign cand./article", f"{r['rate']:,.0f} articles/s"))
            for k, v in step_means.items():
                rows.append((f"  {k} per article (noise {noise})", f"mean {v:.3f} ms"))
            if not noise:  # the same texts' path one at a time, for comparison
                r = one_at_a_time(url, settings, texts, next_id)
                next_id += args.articles
                rows.append((f"the same one text at a time (PgIndex), {args.window:,} indexed",
                             f"{r['rate']:,.0f} articles/s"))
        texts_gen = Texts(seed=777)
        rate = full_load(url, settings, [texts_gen.next() for _ in range(args.articles)], "full")
        print(f"add_article (full, incl. article insert and story refresh): {rate:,.0f} articles/s")
        rows.append((f"stories.add_article with a BatchIndex (article row, story, index), {args.window:,} indexed",
                     f"{rate:,.0f} articles/s"))

        if args.big > args.window:
            start = time.perf_counter()
            t = populate(url, BIG_FIRST, BIG_FIRST + args.big - args.window - 1)
            took = time.perf_counter() - start
            print(f"populated up to {args.big:,} in {took:.1f}s "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()) + f"; {sizes(url)}")
            rows.append((f"populate {args.window:,} -> {args.big:,} (bulk, server-side)", f"{took:.1f} s"))
        big = max(args.big, args.window)
        ids = range(1, args.window + 1)
        if args.big > args.window:
            ids = list(ids) + list(range(BIG_FIRST, BIG_FIRST + args.big - args.window))
        r = lookups(url, settings, args.lookups, ids, rng)
        p50, p95, p99 = r["p"]
        rows.append((f"PgIndex.candidates, {big:,} indexed ({args.lookups} lookups, half hits)",
                     f"p50 {p50:.2f} / p95 {p95:.2f} / p99 {p99:.2f} ms"))
        texts_gen = Texts(seed=778)
        texts = [texts_gen.next() for _ in range(1000)]
        r = index_path(url, settings, texts, next_id)
        rows.append((f"dedup write path (batches of {settings.batch_size}), {big:,} indexed",
                     f"{r['rate']:,.0f} articles/s"))
        rows.append((f"  index rows written per article, {big:,} indexed",
                     f"mean {statistics.mean(r['steps']['add']):.3f} ms"))
        print(f"index sizes: {sizes(url)}")
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
