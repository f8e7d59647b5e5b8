"""The feed registry: FEEDS.yaml read, validated and turned into FeedSpecs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .models import FeedSpec

_ALLOWED_KEYS = {"url", "publisher", "name", "enabled", "poll_interval", "tags", "language"}


class FeedsFileError(ValueError):
    """FEEDS.yaml is unusable; the message names the file and the entry."""


def load_feeds_file(path: str | Path) -> list[FeedSpec]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeedsFileError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise FeedsFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_feeds(data, source=str(path))


def parse_feeds(data: Any, source: str = "feeds") -> list[FeedSpec]:
    if not isinstance(data, dict) or not isinstance(data.get("feeds"), list):
        raise FeedsFileError(f"{source}: expected a top-level `feeds:` list")
    specs: list[FeedSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(data["feeds"], start=1):
        # "item 10 of the feeds list", never "feed #10": feed ids are something else
        where = f"{source}: item {i} of the feeds list"
        if not isinstance(item, dict):
            raise FeedsFileError(f"{where}: expected a mapping with url and publisher")
        if item.get("url"):
            where += f" (url {str(item['url']).strip()})"
        unknown = set(item) - _ALLOWED_KEYS
        if unknown:
            raise FeedsFileError(f"{where}: unknown keys {sorted(unknown)}")
        url = str(item.get("url") or "").strip()
        publisher = str(item.get("publisher") or "").strip()
        if not url or not publisher:
            raise FeedsFileError(f"{where}: `url` and `publisher` are required")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise FeedsFileError(f"{where}: url {url!r} is not an absolute http(s) URL")
        if url in seen:
            raise FeedsFileError(f"{where}: duplicate url {url}")
        seen.add(url)
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
