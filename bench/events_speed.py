"""Event assignment cost per story, and the consumers' event queries, at scale.

Builds a scratch database (tools/pgscratch) holding N placed stories (default 100,000;
--stories 1000000) spread at a constant density of 2,740 stories a day (1M stories = one
year), each with a signature of 8 entities and 3 numbers drawn from Zipf-like vocabularies
(a few names are everywhere, most are rare, as in news), grouped in events of 1-6 stories
with 1-12 outlets. Then loads --new (default 200) new stories with real-looking texts built
from the same vocabularies and times ``newsflow.events.assign`` for each, in a transaction
holding the write locks, as ingestion does; and times the docs/consumers.md event queries.
Synthetic texts: this measures cost, not quality (bench/events_eval.py does quality).

    NEWSFLOW_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/events_speed.py --stories 100000
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from newsflow import db, events  # noqa: E402
from newsflow.config import Settings  # noqa: E402
from newsflow.storage.locks import take_write_locks  # noqa: E402
from tools.pgscratch import scratch_database, server  # noqa: E402

PER_DAY = 2740
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SYLLABLES = ["ka", "lo", "mer", "ta", "vin", "dro", "sel", "ra", "gu", "pen", "zo", "bri", "han", "tes", "mu"]


def vocabulary(rng: random.Random, n: int) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5))).capitalize())
    return sorted(words)


def zipf(rng: random.Random, n: int) -> int:
    """An index in [0, n) with probability ~ 1/(i+1) (log-uniform)."""
    return min(n - 1, int(math.exp(rng.random() * math.log(n + 1))) - 1)


def build(url: str, n: int, rng: random.Random, names: list[str]) -> None:
    with db.transaction(url) as conn:
        conn.execute("""INSERT INTO news.stories (title, first_published_at)
                        SELECT 'background story ' || g, %s + g * interval '1 day' / %s
                        FROM generate_series(1, %s) g""", (START, PER_DAY, n))
        conn.execute("""INSERT INTO news.events (id, story_count, outlet_count, outlets, languages, label,
                                                 first_published_at, last_published_at)
                        SELECT g, 1 + g %% 6, 1 + g %% 12, ARRAY['Outlet ' || (g %% 40), 'Outlet ' || (g %% 7)],
                               '{en}', 'event ' || g, %s + g * 3 * interval '1 day' / %s,
                               %s + g * 3 * interval '1 day' / %s + interval '5 hours'
                        FROM generate_series(1, %s) g""", (START, PER_DAY, START, PER_DAY, n // 3 + 1))
        conn.execute("SELECT setval('news.events_id_seq', %s)", (n // 3 + 2,))
        ids = [r["id"] for r in conn.execute("SELECT id FROM news.stories ORDER BY id")]
        buf = io.StringIO()
        for k, story_id in enumerate(ids):
            ents = {names[zipf(rng, len(names))].lower() for _ in range(8)}
            nums = {str(10 + zipf(rng, 5000)) for _ in range(3)}
            at = START + timedelta(days=(k + 1) / PER_DAY)
            keys = sorted({f"e:{e}@{at.date().isoformat()}" for e in ents} | {f"n:{x}@{at.date().isoformat()}" for x in nums})
            arr = lambda xs: "{" + ",".join('"' + x + '"' for x in sorted(xs)) + "}"  # noqa: E731
            buf.write(f"{story_id}\t{k // 3 + 1}\t{at.isoformat()}\ten\t{arr(ents)}\t{arr(ents)}\t{arr(nums)}\t{arr(keys)}\n")
        buf.seek(0)
        with conn.cursor().copy("COPY news.event_stories (story_id, event_id, published_at, language, terms, "
                                "entities, numbers, keys) FROM STDIN") as copy:
            copy.write(buf.read())
        conn.execute("""INSERT INTO news.event_keys (key, day, stories)
                        SELECT split_part(k, '@', 1), split_part(k, '@', 2)::date, count(*)
                        FROM news.event_stories, unnest(keys) k GROUP BY 1, 2""")
    with db.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE news.event_stories")
        conn.execute("VACUUM ANALYZE news.events")


def new_story(conn, rng: random.Random, names: list[str], at: datetime, k: int) -> int:
    ents = [names[zipf(rng, len(names))] + " " + names[zipf(rng, len(names))] for _ in range(4)]
    nums = [str(10 + zipf(rng, 5000)) for _ in range(3)]
    title = f"{ents[0]} meets {ents[1]} over {nums[0]} disputed claims"
    body = (f"{ents[0]} said on Tuesday that {nums[1]} people had signed, and {ents[2]} disagreed.\n"
            f"The talks in {ents[3]} lasted {nums[2]} minutes, officials said.")
    story_id = conn.execute("INSERT INTO news.stories (title, first_published_at) VALUES (%s, %s) RETURNING id",
                            (title, at)).fetchone()["id"]
    article = conn.execute("""
        INSERT INTO news.articles (url, canonical_url, publisher, title, body, published_at, language, word_count,
                                   content_hash, body_source, story_id, story_relation)
        VALUES (%s, %s, 'Bench', %s, %s, %s, 'en', 30, %s, 'page', %s, 'original') RETURNING id""",
        (f"https://bench.test/{k}", f"https://bench.test/{k}", title, body, at, f"h{k}", story_id)).fetchone()["id"]
    conn.execute("UPDATE news.stories SET representative_id = %s WHERE id = %s", (article, story_id))
    return story_id


QUERIES = [
    ("all coverage of an event, in order",
     "SELECT * FROM news_api.event_stories WHERE event_id = %(event)s ORDER BY published_at"),
    ("events covered by >= 5 outlets in 24 h",
     "SELECT id, label, outlet_count FROM news_api.events WHERE last_published_at >= %(now)s - interval '24 hours' "
     "AND outlet_count >= 5 ORDER BY outlet_count DESC LIMIT 50"),
    ("latest events an outlet covered",
     "SELECT id, label FROM news_api.events WHERE outlets @> ARRAY['Outlet 3'] "
     "ORDER BY last_published_at DESC LIMIT 50"),
    ("a story's event",
     "SELECT event_id FROM news_api.stories WHERE id = %(story)s"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(7)
    names = vocabulary(rng, 30_000)
    settings = Settings()
    with server(env=("NEWSFLOW_BENCH_DATABASE_URL",), try_local=True) as srv, scratch_database(srv, prefix="nf_events") as url:
        t0 = time.perf_counter()
        build(url, args.stories, rng, names)
        print(f"built {args.stories} placed stories in {time.perf_counter() - t0:.0f} s")
        end = START + timedelta(days=args.stories / PER_DAY)
        costs, candidates = [], []
        for k in range(args.new):
            with db.transaction(url) as conn:
                take_write_locks(conn, timeout=settings.lock_timeout)
                story_id = new_story(conn, rng, names, end - timedelta(hours=rng.random() * 48), k)
                started = time.perf_counter()
                placed = events.assign(conn, settings, story_id)
                costs.append((time.perf_counter() - started) * 1000)
                candidates.append(len(placed.links))
        costs.sort()
        with db.connect(url) as conn:
            trips = []
            for _ in range(50):
                s0 = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                trips.append((time.perf_counter() - s0) * 1000)
        print(f"one database round trip (SELECT 1) on this machine now: median {statistics.median(trips):.2f} ms; "
              f"an assignment makes about 10")
        with db.connect(url) as conn:
            common = conn.execute("SELECT count(*) AS n FROM news.event_keys WHERE stories * 7 > %s",
                                  (settings.event_key_max_stories,)).fetchone()["n"]
        print(f"(keys over NEWSFLOW_EVENT_KEY_MAX_STORIES={settings.event_key_max_stories} in a 7-day window, "
              f"about: {common} key-days)")
        print(f"assign, {args.new} new stories at {args.stories} stories: median {statistics.median(costs):.2f} ms, "
              f"p95 {costs[int(len(costs) * 0.95) - 1]:.2f} ms, max {costs[-1]:.2f} ms per story "
              f"(links accepted per story: mean {statistics.mean(candidates):.2f})")
        with db.connect(url) as conn:
            plan = conn.execute("EXPLAIN (ANALYZE, FORMAT TEXT) SELECT es.story_id FROM news.event_stories es "
                                "WHERE es.keys && %s::text[] AND es.language = 'en' AND es.published_at BETWEEN %s AND %s",
                                ([f"{k}@{d.isoformat()}" for k in ("e:" + names[0].lower(), "e:" + names[5].lower(), "n:11")
                                  for d in events.days_between(end - timedelta(hours=72), end + timedelta(hours=72))],
                                 end - timedelta(hours=72), end + timedelta(hours=72))).fetchall()
            print("candidate look-up plan (common keys):\n  " + "\n  ".join(r["QUERY PLAN"] for r in plan[:8]))
            params = {"event": args.stories // 6, "now": end, "story": args.stories // 2}
            for label, sql in QUERIES:
                conn.execute(sql, params).fetchall()
                runs = []
                for _ in range(5):
                    s = time.perf_counter()
                    conn.execute(sql, params).fetchall()
                    runs.append((time.perf_counter() - s) * 1000)
                print(f"{label:45} median {statistics.median(runs):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
