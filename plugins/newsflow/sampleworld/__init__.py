"""A static HTTP server for the bundled sample news world (demo and tests).

The world is package data (``newsflow/sampleworld/``: ``site/``, ``feeds.yaml``, and a
README describing it), so ``newsflow demo`` works from an installed wheel too.

Serves ``site/`` on a loopback port, replacing ``{{BASE}}`` in every file with the
server's own base URL, and answers conditional GETs (ETag / If-Modified-Since) the way
a well-behaved publisher does, so the second poll of a feed gets a 304.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
SITE_DIR = SAMPLE_DIR / "site"
PLACEHOLDER = "{{BASE}}"
# One fixed modification time: the sample files never change while served.
LAST_MODIFIED = 1795000000  # 2026-11-18


def render(text: str, base: str) -> str:
    return text.replace(PLACEHOLDER, base)


class SampleHandler(BaseHTTPRequestHandler):
    server_version = "newsflow-sample/1.0"
    root: Path = SITE_DIR
    base: str = ""

    def log_message(self, *args) -> None:  # keep test and demo output readable
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        target = (self.root / path.lstrip("/")).resolve()
        if path.endswith("/robots.txt") and not target.exists():
            return self._send(404, b"", "text/plain")
        if not str(target).startswith(str(self.root.resolve())) or not target.is_file():
            return self._send(404, b"not found", "text/plain")
        body = render(target.read_text(encoding="utf-8"), self.base).encode("utf-8")
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag or self._not_modified_since():
            return self._send(304, b"", None, etag)
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".xml":
            ctype = "application/xml"
        self._send(200, body, ctype + "; charset=utf-8", etag)

    def _not_modified_since(self) -> bool:
        since = self.headers.get("If-Modified-Since")
        if not since or self.headers.get("If-None-Match"):
            return False
        try:
            return parsedate_to_datetime(since).timestamp() >= LAST_MODIFIED
        except (TypeError, ValueError):
            return False

    def _send(self, status: int, body: bytes, ctype: str | None, etag: str | None = None) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(LAST_MODIFIED, usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(body)


class SampleServer:
    """Context manager: ``with SampleServer() as server: server.base``."""

    def __init__(self, root: Path = SITE_DIR, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (SampleHandler,), {"root": Path(root)})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        handler.base = self.base
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SampleServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def render_feeds_file(self, source: Path, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(source.read_text(encoding="utf-8"), self.base), encoding="utf-8")
        return target
