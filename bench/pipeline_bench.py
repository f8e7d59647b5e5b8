"""End-to-end throughput of `newsflow run` against raw trafilatura, in one run.

Serves the real pages of ../shared/corpus/pages through RSS feeds on loopback, runs one
full pass of the pipeline (poll → fetch → extract → normalise → dedup → load into a
fresh PostgreSQL database) and compares its pages/s with single-process
``trafilatura.extract`` over the same pages measured in the same run:

    ratio = pipeline pages/s ÷ (raw pages/s × cores)

Politeness is lifted for the loopback server only (per-host delay 0, per-host
concurrency raised), and said so in the output. Usage:

    .venv/bin/python bench/pipeline_bench.py [--repeat 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PAGES = REPO.parent / "shared" / "corpus" / "pages"
FEEDS = 5


def load_pages(repeat: int) -> dict[str, bytes]:
    """Each corpus page, ``repeat`` times: copies after the first carry an added editor's
    note, so they are near-duplicates (a syndicated copy) rather than byte-identical,
    and go through the whole dedup and load path like new articles."""
    files = sorted(p for p in PAGES.glob("*.html"))
    pages = {}
    for r in range(repeat):
        for f in files:
            html = f.read_bytes()
            if r:
                note = (f"<p>Editor's note: this copy was republished by partner outlet number {r} "
                        f"under a syndication agreement.</p>").encode()
                html = html.replace(b"</p>", b"</p>" + note, 1)
            pages[f"/p{r}/{f.name}"] = html
    return pages


def make_feeds(pages: dict[str, bytes], base: str) -> dict[str, bytes]:
    paths = sorted(pages)
    feeds = {}
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    for i in range(FEEDS):
        items = []
        for j, path in enumerate(paths[i::FEEDS]):
            when = format_datetime(now - timedelta(minutes=j))
            items.append(f"<item><title>Page {escape(path)}</title><link>{base}{escape(path)}</link>"
                         f"<guid>{escape(path)}</guid><pubDate>{when}</pubDate>"
                         f"<description>Summary of {escape(path)}</description></item>")
        feeds[f"/feed{i}.xml"] = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench {i}</title>'
                                  f"<link>{base}/</link>{''.join(items)}</channel></rss>").encode()
    return feeds


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as news sites serve; HTTP/1.0 would cost a TCP connection per page
    protocol_version = "HTTP/1.1"
    routes: dict[str, tuple[bytes, str]] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        body, ctype = self.routes.get(self.path, (None, None))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def raw_reference(pages: dict[str, bytes]) -> float:
    import trafilatura

    for html in list(pages.values())[:5]:  # warm-up: imports, caches
        trafilatura.extract(html)
    start = time.perf_counter()
    for path, html in pages.items():
        trafilatura.extract(html, url="http://127.0.0.1" + path, with_metadata=True)
    return len(pages) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="serve each corpus page this many times")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--verbose", action="store_true", help="the pipeline's progress, timed")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate reference and pipeline this many times; the median is reported")
    args = parser.parse_args()
    if not PAGES.is_dir():
        print(f"{PAGES} not found: the benchmark needs the shared corpus beside the repo", file=sys.stderr)
        return 2

    from newsflow.config import Settings
    from newsflow.pipeline import run_once
    from tools.pgscratch import scratch_database, server as pg_server

    pages = load_pages(args.repeat)
    cores = os.cpu_count() or 1
    print(f"{len(pages)} pages ({len(pages) // args.repeat} corpus pages x {args.repeat}, "
          f"copies carry an editor's note), {cores} cores")

    # The server runs in its own process, as a publisher's would: in-process it would
    # compete with the pipeline for the GIL and make the pipeline look slower than it is.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    routes = {p: (b, "text/html; charset=utf-8") for p, b in pages.items()}
    routes.update({p: (b, "application/rss+xml") for p, b in make_feeds(pages, base).items()})
    Handler.routes = routes
    server = multiprocessing.get_context("fork").Process(target=httpd.serve_forever, daemon=True)
    server.start()
    httpd.server_close()  # the child keeps its copy of the listening socket

    settings_overrides = dict(allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=16,
                              fetch_concurrency=16, batch_size=args.batch_size)
    print(f"pipeline settings: politeness lifted for loopback (per-host delay 0, per-host concurrency 16), "
          f"batch size {args.batch_size}, {Settings.from_env().extract_pool_size()} extraction workers")
    rows = []
    try:
        for round_no in range(1, args.rounds + 1):
            raw_pps = raw_reference(pages)
            with tempfile.TemporaryDirectory() as tmp, \
                    pg_server(env=("NEWSFLOW_TEST_DATABASE_URL", "NEWSFLOW_BENCH_DATABASE_URL")) as server_url, \
                    scratch_database(server_url, prefix="nf_bench") as url:
                feeds_file = Path(tmp) / "feeds.yaml"
                feeds_file.write_text("feeds:\n" + "".join(
                    f"  - url: {base}/feed{i}.xml\n    publisher: Bench {i}\n" for i in range(FEEDS)))
                settings = Settings.from_env(dict(settings_overrides, database_url=url, data_dir=tmp))
                start = time.perf_counter()
                echo = (lambda line: print(f"    {time.perf_counter() - start:6.2f}s {line}", flush=True)
                        ) if args.verbose else None
                cpu_before = resource.getrusage(resource.RUSAGE_SELF)
                report = run_once(settings, feeds_file, echo=echo)
                elapsed = time.perf_counter() - start
                cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                main_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            pps = report.ingest.claimed / elapsed
            ratio = pps / (raw_pps * cores)
            rows.append((raw_pps, pps, ratio))
            print(f"round {round_no}: raw trafilatura.extract {raw_pps:.1f} pages/s on one core | "
                  f"newsflow run {report.ingest.claimed} pages in {elapsed:.1f}s = {pps:.1f} pages/s "
                  f"({report.ingest.loaded} articles, {report.ingest.near_duplicates} joined a story, "
                  f"{report.ingest.exact_duplicates} exact duplicates, {report.ingest.fallbacks} from feed text, "
                  f"{report.ingest.failed + report.ingest.retry} failed; coordinating process {main_cpu:.1f} CPU-s) "
                  f"| ratio {ratio:.2f}", flush=True)
    finally:
        server.terminate()
    raw_m, pps_m, ratio_m = (statistics.median(col) for col in zip(*rows))
    print()
    print(f"median of {len(rows)} rounds: ratio = pipeline {pps_m:.1f} / (raw {raw_m:.1f} x {cores} cores) "
          f"= {ratio_m:.2f}  (target >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
