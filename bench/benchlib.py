"""What the benchmarks share: the corpus pages, a publisher's server in a process of its own,
raw trafilatura as the reference, and a timed `newsflow` run as a user pays it.

Benchmarks, not tests: they print figures; nothing asserts a timing.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO))
PAGES = REPO.parent / "shared" / "corpus" / "pages"
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


def corpus_pages(count: int) -> list[tuple[str, bytes]]:
    """``count`` pages from the corpus, each corpus page in turn; copies after the first round
    carry an editor's note, so they are near-duplicates (syndicated copies) that go through
    the whole dedup and load path, not byte-identical ones."""
    files = sorted(PAGES.glob("*.html"))
    out = []
    for n in range(count):
        f, r = files[n % len(files)], n // len(files)
        html = f.read_bytes()
        if r:
            note = (f"<p>Editor's note: this copy was republished by partner outlet number {r} "
                    f"under a syndication agreement.</p>").encode()
            html = html.replace(b"</p>", b"</p>" + note, 1)
        out.append((f"/p{r}/{f.name}", html))
    return out


def rss(base: str, title: str, items: list[tuple[str, str]]) -> bytes:
    """An RSS document of (path, title) items on ``base``, dated a minute apart."""
    parts = []
    for j, (path, item_title) in enumerate(items):
        parts.append(f"<item><title>{escape(item_title)}</title><link>{base}{escape(path)}</link>"
                     f"<guid>{escape(path)}</guid><pubDate>{format_datetime(NOW - timedelta(minutes=j))}</pubDate>"
                     f"<description>Summary of {escape(path)}</description></item>")
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{escape(title)}</title>'
            f"<link>{base}/</link>{''.join(parts)}</channel></rss>").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as news sites serve
    routes: dict[str, tuple[bytes, str]] = {}
    log: object = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if self.log is not None:
            self.log.write(f"{time.time():.6f} {self.server.server_address[1]} {path}\n")
            self.log.flush()
        body, ctype = self.routes.get((self.server.server_address[1], path), (None, None))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Publisher:
    """Loopback HTTP servers (one per host, i.e. per port) in a process of their own, as a
    publisher's would be: in-process they would compete with the pipeline for the GIL.
    Every request is logged with its time (``requests()``)."""
    hosts: int = 1
    routes: dict[tuple[int, str], tuple[bytes, str]] = field(default_factory=dict)

    def __post_init__(self):
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(self.hosts)]
        for s in self._servers:
            s.daemon_threads = True
        self.ports = [s.server_address[1] for s in self._servers]
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nf_bench_requests_{os.getpid()}.log"

    def base(self, host: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[host]}"

    def add(self, host: int, path: str, body: bytes, ctype: str = "text/html; charset=utf-8") -> str:
        self.routes[(self.ports[host], path)] = (body, ctype)
        return self.base(host) + path

    def __enter__(self) -> "Publisher":
        _Handler.routes = self.routes
        self.log_path.write_text("")

        def serve():
            _Handler.log = open(self.log_path, "a")
            threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self._servers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        self._process = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
        self._process.start()
        for s in self._servers:
            s.server_close()  # the child keeps its copies of the listening sockets
        return self

    def __exit__(self, *exc):
        self._process.terminate()
        self._process.join()
        self.log_path.unlink(missing_ok=True)

    def requests(self) -> list[tuple[float, int, str]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            t, port, path = line.split(" ", 2)
            out.append((float(t), int(port), path))
        return out

    def clear(self) -> None:
        self.log_path.write_text("")


def raw_trafilatura(pages: list[tuple[str, bytes]]) -> float:
    """The reference: single-process ``trafilatura.extract(with_metadata=True)``, pages/s."""
    import trafilatura

    for _, html in pages[:5]:  # warm-up: imports, caches
        trafilatura.extract(html)
    start = time.perf_counter()
    for path, html in pages:
        trafilatura.extract(html, url="http://127.0.0.1" + path, with_metadata=True)
    return len(pages) / (time.perf_counter() - start)


@dataclass
class TimedRun:
    started_at: float  # time.time() at the start
    seconds: float  # start to exit, as the user pays it
    returncode: int
    stdout: str
    lines: list[tuple[float, str]]  # stderr lines with the seconds since start


def timed_run(args: list[str], env: dict[str, str], timeout: float = 1800) -> TimedRun:
    """Run `newsflow ARGS` in a subprocess; stderr lines are timed as they arrive."""
    started_at, start = time.time(), time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "newsflow", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    for line in proc.stderr:
        lines.append((time.monotonic() - start, line.rstrip("\n")))
    proc.wait(timeout=timeout)
    seconds = time.monotonic() - start
    reader.join()
    return TimedRun(started_at, seconds, proc.returncode, "".join(out), lines)


_TOKEN = re.compile(r"\w+", re.UNICODE)


def token_f1(candidate: str, reference: str) -> float:
    """Bag-of-tokens F1 of ``candidate`` against ``reference`` (lower-cased word tokens)."""
    a, b = Counter(_TOKEN.findall(candidate.lower())), Counter(_TOKEN.findall(reference.lower()))
    common = sum((a & b).values())
    if not common:
        return 0.0 if (a or b) else 1.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"| {'measure'.ljust(width)} | result |", f"|{'-' * (width + 2)}|---|"]
                     + [f"| {k.ljust(width)} | {v} |" for k, v in rows])
