"""End to end: `newsflow run` as a user (or an Airflow task) pays it, against raw trafilatura.

Serves real pages of ../shared/corpus/pages through RSS feeds on a loopback server (its own
process), runs `newsflow run` as a subprocess into a fresh, migrated PostgreSQL database, and
times it from start to exit. The reference is single-process
``trafilatura.extract(with_metadata=True)`` over the same pages, measured in the same round:

    ratio = pages / run seconds ÷ (raw pages/s × cores)

Politeness is lifted for the loopback server only (per-host delay 0, 16 in flight), and
said so. Also printed: where the run's time goes (start-up to the first request, polling,
the fetch window, wind-down after the last page), and the extraction quality: token F1 of
every stored page body against trafilatura's own defaults on the same page.

    .venv/bin/python bench/pipeline_bench.py [--pages 330] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from benchlib import (PAGES, Publisher, corpus_pages, raw_trafilatura, rss, table, timed_run,
                      token_f1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=330, help="pages served (the corpus, repeated with edits)")
    parser.add_argument("--feeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="the median of this many rounds is reported")
    args = parser.parse_args()
    if not PAGES.is_dir():
        print(f"{PAGES} not found: the benchmark needs the shared corpus beside the repo", file=sys.stderr)
        return 2
    from tools.pgscratch import scratch_database, server as pg_server

    pages = corpus_pages(args.pages)
    cores = os.cpu_count() or 1
    publisher = Publisher(hosts=1)
    for path, html in pages:
        publisher.add(0, path, html)
    for i in range(args.feeds):
        publisher.add(0, f"/feed{i}.xml", rss(publisher.base(), f"Bench {i}",
                                              [(p, f"Page {p}") for p, _ in pages[i::args.feeds]]),
                      "application/rss+xml")
    print(f"{len(pages)} corpus pages ({len(list(PAGES.glob('*.html')))} distinct, copies carry an editor's "
          f"note) behind {args.feeds} feeds; {cores} cores; politeness lifted for this loopback server only "
          "(NEWSFLOW_PER_HOST_DELAY=0, NEWSFLOW_PER_HOST_CONCURRENCY=16, NEWSFLOW_FETCH_CONCURRENCY=16)")
    rounds, phases, f1 = [], [], None
    with publisher, pg_server(env=("NEWSFLOW_BENCH_DATABASE_URL", "NEWSFLOW_TEST_DATABASE_URL")) as server_url:
        for round_no in range(1, args.rounds + 1):
            raw = raw_trafilatura(pages)
            with tempfile.TemporaryDirectory() as tmp, scratch_database(server_url, prefix="nf_bench") as url:
                feeds_file = f"{tmp}/feeds.yaml"
                with open(feeds_file, "w") as f:
                    f.write("feeds:\n" + "".join(f"  - url: {publisher.base()}/feed{i}.xml\n    publisher: Bench {i}\n"
                                                 for i in range(args.feeds)))
                env = {**os.environ, "NEWSFLOW_DATABASE_URL": url, "NEWSFLOW_DATA_DIR": tmp,
                       "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1", "NEWSFLOW_PER_HOST_DELAY": "0",
                       "NEWSFLOW_PER_HOST_CONCURRENCY": "16", "NEWSFLOW_FETCH_CONCURRENCY": "16"}
                publisher.clear()
                run = timed_run(["run", "--feeds", feeds_file], env)
                if run.returncode != 0:
                    print("\n".join(line for _, line in run.lines[-20:]), file=sys.stderr)
                    return 1
                phases.append(_phases(run, publisher.requests()))
                if round_no == args.rounds:
                    f1 = _extraction_quality(url, dict(pages))
            pps = len(pages) / run.seconds
            ratio = pps / (raw * cores)
            rounds.append((raw, pps, ratio))
            print(f"round {round_no}: raw trafilatura {raw:.1f} pages/s on one core | newsflow run "
                  f"{len(pages)} pages in {run.seconds:.2f} s, start to exit = {pps:.1f} pages/s | ratio {ratio:.2f} "
                  f"| {phases[-1]['summary']}", flush=True)
    raw_m, pps_m, ratio_m = (statistics.median(col) for col in zip(*rounds, strict=True))
    p = {k: statistics.median(ph[k] for ph in phases) for k in ("startup", "polling", "fetching", "winddown")}
    rows = [
        ("raw trafilatura.extract(with_metadata=True), 1 core (median)", f"{raw_m:.1f} pages/s"),
        (f"newsflow run, {len(pages)} pages, start to exit (median)", f"{pps_m:.1f} pages/s"),
        (f"ratio = run ÷ (raw × {cores} cores)", f"**{ratio_m:.2f}** (target ≥ 0.8)"),
        ("  start-up: process start to the first feed request", f"{p['startup']:.2f} s"),
        ("  polling: first feed request to the first page request", f"{p['polling']:.2f} s"),
        ("  fetch window: first to last page request", f"{p['fetching']:.2f} s"),
        ("  wind-down: last page request to exit", f"{p['winddown']:.2f} s"),
    ]
    if f1:
        rows += [(f"extraction: token F1 of stored bodies vs trafilatura defaults ({f1['n']} pages)",
                  f"mean {f1['mean']:.3f}, median {f1['median']:.3f}, {f1['low']} below 0.9"),
                 ("  the same against trafilatura with comments left out (as newsflow stores articles)",
                  f"mean {f1['mean_nc']:.3f}, median {f1['median_nc']:.3f}")]
    print()
    print(table(rows))
    return 0


def _phases(run, requests) -> dict:
    feed_times = [t for t, _, path in requests if path.startswith("/feed")]
    page_times = [t for t, _, path in requests if path.startswith("/p")]
    start, end = run.started_at, run.started_at + run.seconds
    first_feed, first_page, last_page = min(feed_times), min(page_times), max(page_times)
    out = {"startup": first_feed - start, "polling": first_page - first_feed,
           "fetching": last_page - first_page, "winddown": end - last_page}
    out["summary"] = ("start-up {startup:.2f} s, polling {polling:.2f} s, fetch window {fetching:.2f} s, "
                      "wind-down {winddown:.2f} s").format(**out)
    return out


def _extraction_quality(url: str, pages: dict[str, bytes]) -> dict:
    """Token F1 of each stored page body against trafilatura's own output on the page."""
    import psycopg
    import trafilatura

    with psycopg.connect(url) as conn:
        rows = conn.execute("""SELECT e.link, a.body FROM news.articles a JOIN news.entries e ON e.article_id = a.id
                               WHERE a.body_source = 'page'""").fetchall()
    scores, scores_nc = [], []
    for link, body in rows:
        path = "/" + link.split("/", 3)[3]
        html = pages[path]
        reference = trafilatura.extract(html, url=link) or ""
        without_comments = trafilatura.extract(html, url=link, include_comments=False) or ""
        scores.append(token_f1(body, reference))
        scores_nc.append(token_f1(body, without_comments))
    return {"n": len(scores), "mean": statistics.mean(scores), "median": statistics.median(scores),
            "low": sum(s < 0.9 for s in scores), "mean_nc": statistics.mean(scores_nc),
            "median_nc": statistics.median(scores_nc)}


if __name__ == "__main__":
    sys.exit(main())
