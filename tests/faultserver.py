"""A fault-injection HTTP(S) server on loopback, for the robustness tests.

Every response is scripted per path: well-behaved pages and feeds, and every kind of
bad server the pipeline must survive — silence, trickling headers or body, connection
resets, bodies larger than declared or endless (chunked), gzip/deflate bombs, redirect
loops and chains, HTML error pages, wrong content types, 429/503 with Retry-After.

Only 127.0.0.1 is ever bound or contacted. Every handler that waits uses the server's
stop event, so ``stop()`` ends them promptly and no test waits on a sleeping thread.

    with FaultServer() as fs:
        url = fs.add("/feed.xml", rss([...]), content_type="application/rss+xml")
        fs.route("/slow", fs.silent)
        ...
        fs.requests      # what was asked: host, path, headers
        fs.max_in_flight # per Host header, the most requests served at once
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import socket
import ssl
import struct
import subprocess
import threading
import zlib
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Seen:
    host: str
    path: str
    headers: dict[str, str]


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (interruptible)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        fs = self.server.owner
        host = (self.headers.get("Host") or "").lower()
        path = urlsplit(self.path).path
        fs._enter(Seen(host, self.path, {k.lower(): v for k, v in self.headers.items()}))
        self._host, self._served = host, False
        try:
            handler = fs.routes.get(self.path) or fs.routes.get(path)
            if handler is None:
                self.send_plain(404, b"not found")
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass  # the client gave up: that is the point of most faults here
        finally:
            self._done_serving()
            self.close_connection = True

    def _done_serving(self) -> None:
        """The request stops counting as in flight (once): before its last bytes are sent,
        since the client may ask again as soon as it has them, before this thread resumes."""
        if not self._served:
            self._served = True
            self.server.owner._exit(self._host)

    # --- response helpers for handlers ------------------------------------------------

    def send_plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers) and headers.get("_no_type") is None:
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        headers.pop("_no_type", None)
        if not any(k.lower() == "content-length" for k in headers):
            headers["Content-Length"] = str(len(body))
        headers.setdefault("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self._done_serving()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    @property
    def stop(self) -> threading.Event:
        return self.server.owner.stop_event


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "FaultServer"
    tls: ssl.SSLContext | None = None

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            # handshake lazily, in the handler thread: a client that refuses our
            # certificate must not block the accept loop
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address) -> None:
        pass  # handshake failures and resets are expected


class FaultServer:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[str, Callable[[_Handler], None]] = {}
        self.requests: list[Seen] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.owner = self
        self._server.tls = tls
        self.scheme = "https" if tls else "http"
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "FaultServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"faultserver:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- addresses --------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    def url(self, path: str, host: str | None = None) -> str:
        """URL of ``path``; ``host`` names a test host (resolve it to 127.0.0.x)."""
        return f"{self.scheme}://{host or LOOPBACK}:{self.port}{path}"

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path == path]

    # --- scripting --------------------------------------------------------------------------

    def route(self, path: str, handler: Callable[[_Handler], None]) -> str:
        self.routes[path] = handler
        return self.url(path)

    def add(self, path: str, body: bytes | str = b"", status: int = 200,
            headers: dict[str, str] | None = None, content_type: str | None = "text/html; charset=utf-8",
            delay: float = 0.0) -> str:
        """A fixed response; returns its URL. ``content_type=None`` sends none at all."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = dict(headers or {})
        if content_type is None:
            headers["_no_type"] = "1"
        else:
            headers.setdefault("Content-Type", content_type)
        scripted = Scripted(status, body, headers, delay)

        def handler(req: _Handler) -> None:
            if scripted.delay and req.stop.wait(scripted.delay):
                return
            req.send_plain(scripted.status, scripted.body, scripted.headers)

        self.routes[path] = handler
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        return self.add(path, b"", status=status, headers={"Location": to})

    # --- counters ---------------------------------------------------------------------------

    def _enter(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)
            n = self.in_flight.get(seen.host, 0) + 1
            self.in_flight[seen.host] = n
            self.max_in_flight[seen.host] = max(n, self.max_in_flight.get(seen.host, 0))

    def _exit(self, host: str) -> None:
        with self._lock:
            self.in_flight[host] = self.in_flight.get(host, 1) - 1

    # --- fault handlers (pass to route()) ------------------------------------------------------

    @staticmethod
    def silent(req: _Handler) -> None:
        """Read the request, answer nothing, until the client or the server gives up."""
        req.stop.wait(30)

    @staticmethod
    def trickle_body(req: _Handler, interval: float = 0.1) -> None:
        """Headers at once, then one byte of body every ``interval`` seconds."""
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        req.send_header("Content-Length", "1000000")
        req.end_headers()
        req.wfile.flush()
        while not req.stop.wait(interval):
            req.wfile.write(b" ")
            req.wfile.flush()

    @staticmethod
    def trickle_headers(req: _Handler, interval: float = 0.1) -> None:
        """A status line, then one header byte every ``interval`` seconds (never ends)."""
        req.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        req.wfile.flush()
        while not req.stop.wait(interval):
            req.wfile.write(b"a")
            req.wfile.flush()

    @staticmethod
    def reset(req: _Handler) -> None:
        """Close with a TCP RST instead of an answer."""
        req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        req.connection.close()

    @staticmethod
    def reset_mid_body(req: _Handler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        req.send_header("Content-Length", "100000")
        req.end_headers()
        req.wfile.write(b"<rss version='2.0'><channel><title>cut")
        req.wfile.flush()
        req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        req.connection.close()

    @staticmethod
    def hang_up(req: _Handler) -> None:
        """Close the connection without any response."""
        req.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def chunked_endless(req: _Handler) -> None:
        """A chunked body that never ends (64 KiB chunks) until the client hangs up."""
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        chunk = b"<p>" + b"x" * 65530 + b"</p>"
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range(100_000):  # bounded: 6.5 GB at most, the client stops long before
            if req.stop.is_set():
                return
            req.wfile.write(frame)

    @staticmethod
    def declared_huge(req: _Handler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.send_header("Content-Length", str(50 * 1024 ** 3))
        req.end_headers()
        req.wfile.write(b"<html>" + b"x" * 1000)

    @staticmethod
    def bomb(encoding: str = "gzip", decoded_size: int = 200 * 1024 * 1024) -> Callable[[_Handler], None]:
        """A compression bomb: a small body that decodes to ``decoded_size`` bytes."""
        payload = compression_bomb(encoding, decoded_size)

        def handler(req: _Handler) -> None:
            req.send_plain(200, payload, {"Content-Type": "text/html", "Content-Encoding": encoding})
        return handler

    def redirect_loop(self, a: str, b: str) -> str:
        self.redirect(a, self.url(b), 302)
        self.redirect(b, self.url(a), 302)
        return self.url(a)

    def redirect_chain(self, prefix: str, hops: int, final_body: bytes = b"ok") -> str:
        for i in range(hops):
            self.redirect(f"{prefix}{i}", self.url(f"{prefix}{i + 1}"), 302)
        self.add(f"{prefix}{hops}", final_body)
        return self.url(f"{prefix}0")


# --- documents --------------------------------------------------------------------------------

def rss(items: Sequence[dict], *, title: str = "Test feed", ttl: int | None = None,
        link: str = "http://news.test/") -> bytes:
    """An RSS 2.0 document; item keys: title, link, guid, description, pubDate (datetime or str)."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
             f"<title>{title}</title><link>{link}</link>"]
    if ttl is not None:
        parts.append(f"<ttl>{ttl}</ttl>")
    for item in items:
        parts.append("<item>")
        for key in ("title", "link", "guid", "description", "pubDate"):
            if key in item and item[key] is not None:
                value = item[key]
                if isinstance(value, dt.datetime):
                    value = format_datetime(value)
                parts.append(f"<{key}>{value}</{key}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def article_html(title: str, paragraphs: int = 6, seed: str = "") -> bytes:
    text = "".join(
        f"<p>{title} {seed} paragraph {i}: the council met on Tuesday to discuss the budget for "
        f"the coming year, and members argued at length about roads, schools and the harbour "
        f"({seed}{i}).</p>" for i in range(paragraphs))
    return (f"<!DOCTYPE html><html lang='en'><head><title>{title}</title></head><body>"
            f"<article><h1>{title}</h1>{text}</article></body></html>").encode("utf-8")


def compression_bomb(encoding: str, decoded_size: int) -> bytes:
    """gzip or zlib-wrapped deflate of ``decoded_size`` zero bytes (about 1/1000 the size)."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[encoding]
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b"\0" * (1024 * 1024)
    chunks = [comp.compress(block) for _ in range(decoded_size // len(block))]
    chunks.append(comp.flush())
    return b"".join(chunks)


# --- other sockets -------------------------------------------------------------------------------

@contextlib.contextmanager
def blackhole_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections never complete.

    A listening socket with backlog 0 that never accepts, its queue filled by a few
    connections of our own; the kernel then drops further SYNs, so connecting times out.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOOPBACK, 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect((LOOPBACK, port))
            except (BlockingIOError, InterruptedError):
                pass
            fillers.append(c)
        yield port
    finally:
        for c in fillers:
            c.close()
        server.close()


def self_signed_tls_context(workdir: Path) -> ssl.SSLContext | None:
    """A server context with a certificate made now (cryptography, else openssl); None if neither."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import ipaddress

        pkey = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsflow-test")])
        now = dt.datetime.now(dt.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(pkey.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
            .sign(pkey, hashes.SHA256()))
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    except ImportError:
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=newsflow-test", "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def loopback_resolver(names: dict[str, str]) -> Callable[[str, int], list[str]]:
    """A resolver for SafeClient: test host names → given addresses; IP literals as is;
    anything else fails like an unknown name (socket.gaierror)."""
    import ipaddress

    def resolve(host: str, port: int) -> list[str]:
        host = host.lower().strip("[]")
        if host in names:
            value = names[host]
            if isinstance(value, BaseException):
                raise value
            return [value]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host}") from None
    return resolve


__all__ = ["FaultServer", "rss", "article_html", "compression_bomb", "blackhole_port",
           "self_signed_tls_context", "loopback_resolver"]
