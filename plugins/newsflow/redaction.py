"""Secrets out of sight: credentials in URLs are replaced wherever a URL is shown or logged,
and they never travel further than the feed request they belong to.

Feed URLs may carry ``user:password@`` (they are needed to fetch, and stay in
``news.feeds.url``), and so does the database URL. Every message, log line, error text
and fetch-log row shows feed URLs as ``https://***@host/…``, and the database as
``postgresql://user:***@host/db`` (the user is worth knowing when access is refused).

:func:`split_credentials` takes the user information off a URL once, for the HTTP client
(which sends it as a Basic-auth header to the feed's own origin only) and for the
validation boundary (no link resolved from a feed keeps it).

A password may hold any character. ``@``, ``:`` and ``%`` are unambiguous; a raw ``/``,
``?`` or ``#`` (which a URL should percent-encode) ends the authority for a URL parser, so
:func:`redact` looks past it: the user information ends at the last ``@`` that is
followed by a host (and ``/``, ``?``, ``#`` or the end), unless everything before that
``@`` is a plain host with a path (``https://mastodon.social/@user.rss`` keeps its
``@user``). Where the text cannot tell (a host *with a port* before ``/@``, or an ``@``
further on in a URL that has user information: ``https://u:p@host/a/@b`` may be the
password ``p@host/a/``), it redacts up to the last such ``@``: showing too little is the
safe mistake.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_URL_START = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://")
# a URL in a message runs to the next whitespace; no user information is longer than this
_TOKEN = re.compile(r"\S{0,4096}")
# what may follow the user information's "@": a host (IPv6 literal or name), an optional
# port, then the end of the authority (a path, query, fragment, the end, or punctuation
# that closes a quoted or bracketed URL in a message)
_HOST_AFTER = re.compile(r"(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9._~!$&*+=%-]+)(?::\d*)?(?=[/?#'\"<>),;\]]|$)")
_BARE_HOST = re.compile(r"(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9._~!$&*+=%-]+)")
_DSN_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*(?:'|$)|\S+)")


def redact(text: str | None, *, keep_user: bool = False) -> str:
    """``text`` with every URL's user information (``keep_user``: only its password) and
    every ``password=...`` of a key=value connection string replaced by ``***``."""
    if not text:
        return text or ""
    out, pos = [], 0
    for start in _URL_START.finditer(text):
        if start.start() < pos:
            continue  # inside user information already replaced
        rest = _TOKEN.match(text, start.end()).group()
        end = userinfo_end(rest)
        if end is None:
            continue
        userinfo = rest[:end]
        user, colon, _ = userinfo.partition(":")
        shown = (f"{user}:***" if colon else userinfo) if keep_user else "***"
        out.append(text[pos:start.end()] + shown)
        pos = start.end() + end
    out.append(text[pos:])
    return _DSN_PASSWORD.sub("password=***", "".join(out))


def userinfo_end(rest: str) -> int | None:
    """Where the user information of a URL ends (the index of its ``@`` in ``rest``, the URL
    after ``scheme://``), or None when it has none. See the module's docstring."""
    at = len(rest)
    while (at := rest.rfind("@", 0, at)) >= 0:
        if not _HOST_AFTER.match(rest, at + 1):
            continue
        before = rest[:at]
        cut = re.split(r"[/?#]", before, maxsplit=1)
        if len(cut) == 1 or not _BARE_HOST.fullmatch(cut[0]):
            return at
    return None


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user information, and that information as (user, password),
    percent-decoded (None when it has none). The host is what follows the last ``@`` of
    the authority, as every URL parser reads it. A URL urllib cannot parse ("http://[")
    is returned as it is: nothing fetches it, and every message shows it redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=hostport))
    return clean, ((unquote(user), unquote(password)) if user or password else None)


def same_origin(a: str, b: str) -> bool:
    """Scheme, host and port alike (user information aside): where a feed's credentials may go."""
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        return ((pa.scheme.lower(), pa.hostname, pa.port or _default_port(pa.scheme))
                == (pb.scheme.lower(), pb.hostname, pb.port or _default_port(pb.scheme)))
    except ValueError:
        return False


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme.lower())
