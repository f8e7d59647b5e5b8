"""Safe HTTP GET for URLs that strangers put into feeds.

One function, :meth:`SafeClient.get`, used for feeds and article pages alike:

* only http/https; redirects followed by hand so every hop is checked and a
  permanent redirect (301/308) can be told apart from a temporary one;
* the address guard runs inside the connection layer, *after* DNS resolution and on
  every hop, and the socket connects to the very address that was checked (no DNS
  rebinding window);
* bodies are streamed and decompressed by us with a bounded output size, so a gzip
  bomb or an endless chunked body stops at the cap; a total deadline stops servers
  that trickle bytes (httpx's timeouts are per read, not per response).

Nothing here raises for a bad server: every outcome is a :class:`FetchResult`.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from .config import Settings

REDIRECT_CODES = {301, 302, 303, 307, 308}
PERMANENT_REDIRECTS = {301, 308}


class BlockedAddress(httpcore.ConnectError):
    """The target resolved to an address we refuse to connect to."""


def address_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends are IPv4 addresses in disguise
        if ip.ipv4_mapped is not None:
            return address_is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None and not address_is_public(ip.sixtofour):
            return False
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


# Resolver hook: tests point host names at 127.0.0.x without touching /etc/hosts.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


# The total deadline of the request running in this thread (SafeClient.get sets it).
# httpx's timeouts apply to each socket operation; a server that trickles its headers
# or body one byte at a time never trips them, so every socket operation below is also
# bounded by what is left of the whole response's time budget.
_deadline = threading.local()


def _remaining(timeout: float | None, what: str, exc: type[Exception]) -> float | None:
    deadline = getattr(_deadline, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc(f"total deadline exceeded during {what} (trickling or stalled server)")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, "read", httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, "write", httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        timeout = _remaining(timeout, "TLS handshake", httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks every address, then connects to a checked address."""

    def __init__(self, allow_private: bool, resolver: Resolver = system_resolver,
                 exempt_networks: Iterable[str] = ()):
        self.allow_private = allow_private
        self.resolver = resolver
        # Networks allowed even when private networks are refused (an intranet feed
        # server; the tests' "allowed" loopback host).
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt_networks]

    def allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.allow_private or address_is_public(ip):
            return True
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(plain.version == n.version and plain in n for n in self.exempt)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = self.resolver(host, port)
        except (socket.gaierror, socket.herror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}: no address")
        last_error: Exception | None = None
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                last_error = httpcore.ConnectError(f"DNS lookup failed for {host}: bad address {address!r}")
                continue
            if not self.allowed(ip):
                last_error = BlockedAddress(
                    f"refused: {host} resolves to non-public address {ip} "
                    "(set NEWSFLOW_ALLOW_PRIVATE_NETWORKS=1 to allow)")
                continue
            try:
                stream = super().connect_tcp(
                    str(ip), port, _remaining(timeout, "connect", httpcore.ConnectTimeout),
                    local_address, socket_options)
                return DeadlineStream(stream)
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


@dataclass
class FetchResult:
    url: str                                  # the URL asked for
    final_url: str                            # after redirects
    status: int | None = None                 # None: no HTTP response at all
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None                  # set when the fetch did not succeed
    error_kind: str | None = None             # timeout, too_large, blocked, redirect, network, http, ...
    permanent_redirect: str | None = None     # new URL when every hop was 301/308
    elapsed: float = 0.0
    retry_after: float | None = None          # seconds, from a 429/503

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class FetchAborted(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class SafeClient:
    def __init__(self, settings: Settings, resolver: Resolver = system_resolver,
                 max_connections: int = 32, exempt_networks: Iterable[str] = (),
                 verify: ssl.SSLContext | bool = True):
        self.settings = settings
        transport = httpx.HTTPTransport(
            verify=verify,
            trust_env=False,  # a proxy would bypass the address guard
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )
        # httpx does not expose httpcore's network backend; the pool owns it.
        transport._pool._network_backend = GuardedBackend(
            settings.allow_private_networks, resolver, exempt_networks)
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                  write=settings.read_timeout, pool=settings.total_timeout),
            headers={"User-Agent": settings.http_user_agent,
                     "Accept-Encoding": "gzip, deflate"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "SafeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
            accept: str | None = None) -> FetchResult:
        started = time.monotonic()
        deadline = started + self.settings.total_timeout
        result = FetchResult(url=url, final_url=url)
        request_headers = dict(headers or {})
        if accept:
            request_headers["Accept"] = accept
        current = url
        seen: set[str] = set()
        all_permanent = True
        _deadline.value = deadline
        try:
            for _hop in range(self.settings.max_redirects + 1):
                check_scheme(current)
                if current in seen:
                    raise FetchAborted("redirect", f"redirect loop at {current}")
                seen.add(current)
                status, resp_headers, body = self._one(current, request_headers, max_bytes, deadline)
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in REDIRECT_CODES and "location" in resp_headers:
                    all_permanent = all_permanent and status in PERMANENT_REDIRECTS
                    current = urljoin(current, resp_headers["location"].strip())
                    continue
                result.body = body
                if all_permanent and current != url:
                    result.permanent_redirect = current
                if status in (429, 503):
                    result.retry_after = parse_retry_after(resp_headers.get("retry-after"))
                if status >= 400:
                    result.error_kind = "http"
                    result.error = f"HTTP {status}"
                return result
            raise FetchAborted("redirect", f"more than {self.settings.max_redirects} redirects")
        except FetchAborted as exc:
            result.error_kind, result.error = exc.kind, str(exc)
        except BlockedAddress as exc:
            result.error_kind, result.error = "blocked", str(exc)
        except httpx.TimeoutException as exc:
            what = {httpx.ConnectTimeout: "connect timeout", httpx.ReadTimeout: "read timeout",
                    httpx.WriteTimeout: "write timeout", httpx.PoolTimeout: "pool timeout"}.get(
                        type(exc), "timeout")
            if time.monotonic() >= deadline - 0.05:
                what = (f"total timeout: response not complete after {self.settings.total_timeout:g}s "
                        f"(trickling or stalled server); {what}")
            result.error_kind, result.error = "timeout", f"{what}: {exc or type(exc).__name__}"
        except httpx.ConnectError as exc:
            message = str(exc)
            if "refused: " in message:
                kind = "blocked"
            elif "DNS lookup failed" in message:
                kind = "dns"
            elif _caused_by(exc, ssl.SSLError):
                kind = "tls"
            else:
                kind = "network"
            result.error_kind = kind
            result.error = message if kind in ("blocked", "dns") else f"{kind} error: {message}"
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            kind = "tls" if _caused_by(exc, ssl.SSLError) else "network"
            reset = _caused_by(exc, ConnectionResetError) or "reset" in str(exc).lower()
            detail = "connection reset by peer" if reset else f"{type(exc).__name__}: {exc}"
            result.error_kind, result.error = kind, f"{kind} error: {detail}"
        finally:
            _deadline.value = None
            result.elapsed = time.monotonic() - started
        result.body = b""
        return result

    def _one(self, url: str, headers: Mapping[str, str], max_bytes: int,
             deadline: float) -> tuple[int, dict[str, str], bytes]:
        with self._client.stream("GET", url, headers=headers) as response:
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code in REDIRECT_CODES or response.status_code == 304:
                return response.status_code, resp_headers, b""
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes * 4:
                # compressed bodies may legitimately be smaller than decoded; 4x slack
                raise FetchAborted("too_large", f"Content-Length {declared} exceeds cap {max_bytes}")
            decoder = _Decoder(resp_headers.get("content-encoding", ""), max_bytes)
            for chunk in response.iter_raw():
                decoder.feed(chunk)
                if time.monotonic() > deadline:
                    raise FetchAborted("timeout", f"response not complete after "
                                                  f"{self.settings.total_timeout:.0f}s (trickling server)")
            return response.status_code, resp_headers, decoder.finish()


class _Decoder:
    """gzip/deflate decoding with a hard cap on the decoded size."""

    def __init__(self, encoding: str, max_bytes: int):
        encoding = encoding.strip().lower()
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []
        self.size = 0
        if encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()  # zlib-wrapped; raw deflate retried below
            self._deflate = True
        elif encoding in ("", "identity"):
            self.zlib = None
        else:
            raise FetchAborted("encoding", f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> None:
        if self.zlib is None:
            self._add(data)
            return
        try:
            while data:
                room = self.max_bytes - self.size + 1
                out = self.zlib.decompress(data, room)
                self._add(out)
                data = self.zlib.unconsumed_tail
        except zlib.error as exc:
            if getattr(self, "_deflate", False) and self.size == 0:
                self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._deflate = False
                self.feed(data)
                return
            raise FetchAborted("encoding", f"corrupt compressed body: {exc}") from exc

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise FetchAborted("too_large", f"body exceeds cap of {self.max_bytes} bytes")
        if data:
            self.parts.append(data)

    def finish(self) -> bytes:
        if self.zlib is not None:
            self._add(self.zlib.flush())
        return b"".join(self.parts)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchAborted("scheme", f"refused scheme {scheme or '(none)'!r}: only http and https")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
        return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HostDeferrals:
    """Hosts that asked us (429/503 + Retry-After) to come back later, within one run.

    Shared by feed polling and page fetching: a host's wish applies to every request
    we would send it, whichever stage sends it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._until: dict[str, tuple[float, str]] = {}

    def block(self, host: str, seconds: float, reason: str) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._until.get(host, (0.0, ""))[0]:
                self._until[host] = (until, reason)

    def check(self, host: str) -> tuple[float, str] | None:
        """(seconds left, reason) while ``host`` is deferred."""
        with self._lock:
            until, reason = self._until.get(host, (0.0, ""))
        left = until - time.monotonic()
        return (left, reason) if left > 0 else None
