"""The console's queries at scale: 10,000 feeds and 1M articles, bulk-generated with SQL.

    PYTHONPATH=plugins:. .venv/bin/python bench/console_bench.py [--articles 1000000] [--feeds 10000]
                                                                 [--rounds 7] [--keep] [--explain]

Uses NEWSFLOW_BENCH_DATABASE_URL, else the PostgreSQL at 127.0.0.1:5432, else an embedded
server; a scratch database is created and dropped (``--keep`` keeps it). Every query is the
``newsflow.storage`` function the console calls for that page, timed ``--rounds`` times
after one warm-up; the median is printed (milliseconds). A benchmark, not a test.

The generated world: feeds of 2,000 publishers, 3% failing, 2% disabled, a few deferred,
quiet ones; ~70% of articles a story of their own, the rest copies joining the first
tenth of the stories (syndication); one loaded entry per article spread over 90 days, plus
failed and pending entries; six polls a day per feed for 14 days in the fetch log; an
audit trail.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins"), str(Path(__file__).resolve().parents[1])]

from newsflow import db  # noqa: E402
from newsflow.config import Settings  # noqa: E402
from newsflow.models import StaleRule  # noqa: E402
from newsflow.storage import articles, audit, entries, feed_rhythm, feeds, fetch_log, run_counts, stories  # noqa: E402
from tools.pgscratch import scratch_database, server  # noqa: E402

WORDS = ("bank rate canada cuts tariffs election storm coalition fighters syria iraq markets oil "
         "prices energy fusion power station football rovers city league court ruling climate summit "
         "talks trade deal strike union rail airport floods warning minister budget tax health hospital "
         "vaccine school teachers housing rents police inquiry report glasses translate launch chips "
         "shares profits jobs growth inflation ukraine europe china india africa brazil mexico").split()


def generate(url: str, n_feeds: int, n_articles: int) -> dict[str, float]:
    """Fill the scratch database; returns seconds per step."""
    took: dict[str, float] = {}
    words = "ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "]"  # constants of this file
    n_stories = int(n_articles * 0.7)
    steps = [
        ("feeds", f"""
            INSERT INTO news.feeds (url, declared_url, publisher, name, enabled, disabled_reason, disabled_by,
                last_status, last_polled_at, next_poll_at, effective_interval, consecutive_errors,
                last_error, created_at)
            SELECT u, u, 'Publisher ' || (i % 2000), 'Feed ' || i || ' - ' || ({words})[1 + i % {len(WORDS)}],
                   i % 50 <> 0, CASE WHEN i % 50 = 0 THEN 'HTTP 410 Gone: the publisher removed this feed' END,
                   NULL,
                   CASE WHEN i % 33 = 0 THEN 500 WHEN i % 7 = 0 THEN 304 ELSE 200 END,
                   now() - make_interval(secs => i % 900),
                   CASE WHEN i % 33 = 0 THEN now() + interval '20 minutes'
                        WHEN i % 97 = 0 THEN now() + interval '50 minutes'          -- deferred by a host
                        ELSE now() - make_interval(secs => i % 900) + interval '15 minutes' END,
                   900, CASE WHEN i % 33 = 0 THEN 1 + i % 9 ELSE 0 END,
                   CASE WHEN i % 33 = 0 THEN 'HTTP 500' END, now() - interval '120 days'
            FROM generate_series(1, {n_feeds}) i, LATERAL (SELECT 'https://p' || (i % 2000) || '.example/feed/'
                                                          || i || '.xml' AS u) x"""),
        ("stories", f"""
            INSERT INTO news.stories (title, first_published_at, article_count, origin_publisher, origin_basis)
            SELECT initcap(t.title), now() - make_interval(secs => (i::float / {n_stories} * 90 * 86400)::int),
                   1, 'Publisher ' || (i % 2000), 'earliest'
            FROM generate_series(1, {n_stories}) i,
                 LATERAL (SELECT string_agg(({words})[1 + ((i * 7 + g * 13 + i / 97) % {len(WORDS)})], ' ') AS title
                          FROM generate_series(1, 7) g) t"""),
        ("articles", f"""
            INSERT INTO news.articles (url, canonical_url, publisher, title, body, published_at, word_count,
                content_hash, body_source, story_id, story_relation, story_jaccard, story_containment,
                fetched_at, created_at)
            SELECT 'https://p' || (i % 2000) || '.example/a/' || i, 'https://p' || (i % 2000) || '.example/a/' || i,
                   'Publisher ' || (i % 2000), 'Article ' || i, 'text of article ' || i, at, 500, md5(i::text),
                   'page', s, CASE WHEN i <= {n_stories} THEN 'original' ELSE 'copy' END,
                   CASE WHEN i > {n_stories} THEN 0.8 END, CASE WHEN i > {n_stories} THEN 0.9 END, at, at
            FROM generate_series(1, {n_articles}) i,
                 LATERAL (SELECT CASE WHEN i <= {n_stories} THEN i ELSE 1 + (i::bigint * 7919) % ({n_stories} / 10) END AS s,
                                 now() - make_interval(secs => ((1 - i::float / {n_articles}) * 90 * 86400)::int)
                                 AS at) x"""),
        ("story counts", """
            UPDATE news.stories st SET article_count = c.n, representative_id = c.first, origin_article_id = c.first
            FROM (SELECT story_id, count(*) AS n, min(id) AS first FROM news.articles GROUP BY story_id) c
            WHERE st.id = c.story_id"""),
        ("entries", f"""
            INSERT INTO news.entries (feed_id, guid, link, title, published_at, status, attempts, article_id,
                                      first_seen_at, updated_at)
            SELECT CASE WHEN f % 41 = 0 AND a.created_at > now() - interval '10 days' THEN f % {n_feeds} + 1
                        ELSE f END,  -- every 41st feed went quiet 10 days ago: stale
                   'g' || a.id, a.url, a.title, a.published_at, 'loaded', 1, a.id, a.created_at, a.created_at
            FROM news.articles a, LATERAL (SELECT 1 + (a.id * 7919) % {n_feeds} AS f) x"""),
        ("failed and pending entries", f"""
            INSERT INTO news.entries (feed_id, guid, link, title, status, attempts, last_error, first_seen_at,
                                      updated_at, next_attempt_at)
            SELECT CASE WHEN f % 41 = 0 THEN f % {n_feeds} + 1 ELSE f END, 'x' || i, 'https://x.example/' || i,
                   'Entry ' || i,
                   CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'failed' END, 5, 'page fetch failed: HTTP 404',
                   now() - make_interval(secs => i % (14 * 86400)), now() - make_interval(secs => i % (14 * 86400)),
                   now() + make_interval(secs => i % 3600)
            FROM generate_series(1, {max(1000, n_articles // 20)}) i, LATERAL (SELECT 1 + (i::bigint * 104729) % {n_feeds} AS f) x"""),
        ("fetch log", f"""
            INSERT INTO news.fetch_log (kind, feed_id, url, fetched_at, status, bytes, duration_ms, new_entries, error)
            SELECT 'feed', f, 'https://feed/' || f, now() - make_interval(hours => 4 * k, secs => f % 3600),
                   CASE WHEN f % 33 = 0 AND k < 2 THEN 500 WHEN k % 3 = 0 THEN 200 ELSE 304 END,
                   5000, 40, CASE WHEN k % 3 = 0 THEN 1 ELSE 0 END,
                   CASE WHEN f % 33 = 0 AND k < 2 THEN 'HTTP 500' END
            FROM generate_series(1, {n_feeds}) f, generate_series(0, 83) k"""),
        ("audit trail", f"""
            INSERT INTO news.operator_actions (actor, source, action, feed_id, detail, at)
            SELECT 'ops', 'console', 'enable', 1 + (i * 31) % {n_feeds}, 'was disabled: HTTP 410 Gone',
                   now() - make_interval(mins => i)
            FROM generate_series(1, {n_feeds}) i"""),
        ("run counts", """
            INSERT INTO news.run_counts (dag_id, run_id, task_id, map_index, counts)
            SELECT 'newsflow_poll_feeds', 'scheduled__' || r, 'poll_shard', s,
                   '{"feeds": 25, "new_entries": 3, "failed": 1, "not_modified": 20}'::jsonb
            FROM generate_series(1, 2000) r, generate_series(0, 3) s"""),
    ]
    with db.connect(url, autocommit=True) as conn:
        for name, sql in steps:
            started = time.perf_counter()
            conn.execute(sql)
            took[name] = time.perf_counter() - started
            print(f"  generated {name}: {took[name]:.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.perf_counter() - started
    return took


def title_matches(conn, words: str) -> int:
    """How many stories a title search matches (its cost grows with that)."""
    from newsflow.storage.stories import _tsquery

    return conn.execute("SELECT count(*) AS n FROM news.stories WHERE title_words @@ to_tsquery('simple', %s)",
                        (_tsquery(words),)).fetchone()["n"]


def measure(url: str, rounds: int, n_feeds: int, explain: bool) -> list[tuple[str, float, str]]:
    settings = Settings(database_url=url)
    rule = StaleRule.from_settings(settings)
    size = settings.console_page_size
    now = datetime.now(timezone.utc)
    since = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    feed_id = n_feeds // 2
    with db.connect(url) as conn:
        story_id = stories.latest(conn, limit=1)[0]["id"]
        title = stories.get(conn, story_id)["title"].lower().split()
        words, specific = " ".join(title[:2]), " ".join(title[:5])
    cases = [
        ("Feeds: first page, failing first", lambda c: feeds.health(c, rule, sort="state", limit=size)),
        ("Feeds: page 100", lambda c: feeds.health(c, rule, sort="state", limit=size, offset=99 * size)),
        ("Feeds: failing only", lambda c: feeds.health(c, rule, state="failing", limit=size)),
        ("Feeds: stale only", lambda c: feeds.health(c, rule, state="stale", limit=size)),
        ("Feeds: search 'publisher 17'", lambda c: feeds.health(c, rule, q="publisher 17", limit=size)),
        ("Feeds: longest without new entries", lambda c: feeds.health(c, rule, sort="quiet", limit=size)),
        ("Feed page: state and counts", lambda c: feeds.health(c, rule, ids=[feed_id])),
        ("Feed page: 14-day history chart", lambda c: fetch_log.feed_history(c, feed_id, since=since,
                                                                             bucket_seconds=4 * 3600)),
        ("Feed page: latest polls", lambda c: fetch_log.feed_polls(c, feed_id, limit=20)),
        ("Feed page: entries", lambda c: entries.of_feed(c, feed_id, limit=size)),
        ("Feed page: audit trail", lambda c: audit.recent(c, feed_id=feed_id, limit=size)),
        ("Stories: latest syndicated", lambda c: stories.latest(c, limit=size + 1)),
        ("Stories: page 50", lambda c: stories.latest(c, limit=size + 1, offset=49 * size)),
        ("Stories: all, first page", lambda c: stories.latest(c, syndicated_only=False, limit=size + 1)),
        (f"Stories: title search '{words}'", lambda c: stories.latest(c, q=words, limit=size + 1)),
        (f"Stories: title search '{specific}'", lambda c: stories.latest(c, q=specific, limit=size + 1)),
        ("Story page", lambda c: (stories.get(c, story_id), stories.outlets(c, story_id),
                                  articles.of_story(c, story_id))),
        ("Pipeline: articles per hour, 48 h", lambda c: articles.loaded_per_hour(c, 48)),
        ("Pipeline: queue counts", lambda c: entries.queue_counts(c)),
        ("Pipeline: failed entries", lambda c: entries.failed_latest(c, limit=size)),
        ("Pipeline: counts of 15 runs", lambda c: run_counts.for_runs(c, "newsflow_poll_feeds",
                                                                      [f"scheduled__{r}" for r in range(1, 16)])),
        ("CLI/maintenance: every feed's state", lambda c: feeds.health(c, rule)),
    ]
    results = []
    with db.connect(url) as conn:
        for name, query in cases:
            query(conn)  # warm-up
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                out = query(conn)
                times.append((time.perf_counter() - started) * 1000)
            rows = len(out[0]) if isinstance(out, tuple) and isinstance(out[0], list) else (
                len(out) if isinstance(out, list) else "")
            if name.startswith("Stories: title search"):
                rows = f"{rows}, of {title_matches(conn, name.split(chr(39))[1])} matching"
            results.append((name, statistics.median(times), str(rows)))
            print(f"  {name:44} {statistics.median(times):8.1f} ms  (rows {rows})", flush=True)
        conn.rollback()
    if explain:
        with db.connect(url) as conn:
            sql = feeds._HEALTH.format(order=feeds.HEALTH_SORTS["state"])
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, {
                "min_samples": rule.min_samples, "min_age": rule.min_age, "factor": rule.factor,
                "default_age": rule.default_age, "q": None, "ids": None, "state": None, "limit": size,
                "offset": 0}).fetchall()
            print("\n".join(r["QUERY PLAN"] for r in plan))
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=10_000)
    p.add_argument("--articles", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--explain", action="store_true", help="print the Feeds page's query plan")
    args = p.parse_args()
    with server(env=("NEWSFLOW_BENCH_DATABASE_URL",), try_local=True) as server_url:
        with scratch_database(server_url, prefix="nf_console_bench", keep=args.keep) as url:
            print(f"generating {args.feeds:,} feeds and {args.articles:,} articles in {db.redact(url)} ...")
            started = time.perf_counter()
            generate(url, args.feeds, args.articles)
            with db.transaction(url) as conn:
                t = time.perf_counter()
                feed_rhythm.refresh(conn, arrivals=30, lookback_days=90)
                rhythm = (time.perf_counter() - t) * 1000
            print(f"generated in {time.perf_counter() - started:.0f} s; maintenance's rhythm refresh of every "
                  f"feed: {rhythm:.0f} ms")
            with db.connect(url) as conn:
                counts = conn.execute("""SELECT (SELECT count(*) FROM news.feeds) AS feeds,
                    (SELECT count(*) FROM news.articles) AS articles, (SELECT count(*) FROM news.entries) AS entries,
                    (SELECT count(*) FROM news.stories) AS stories, (SELECT count(*) FROM news.fetch_log) AS polls,
                    pg_size_pretty(pg_database_size(current_database())) AS size""").fetchone()
            print(f"database: {counts}")
            print(f"median of {args.rounds} rounds (after one warm-up):")
            results = measure(url, args.rounds, args.feeds, args.explain)
            print("\n| page / query | median ms | rows |\n|---|---|---|")
            for name, ms, rows in results:
                print(f"| {name} | {ms:.1f} | {rows} |")
            print(f"| Maintenance: rhythm of every feed (once) | {rhythm:.0f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
