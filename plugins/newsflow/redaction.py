"""Secrets out of sight: credentials in URLs are replaced wherever a URL is shown or logged.

Feed URLs may carry ``user:password@`` (they are needed to fetch, and stay in
``news.feeds.url``), and so does the database URL. Every message, log line, error text
and fetch-log row shows feed URLs as ``https://***@host/…``, and the database as
``postgresql://user:***@host/db`` (the user is worth knowing when access is refused).
"""

from __future__ import annotations

import re

# scheme://userinfo@ — userinfo is anything up to the first @ before the host part.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s]+):[^/?#@\s]*@")
_DSN_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def redact(text: str | None, *, keep_user: bool = False) -> str:
    """``text`` with every URL's user information (``keep_user``: only its password) and
    every ``password=...`` of a key=value connection string replaced by ``***``."""
    if not text:
        return text or ""
    text = _PASSWORD.sub(r"\1:***@", text) if keep_user else _USERINFO.sub(r"\1***@", text)
    return _DSN_PASSWORD.sub("password=***", text)
