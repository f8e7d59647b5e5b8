"""Feed parsing: bytes → ParsedFeed, with feedparser doing the hard part.

feedparser copes with RSS 0.9x/1.0/2.0, Atom 0.3/1.0, broken XML and odd encodings;
we add what it leaves to us: a stable identity per item, absolute links, UTC dates,
plain-text summaries, and a guard against XML entity tricks.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin

import feedparser

from .models import ParsedEntry, ParsedFeed
from .normalize import clean_text, html_to_text

# An internal DTD subset is the vehicle of "billion laughs" and external-entity attacks;
# news feeds have no use for one, so it is removed before any XML parser sees it.
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[.*?\]\s*>", re.S | re.I)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)
FUTURE_TOLERANCE = timedelta(days=1)

# feedparser would otherwise fetch a URL if handed one; we only ever give it bytes.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True


def parse_feed(body: bytes, url: str, guid_mode: str = "guid",
               content_type: str | None = None, now: datetime | None = None) -> ParsedFeed:
    now = now or datetime.now(timezone.utc)
    warning = None
    if not body or not body.strip():
        return ParsedFeed(entries=[], error="empty response body")
    head = body[:65536]
    if _ENTITY_DECL.search(head):
        body = _DOCTYPE_SUBSET.sub(b"", body, count=1)
        warning = "document type declaration with entities removed"
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(body, response_headers=headers)
    except Exception as exc:  # feedparser is defensive, but never trust a parser with strangers' bytes
        return ParsedFeed(entries=[], error=f"parser crashed: {type(exc).__name__}: {exc}")
    if parsed.get("bozo") and not parsed.entries:
        version = parsed.get("version") or ""
        reason = parsed.get("bozo_exception")
        if not version:
            return ParsedFeed(entries=[], error=f"not a feed: {type(reason).__name__}: {reason}"
                              if reason else "not a feed")
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        warning = f"{type(exc).__name__}: {exc}" if exc else (warning or "malformed feed")
    base = parsed.get("href") or url
    entries = [e for e in (_entry(item, base, guid_mode, now) for item in parsed.entries) if e]
    # Bad GUIDs (shared by different items) would make items vanish: judge the document
    # and, if needed, re-identify its items by a stronger key. The caller stores the mode.
    while guid_mode != "link_title_date" and (reason := identity_problem(entries, guid_mode)):
        guid_mode = "link" if guid_mode == "guid" else "link_title_date"
        warning = f"identity downgraded to {guid_mode}: {reason}"
        entries = [e for e in (_entry(item, base, guid_mode, now) for item in parsed.entries) if e]
    ttl = None
    raw_ttl = parsed.feed.get("ttl")
    if raw_ttl and str(raw_ttl).strip().isdigit():
        ttl = int(str(raw_ttl).strip()) * 60  # RSS <ttl> is in minutes
    return ParsedFeed(entries=dedupe_within_feed(entries), title=parsed.feed.get("title"),
                      ttl=ttl, warning=warning, guid_mode=guid_mode)


def _entry(item, base: str, guid_mode: str, now: datetime) -> ParsedEntry | None:
    link = item.get("link")
    if link:
        link = urljoin(base, link.strip())
        if not link.startswith(("http://", "https://")):
            link = None
    title = clean_text(html_to_text(item.get("title") or "")) or None
    summary = _best_text(item)
    published = entry_date(item, now)
    raw_guid = (item.get("id") or "").strip() or None
    if not (link or title or summary):
        return None  # nothing to identify or show
    guid = entry_identity(raw_guid, link, title, published, guid_mode)
    author = clean_text(item.get("author") or "") or None
    return ParsedEntry(guid=guid, link=link, title=title, summary=summary, author=author,
                       published_at=published, raw_guid=raw_guid)


def entry_identity(raw_guid: str | None, link: str | None, title: str | None,
                   published: datetime | None, mode: str = "guid") -> str:
    """guid → link → hash of link+title+date, downgraded per feed when GUIDs are bad."""
    if mode == "guid" and raw_guid:
        return raw_guid[:2000]
    if mode in ("guid", "link") and link:
        return link[:2000]
    digest = hashlib.sha1("\x1f".join([link or "", title or "",
                                       published.isoformat() if published else ""]).encode()).hexdigest()
    return f"sha1:{digest}"


def entry_date(item, now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        struct = item.get(key)
        if struct:
            try:
                when = datetime.fromtimestamp(calendar.timegm(struct), tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
            if when > now + FUTURE_TOLERANCE:
                return None  # a date in the future is a publisher's bug, not a fact
            return when
    return None


def _best_text(item) -> str | None:
    candidates = []
    for content in item.get("content") or []:
        candidates.append(content.get("value") or "")
    candidates.append(item.get("summary") or "")
    texts = [clean_text(html_to_text(c)) for c in candidates if c]
    texts = [t for t in texts if t]
    return max(texts, key=len) if texts else None


def dedupe_within_feed(entries: list[ParsedEntry]) -> list[ParsedEntry]:
    """A feed that lists the same item twice yields it once (first occurrence wins)."""
    seen: set[str] = set()
    unique = []
    for e in entries:
        if e.guid not in seen:
            seen.add(e.guid)
            unique.append(e)
    return unique


def identity_problem(entries: list[ParsedEntry], mode: str) -> str | None:
    """Why the identities of one document cannot be trusted under ``mode``, or None.

    The same identity on items that differ (another link or title) means the feed reuses
    ids: deduplicating by them would silently drop items.
    """
    variants: dict[str, set[tuple]] = {}
    for e in entries:
        variants.setdefault(e.guid, set()).add((e.link, e.title))
    repeated = sum(1 for v in variants.values() if len(v) > 1)
    if repeated:
        return f"{repeated} identit{'y' if repeated == 1 else 'ies'} shared by different items ({mode})"
    return None
