"""The polite pass: default politeness, many hosts, against the bound politeness sets.

A world of 8 publisher hosts on loopback (one port each: the politeness unit is
host:port), 9 feeds, 150 real corpus pages spread unevenly (the busiest host has 24). With
the production defaults (1 s between two requests to one host, 2 in flight per host, 8
overall) no pass can be faster than the busiest host's requests × its delay: that is the
**politeness bound** (robots.txt counted). `newsflow run` is timed start to exit, and its
fetch window (first to last page request); the target is a pass ≤ 1.25 × the bound. Also
printed: how busy each host was kept, and the largest gap between two requests to one
host (never below the delay).

    .venv/bin/python bench/frontier_bench.py [--delay 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from itertools import pairwise

from benchlib import PAGES, Publisher, corpus_pages, rss, table, timed_run

# pages per host: 150 in all, the busiest with 24 (as the world)
SHARES = [24, 22, 20, 20, 18, 17, 15, 14]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=1.0, help="NEWSFLOW_PER_HOST_DELAY (default: production)")
    args = parser.parse_args()
    if not PAGES.is_dir():
        print(f"{PAGES} not found: the benchmark needs the shared corpus beside the repo", file=sys.stderr)
        return 2
    from tools.pgscratch import scratch_database, server as pg_server

    pages = corpus_pages(sum(SHARES))
    publisher = Publisher(hosts=len(SHARES))
    by_host: list[list[str]] = []
    offset = 0
    for host, share in enumerate(SHARES):
        mine = pages[offset:offset + share]
        offset += share
        for path, html in mine:
            publisher.add(host, path, html)
        publisher.add(host, "/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
        by_host.append([path for path, _ in mine])
    feeds = []  # 9 feeds: the busiest host has two
    for host, paths in enumerate(by_host):
        halves = [paths[: len(paths) // 2], paths[len(paths) // 2:]] if host == 0 else [paths]
        for k, part in enumerate(halves):
            path = f"/feed{k}.xml"
            publisher.add(host, path, rss(publisher.base(host), f"Host {host} feed {k}", [(p, p) for p in part]),
                          "application/rss+xml")
            feeds.append(publisher.base(host) + path)
    bound = max((len(paths) + 1) * args.delay for paths in by_host)  # + robots.txt
    print(f"{len(pages)} pages on {len(SHARES)} hosts ({', '.join(map(str, SHARES))}), {len(feeds)} feeds; "
          f"per-host delay {args.delay:g} s, 2 in flight per host, 8 overall (production defaults); "
          f"politeness bound = {max(SHARES)} pages + robots.txt on the busiest host × {args.delay:g} s = {bound:.1f} s")
    with publisher, pg_server(env=("NEWSFLOW_BENCH_DATABASE_URL", "NEWSFLOW_TEST_DATABASE_URL")) as server_url, \
            scratch_database(server_url, prefix="nf_bench") as url, tempfile.TemporaryDirectory() as tmp:
        feeds_file = f"{tmp}/feeds.yaml"
        with open(feeds_file, "w") as f:
            f.write("feeds:\n" + "".join(f"  - url: {u}\n    publisher: Host {i}\n" for i, u in enumerate(feeds)))
        env = {**os.environ, "NEWSFLOW_DATABASE_URL": url, "NEWSFLOW_DATA_DIR": tmp,
               "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1", "NEWSFLOW_PER_HOST_DELAY": str(args.delay)}
        publisher.clear()
        run = timed_run(["run", "--feeds", feeds_file], env)
        if run.returncode != 0:
            print("\n".join(line for _, line in run.lines[-20:]), file=sys.stderr)
            return 1
        requests = publisher.requests()
    pages_at = [(t, port) for t, port, path in requests if path.startswith("/p")]
    first, last = min(t for t, _ in pages_at), max(t for t, _ in pages_at)
    per_host = defaultdict(list)
    for t, port, path in requests:
        if not path.startswith("/feed"):
            per_host[port].append(t)
    min_gap = min(b - a for times in per_host.values() for a, b in pairwise(sorted(times)))
    busiest = publisher.ports[0]
    busy_span = max(per_host[busiest]) - min(per_host[busiest])
    rows = [
        ("politeness bound (busiest host's requests × delay)", f"{bound:.1f} s"),
        ("newsflow run, start to exit", f"{run.seconds:.1f} s = **{run.seconds / bound:.2f} × the bound** (target ≤ 1.25)"),
        ("fetch window (first to last page request)", f"{last - first:.1f} s = {(last - first) / bound:.2f} × the bound"),
        ("busiest host: first to last request", f"{busy_span:.1f} s for {len(per_host[busiest])} requests"),
        ("smallest gap between two requests to one host", f"{min_gap:.2f} s (delay {args.delay:g} s)"),
        ("pages fetched", f"{len(pages_at)} of {len(pages)}"),
    ]
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
