"""Polling at scale: 1,000 feeds, a 10,000-feed file, the due-feed query at 100,000 feeds.

* 1,000 feeds of 20 items each on one loopback server (its own process); a first poll
  (every feed answers 200), then a second poll where half the feeds changed (200 with one
  new item) and half answer 304 to the conditional GET. `newsflow poll --all` is timed
  start to exit, as a user pays it.
* `newsflow feeds sync` of a 10,000-feed file: the first time (10,000 new feeds), and again
  unchanged (the file's sha256 is remembered: one hash and a query).
* The due-feed query (what every poll run asks first) with 100,000 feeds: its plan and
  time.

    .venv/bin/python bench/polling_bench.py [--feeds 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchlib import Publisher, rss, table, timed_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--file-feeds", type=int, default=10_000)
    parser.add_argument("--due-feeds", type=int, default=100_000)
    args = parser.parse_args()
    import psycopg

    from tools.pgscratch import scratch_database, server as pg_server

    publisher = Publisher(hosts=1)
    for i in range(args.feeds):  # the first poll's documents and the changed half's second ones
        items = [(f"/a/{i}/{j}", f"Feed {i} item {j}") for j in range(20)]
        publisher.add(0, f"/feed/{i}.xml", rss(publisher.base(), f"Feed {i}", items), "application/rss+xml")
        publisher.add(0, f"/feed/{i}-v2.xml", rss(publisher.base(), f"Feed {i}", [(f"/a/{i}/new", "New")] + items),
                      "application/rss+xml")
    rows = []
    with publisher, pg_server(env=("NEWSFLOW_BENCH_DATABASE_URL", "NEWSFLOW_TEST_DATABASE_URL")) as server_url, \
            scratch_database(server_url, prefix="nf_bench") as url, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NEWSFLOW_DATABASE_URL": url, "NEWSFLOW_DATA_DIR": tmp,
               "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1"}
        feeds_file = f"{tmp}/feeds.yaml"
        with open(feeds_file, "w") as f:
            f.write("feeds:\n" + "".join(f"  - url: {publisher.base()}/feed/{i}.xml\n    publisher: P{i % 50}\n"
                                         for i in range(args.feeds)))
        sync = timed_run(["feeds", "sync", feeds_file], env)
        first = timed_run(["poll", "--all"], env)
        with psycopg.connect(url, autocommit=True) as conn:  # half the feeds change their document
            conn.execute("UPDATE news.feeds SET url = replace(url, '.xml', '-v2.xml') WHERE id % 2 = 0")
        second = timed_run(["poll", "--all"], env)
        for name, run in (("sync", sync), ("first poll", first), ("second poll", second)):
            if run.returncode != 0:
                print(name, "\n".join(line for _, line in run.lines[-10:]), run.stdout[-2000:], file=sys.stderr)
                return 1
        statuses = [line.split("]")[0].split("[")[-1] for line in second.stdout.splitlines() if "] http" in line]
        rows += [(f"`newsflow poll --all`, {args.feeds:,} feeds, first poll (all 200, 20 items each)",
                  f"{first.seconds:.2f} s"),
                 (f"`newsflow poll --all`, {args.feeds:,} feeds, half 200 (one new item) / half 304",
                  f"**{second.seconds:.2f} s** (target ≤ 5 s; {statuses.count('200')} × 200, "
                  f"{statuses.count('304')} × 304)")]

        big_file = f"{tmp}/big.yaml"
        with open(big_file, "w") as f:
            f.write("feeds:\n" + "".join(f"  - url: https://publisher{i % 997}.example/feeds/{i}.xml\n"
                                         f"    publisher: Publisher {i % 997}\n    name: Feed {i}\n"
                                         for i in range(args.file_feeds)))
        new = timed_run(["feeds", "sync", big_file], env)
        again = timed_run(["feeds", "sync", big_file], env)
        rows += [(f"`newsflow feeds sync`, a {args.file_feeds:,}-feed file, first time", f"**{new.seconds:.2f} s** "
                  "(target ≤ 10 s)"),
                 (f"`newsflow feeds sync`, the same {args.file_feeds:,}-feed file unchanged",
                  f"{again.seconds:.2f} s, start to exit (the sync itself: a hash and one query)")]

        with psycopg.connect(url, autocommit=True) as conn:
            have = conn.execute("SELECT count(*) FROM news.feeds").fetchone()[0]
            conn.execute(f"""INSERT INTO news.feeds (url, publisher, next_poll_at)
                             SELECT 'https://bulk' || g || '.example/feed.xml', 'Bulk',
                                    now() + (g % 86400) * interval '1 second'
                             FROM generate_series(1, {max(0, args.due_feeds - have)}) g""")
            conn.execute("ANALYZE news.feeds")
            from newsflow.storage import feeds as feed_store

            with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as c:
                times = []
                for _ in range(7):
                    start = time.perf_counter()
                    due = feed_store.due(c, 1000)
                    times.append((time.perf_counter() - start) * 1e3)
                plan = c.execute("EXPLAIN SELECT id FROM news.feeds WHERE enabled AND next_poll_at <= now() "
                                 "ORDER BY next_poll_at, id LIMIT 1000").fetchall()
        node = next(r["QUERY PLAN"].strip().removeprefix("->").strip().split("  ")[0]
                    for r in plan if "Scan" in r["QUERY PLAN"])
        rows.append((f"due-feed query, {args.due_feeds:,} feeds ({len(due)} due, limit 1000)",
                     f"median {statistics.median(times):.1f} ms; {node}"))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
