"""Error kinds: why a fetch or an entry failed, and whether retrying can help. Their own
module, below the records and the HTTP client alike: both speak of them, and no stage
matches error strings."""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    """Why a fetch or an entry failed. ``permanent``: retrying will not fix it."""

    # no usable HTTP response (httpclient)
    TIMEOUT = "timeout"
    NETWORK = "network"
    DNS = "dns"
    TLS = "tls"
    HTTP = "http"  # a 4xx/5xx answer: permanence depends on the status (FetchResult)
    TOO_LARGE = "too_large"
    BLOCKED = "blocked"  # non-public address
    SCHEME = "scheme"  # not http(s)
    REDIRECT = "redirect"  # loop or too many hops
    ENCODING = "encoding"  # unknown Content-Encoding, corrupt compressed body
    # page rules (fetch, politeness)
    CONTENT_TYPE = "content_type"  # not a web page (PDF, image)
    DEFERRED = "deferred"  # the host asked us to wait (429/503 Retry-After)
    ROBOTS = "robots"  # robots.txt disallows the page
    ROBOTS_UNAVAILABLE = "robots_unavailable"  # robots.txt 5xx/unreachable: ask later
    # entries
    NO_LINK = "no_link"  # the feed item has no link to fetch
    NO_TEXT = "no_text"  # the page has no article text (or only a paywall notice)
    EXTRACTION = "extraction"  # extraction timed out or its worker died: may pass
    LOAD = "load"  # writing the entry's result failed (a record the database refuses)
    DATABASE = "database"  # a transient database error (deadlock, lock or statement timeout) outlasted its retries

    @property
    def permanent(self) -> bool:
        return self in _PERMANENT


_PERMANENT = {ErrorKind.TOO_LARGE, ErrorKind.BLOCKED, ErrorKind.SCHEME, ErrorKind.REDIRECT,
              ErrorKind.ENCODING, ErrorKind.CONTENT_TYPE, ErrorKind.ROBOTS, ErrorKind.NO_LINK,
              ErrorKind.NO_TEXT}
