"""The feed registry: FEEDS.yaml read, validated and turned into FeedSpecs.

* One feed per URL: URLs are compared in a canonical spelling (scheme and host lower
  case, default port, empty query and fragment dropped), so ``HTTP://Example.com/rss?``
  and ``http://example.com/rss`` are one feed; a second listing is a warning, and the
  first one wins.
* Errors name the file, the line and the feed's URL (credentials hidden).
* PyYAML's C loader (libyaml) when it is available: a 10,000-feed file parses in a
  fraction of the pure-Python loader's time. :func:`read_file` gives the sha256 of the
  bytes, which lets a sync skip a file that has not changed (``pipeline.sync_file``).
* Warnings (a feed listed twice, ...) are returned, not logged: each caller reports them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .models import FeedSpec
from .redaction import redact


_ALLOWED_KEYS = {"url", "publisher", "name", "enabled", "poll_interval", "tags", "language"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FeedsFileError(ValueError):
    """FEEDS.yaml is unusable; the message names the file, the line and the feed."""


@dataclass
class FeedsFile:
    specs: list[FeedSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Mapping(dict):
    line: int = 0  # where the mapping starts in the file, 1-based


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (C when available) that remembers each mapping's line."""


def _construct_mapping(loader, node):
    data = _Mapping()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def read_file(path: str | Path) -> tuple[bytes, str]:
    """The file's bytes and their sha256 (what a sync compares to skip unchanged files)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FeedsFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise FeedsFileError(f"{path}: cannot be read: {exc.strerror}") from None
    return raw, hashlib.sha256(raw).hexdigest()


def parse_file(path: str | Path, raw: bytes | None = None) -> FeedsFile:
    """Read (unless ``raw`` is given) and validate a feeds file."""
    if raw is None:
        raw, _ = read_file(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedsFileError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); "
                             "save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise FeedsFileError(f"{path}: not valid YAML: {exc}") from None
    result = FeedsFile()
    result.specs = parse_feeds(data, source=str(path), warnings=result.warnings)
    return result


def feed_url_key(url: str) -> str:
    """The canonical spelling of a feed URL: lower-case scheme and host, no default port,
    no empty query, no fragment. Path and query are the publisher's and stay as they are."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    if parts.username is not None or parts.password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def parse_feeds(data: Any, source: str = "feeds", warnings: list[str] | None = None) -> list[FeedSpec]:
    warnings = [] if warnings is None else warnings
    if not isinstance(data, dict) or not isinstance(data.get("feeds"), list):
        raise FeedsFileError(f"{source}: expected a top-level `feeds:` list")
    specs: list[FeedSpec] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(data["feeds"], start=1):
        line = getattr(item, "line", 0)
        where = f"{source}:{line}: list item {i}" if line else f"{source}: list item {i}"
        if not isinstance(item, dict):
            raise FeedsFileError(f"{where}: expected a mapping with url and publisher")
        raw_url = str(item.get("url") or "").strip()
        if raw_url:
            where += f" ({redact(raw_url)})"
        unknown = set(item) - _ALLOWED_KEYS
        if unknown:
            raise FeedsFileError(f"{where}: unknown keys {sorted(unknown)}")
        publisher = str(item.get("publisher") or "").strip()
        if not raw_url or not publisher:
            raise FeedsFileError(f"{where}: `url` and `publisher` are required")
        try:
            parts = urlsplit(raw_url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise FeedsFileError(f"{where}: url is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FeedsFileError(f"{where}: url {redact(raw_url)!r} is not an absolute http(s) URL")
        url = feed_url_key(raw_url)
        if url in seen:
            warnings.append(f"{where}: the same feed as {seen[url]}; this listing is ignored")
            continue
        seen[url] = where.split(": ", 1)[0] if line else where
        interval = item.get("poll_interval")
        if interval is not None:
            interval = parse_interval(interval, where)
        tags = item.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        specs.append(FeedSpec(
            url=url, publisher=publisher, name=item.get("name"),
            enabled=bool(item.get("enabled", True)), poll_interval=interval,
            tags=tuple(str(t) for t in tags), language=item.get("language"),
        ))
    return specs


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: Any, where: str = "poll_interval") -> int:
    """Seconds from 900, "900", "15m", "1h" or "1d"."""
    text = str(value).strip().lower()
    try:
        if text[-1:] in _UNITS:
            seconds = int(float(text[:-1]) * _UNITS[text[-1]])
        else:
            seconds = int(text)
    except ValueError:
        raise FeedsFileError(f"{where}: poll_interval {value!r} is not a number of seconds "
                             "or a duration like 15m / 1h") from None
    if seconds <= 0:
        raise FeedsFileError(f"{where}: poll_interval must be positive")
    return seconds
