"""Safe HTTP GET for URLs that strangers put into feeds.

One function, :meth:`SafeClient.get`, used for feeds and article pages alike:

* only http/https; redirects followed by hand so every hop is checked and a
  permanent redirect (301/308) can be told apart from a temporary one;
* the address guard runs inside the connection layer (:mod:`newsflow.netguard`), *after*
  DNS resolution and on every hop, and the socket connects to the very address that was
  checked (no DNS rebinding window);
* a URL's credentials (``user:password@``) are sent as Basic auth to that URL's origin
  only, never to another origin a redirect names; the result's URLs carry none;
* bodies are streamed and decompressed by us with a bounded output size, so a gzip
  bomb or an endless chunked body stops at the cap; a total deadline stops servers
  that trickle bytes (httpx's timeouts are per read, not per response).

Nothing here raises for a bad server: every outcome is a :class:`FetchResult`.
"""

from __future__ import annotations

import email.utils
import ssl
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Mapping
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from .config import Settings
from .errors import ErrorKind
from .netguard import BlockedAddress, GuardedBackend, Resolver, set_deadline, system_resolver
from .redaction import redact, same_origin, split_credentials

REDIRECT_CODES = {301, 302, 303, 307, 308}
PERMANENT_REDIRECTS = {301, 308}


# What a response means for the pipeline: the rules live on the response type (one home,
# as Miniflux's ResponseHandler), so polling and page fetching read the same answers.
RATE_LIMITED = {429, 503}  # Retry-After applies to the whole host
GONE = {410}  # the publisher removed the resource
PERMANENT_STATUS = {400, 401, 403, 404, 405, 406, 410, 414, 415, 451}  # retrying will not help


@dataclass
class FetchResult:
    url: str                                  # the URL asked for
    final_url: str                            # after redirects
    status: int | None = None                 # None: no HTTP response at all
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None                  # set when the fetch did not succeed
    error_kind: ErrorKind | None = None
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
    def failed(self) -> bool:
        """No usable answer: an error, no response, or a 4xx/5xx status."""
        return bool(self.error) or self.status is None or self.status >= 400

    @property
    def rate_limited(self) -> bool:
        return self.status in RATE_LIMITED

    @property
    def gone(self) -> bool:
        return self.status in GONE

    @property
    def permanent_failure(self) -> bool:
        """A failure that retrying will not fix (a refused address, a 404, a PDF, ...)."""
        return bool(self.error_kind and self.error_kind.permanent) or self.status in PERMANENT_STATUS

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def is_page_type(self) -> bool:
        """Could this be an article page? Missing types are sniffed by extraction."""
        ct = self.content_type
        return (not ct or ct.startswith("text/") or ct in ("application/xhtml+xml", "application/xml")
                or ct.endswith("+xml"))

    def cache_lifetime(self) -> int | None:
        """Seconds the server says the document stays fresh (Cache-Control, Expires)."""
        control = self.headers.get("cache-control", "")
        for part in control.split(","):
            key, _, value = part.strip().partition("=")
            if key.lower() in ("max-age", "s-maxage") and value.strip().isdigit():
                return int(value.strip())
        if self.headers.get("expires"):
            try:
                expires = email.utils.parsedate_to_datetime(self.headers["expires"])
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=timezone.utc)
                return max(0, int((expires - datetime.now(timezone.utc)).total_seconds()))
            except (TypeError, ValueError):
                return None
        return None


class FetchAborted(Exception):
    def __init__(self, kind: ErrorKind, message: str):
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
        # A feed URL's user:password@ is sent as Basic auth to the feed's own origin only
        # (scheme, host, port), never to a host it redirects to; the URLs the result
        # carries (final_url, the base its links are resolved against) have none.
        target, credentials = split_credentials(url)
        result = FetchResult(url=target, final_url=target)
        request_headers = dict(headers or {})
        if accept:
            request_headers["Accept"] = accept
        current = target
        seen: set[str] = set()
        all_permanent = True
        set_deadline(deadline)
        try:
            for _hop in range(self.settings.max_redirects + 1):
                check_scheme(current)
                if current in seen:
                    raise FetchAborted(ErrorKind.REDIRECT, f"redirect loop at {current}")
                seen.add(current)
                auth = credentials if credentials and same_origin(current, target) else None
                status, resp_headers, body = self._one(current, request_headers, max_bytes, deadline, auth)
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in REDIRECT_CODES and "location" in resp_headers:
                    all_permanent = all_permanent and status in PERMANENT_REDIRECTS
                    # credentials a Location names are not ours to send
                    current = split_credentials(urljoin(current, resp_headers["location"].strip()))[0]
                    continue
                result.body = body
                if all_permanent and current != target:
                    # the feed's new address: it keeps the credentials where they still apply
                    result.permanent_redirect = (_with_userinfo(current, url) if credentials and
                                                 same_origin(current, target) else current)
                if result.rate_limited:
                    result.retry_after = parse_retry_after(resp_headers.get("retry-after"))
                if status >= 400:
                    result.error_kind = ErrorKind.HTTP
                    result.error = f"HTTP {status}"
                return result
            raise FetchAborted(ErrorKind.REDIRECT, f"more than {self.settings.max_redirects} redirects")
        except FetchAborted as exc:
            result.error_kind, result.error = exc.kind, str(exc)
        except BlockedAddress as exc:
            result.error_kind, result.error = ErrorKind.BLOCKED, str(exc)
        except httpx.TimeoutException as exc:
            what = {httpx.ConnectTimeout: "connect timeout", httpx.ReadTimeout: "read timeout",
                    httpx.WriteTimeout: "write timeout", httpx.PoolTimeout: "pool timeout"}.get(
                        type(exc), "timeout")
            if time.monotonic() >= deadline - 0.05:
                what = (f"total timeout: response not complete after {self.settings.total_timeout:g}s "
                        f"(trickling or stalled server); {what}")
            result.error_kind, result.error = ErrorKind.TIMEOUT, f"{what}: {exc or type(exc).__name__}"
        except httpx.ConnectError as exc:
            message = str(exc)
            if "refused: " in message:
                kind = ErrorKind.BLOCKED
            elif "DNS lookup failed" in message:
                kind = ErrorKind.DNS
            elif _caused_by(exc, ssl.SSLError):
                kind = ErrorKind.TLS
            else:
                kind = ErrorKind.NETWORK
            result.error_kind = kind
            result.error = message if kind in (ErrorKind.BLOCKED, ErrorKind.DNS) else f"{kind.value} error: {message}"
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            kind = ErrorKind.TLS if _caused_by(exc, ssl.SSLError) else ErrorKind.NETWORK
            reset = _caused_by(exc, ConnectionResetError) or "reset" in str(exc).lower()
            detail = "connection reset by peer" if reset else f"{type(exc).__name__}: {exc}"
            result.error_kind, result.error = kind, f"{kind.value} error: {detail}"
        finally:
            set_deadline(None)
            result.elapsed = time.monotonic() - started
        # error texts may quote a URL (a redirect loop, an exception's message); its
        # credentials go here, where the text is made, not at each place that shows it
        if result.error:
            result.error = redact(result.error)
        result.body = b""
        return result

    def _one(self, url: str, headers: Mapping[str, str], max_bytes: int, deadline: float,
             auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        # auth=None would let httpx take user information from the URL; there is none
        # (split off in get), and an explicit empty Auth says so
        with self._client.stream("GET", url, headers=headers,
                                 auth=httpx.BasicAuth(*auth) if auth else httpx.Auth()) as response:
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status_code in REDIRECT_CODES or response.status_code == 304:
                return response.status_code, resp_headers, b""
            declared = resp_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes * 4:
                # compressed bodies may legitimately be smaller than decoded; 4x slack
                raise FetchAborted(ErrorKind.TOO_LARGE, f"Content-Length {declared} exceeds cap {max_bytes}")
            decoder = _Decoder(resp_headers.get("content-encoding", ""), max_bytes)
            for chunk in response.iter_raw():
                decoder.feed(chunk)
                if time.monotonic() > deadline:
                    raise FetchAborted(ErrorKind.TIMEOUT, f"response not complete after "
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
            raise FetchAborted(ErrorKind.ENCODING, f"unsupported Content-Encoding {encoding!r}")

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
            raise FetchAborted(ErrorKind.ENCODING, f"corrupt compressed body: {exc}") from exc

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise FetchAborted(ErrorKind.TOO_LARGE, f"body exceeds cap of {self.max_bytes} bytes")
        if data:
            self.parts.append(data)

    def finish(self) -> bytes:
        if self.zlib is not None:
            self._add(self.zlib.flush())
        return b"".join(self.parts)


def _with_userinfo(url: str, source: str) -> str:
    """``url`` with the user information of ``source`` (as written there)."""
    userinfo = urlsplit(source).netloc.rpartition("@")[0]
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


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
        raise FetchAborted(ErrorKind.SCHEME, f"refused scheme {scheme or '(none)'!r}: only http and https")


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
