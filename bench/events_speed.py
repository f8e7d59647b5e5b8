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
        .venv/bin/python bench/events_speed.py --stories 100000 [--profile]

To compare two versions of the code in the same conditions: build once and keep it
(``--stories 1000000 --new 0 --keep``), then run each version with ``--database URL
--rollback`` (every new story is rolled back, so each run sees the same database), alternating.
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
            keys = sorted({f"e:{e}@{at.date().isoformat()}" for e in ents} | {f"n:{x}@{at.date().isoformat()}" for x in nums}
                          | {f"*@{at.date().isoformat()}"})  # the day's story count (events.STORIES_KEY)
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


class Profile:
    """Time spent in each storage call of the assignment (--profile): which round trip
    dominates. Wraps the module's functions; ``pipeline`` is the writes sent together."""

    CALLS = ("story_text", "key_counts", "candidates", "create_event", "event_in_use")

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {name: [] for name in self.CALLS}
        store = events.event_store
        for name in self.CALLS:  # (older versions of the code have other calls: compared runs)
            if hasattr(store, name):
                setattr(store, name, self._timed(name, getattr(store, name)))

    def _timed(self, name, fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms[name].append((time.perf_counter() - started) * 1000)
        return wrapper

    def report(self, stories: int) -> None:
        for name, runs in self.ms.items():
            if runs:
                print(f"  {name:14} {len(runs) / stories:4.1f} calls per story, median {statistics.median(runs):6.2f} ms, "
                      f"total {sum(runs) / stories:6.2f} ms per story")


def assign_new(url: str, args, rng: random.Random, names: list[str], settings: Settings) -> list[float]:
    """Place --new stories one by one, each in its own transaction with the write locks;
    rolled back with --rollback (the database stays as built: runs are comparable). One
    connection for all, as an ingestion worker keeps one (a new connection per story would
    also time the session's first planning of every statement); --connection-per-story for
    the harsher figure."""
    end = START + timedelta(days=args.stories / PER_DAY)
    costs, links = [], []
    shared = None if args.connection_per_story else db.connect(url)
    try:
        for k in range(args.new):
            conn = shared or db.connect(url)
            with conn.transaction(force_rollback=args.rollback):
                take_write_locks(conn, timeout=settings.lock_timeout)
                story_id = new_story(conn, rng, names, end - timedelta(hours=rng.random() * 48), k)
                started = time.perf_counter()
                placed = events.assign(conn, settings, story_id)
                costs.append((time.perf_counter() - started) * 1000)
                links.append(len(placed.links))
            if shared is None:
                conn.close()
    finally:
        if shared is not None:
            shared.close()
    costs.sort()
    print(f"assign, {args.new} new stories at {args.stories} stories: median {statistics.median(costs):.2f} ms, "
          f"p95 {costs[int(len(costs) * 0.95) - 1]:.2f} ms, max {costs[-1]:.2f} ms per story "
          f"(links accepted per story: mean {statistics.mean(links):.2f})")
    return costs


def explain_candidates(url: str, rng: random.Random, names: list[str], settings: Settings, stories: int) -> None:
    """EXPLAIN ANALYZE of the look-ups for one new story (rolled back)."""
    end = START + timedelta(days=stories / PER_DAY)
    with db.connect(url) as conn, conn.transaction(force_rollback=True):
        story_id = new_story(conn, rng, names, end - timedelta(hours=24), 10**6)
        row = events.event_store.story_text(conn, story_id)
        sig = events.story_signature(row, settings)
        window = timedelta(hours=settings.event_window_hours)
        days = events.days_between(row["published_at"] - window, row["published_at"] + window)
        captured = []
        execute = conn.execute

        def capture(query, params=None, **kw):
            captured.append((query, params))
            return execute(query, params, **kw)
        conn.execute = capture
        plain = sig.plain_keys()
        counts = events.event_store.key_counts(conn, [*plain, events.STORIES_KEY], days[0], days[-1])
        events.event_store.candidates(conn, story_id, events.usable_keys(plain, counts, settings.event_key_max_stories),
                                      days, sorted(sig.entities), settings.event_min_entities, sig.language,
                                      row["published_at"] - window, row["published_at"] + window,
                                      settings.event_candidates)
        conn.execute = execute
        for query, params in captured:
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
            print("candidate query plan:\n  " + "\n  ".join(r["QUERY PLAN"] for r in plan))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=200)
    ap.add_argument("--database", help="an already built database (built with the same --stories): no build")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database (its URL is printed)")
    ap.add_argument("--rollback", action="store_true", help="roll each new story back (repeatable runs)")
    ap.add_argument("--profile", action="store_true", help="time each storage call; EXPLAIN the look-up")
    ap.add_argument("--connection-per-story", action="store_true", help="a new connection for each new story")
    args = ap.parse_args()
    rng = random.Random(7)
    names = vocabulary(rng, 30_000)
    settings = Settings()
    profile = Profile() if args.profile else None
    with server(env=("NEWSFLOW_BENCH_DATABASE_URL",), try_local=True) as srv, \
            scratch_database(srv, prefix="nf_events", keep=args.keep) as scratch:
        url = args.database or scratch
        if not args.database:
            t0 = time.perf_counter()
            build(url, args.stories, rng, names)
            print(f"built {args.stories} placed stories in {time.perf_counter() - t0:.0f} s")
        if args.keep:
            print(f"database kept: {db.redact(url)}")
        rng = random.Random(11)  # the same new stories whether the database was built now or not
        if args.new:
            assign_new(url, args, rng, names, settings)
        if profile:
            profile.report(args.new)
            explain_candidates(url, rng, names, settings, args.stories)
        measure_rest(url, args, names, settings)
    return 0


def measure_rest(url: str, args, names: list[str], settings: Settings) -> None:
    end = START + timedelta(days=args.stories / PER_DAY)
    with db.connect(url) as conn:
        trips = []
        for _ in range(50):
            s0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            trips.append((time.perf_counter() - s0) * 1000)
        print(f"one database round trip (SELECT 1) on this machine now: median {statistics.median(trips):.2f} ms")
        common = conn.execute("SELECT count(*) AS n FROM news.event_keys WHERE stories * 7 > %s",
                              (settings.event_key_max_stories,)).fetchone()["n"]
        print(f"(keys over NEWSFLOW_EVENT_KEY_MAX_STORIES={settings.event_key_max_stories} in a 7-day window, "
              f"about: {common} key-days)")
        params = {"event": args.stories // 6, "now": end, "story": args.stories // 2}
        for label, sql in QUERIES:
            conn.execute(sql, params).fetchall()
            runs = []
            for _ in range(5):
                s = time.perf_counter()
                conn.execute(sql, params).fetchall()
                runs.append((time.perf_counter() - s) * 1000)
            print(f"{label:45} median {statistics.median(runs):.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
