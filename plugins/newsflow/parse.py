"""Feed parsing: bytes → ParsedFeed, with feedparser doing the hard part.

feedparser copes with RSS 0.9x/1.0/2.0, Atom 0.3/1.0, broken XML and odd encodings;
we add what it leaves to us: a stable identity per item, absolute links, UTC dates,
plain-text summaries, and a guard against XML entity tricks.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import datetime, timezone

import feedparser

from . import validate
from .config import Settings
from .models import ParsedEntry, ParsedFeed
from .normalize import clean_text, html_to_text
from .redaction import split_credentials

# An internal DTD subset is the vehicle of "billion laughs" and external-entity attacks;
# news feeds need at most a few character entities (&nbsp; style) from one. A subset
# whose every declaration is such a short literal is kept; any other subset (nested
# references, parameter entities, SYSTEM/PUBLIC entities, long values) is removed
# before any XML parser sees it. Only the prolog (before the root element) is searched.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)
_ROOT = re.compile(rb"<[A-Za-z_]")
_PROLOG_NOISE = re.compile(rb"<!--.*?-->|<\?.*?\?>", re.S)
_DTD_TOKEN = re.compile(rb"\"[^\"]*\"|'[^']*'|<!--.*?-->|[\[\]>]", re.S)
_SAFE_DECL = re.compile(rb"""<!ENTITY\s+[\w.:-]+\s+("(?:&\#x?[0-9a-fA-F]+;|[^&%"<]{0,32})"|'(?:&\#x?[0-9a-fA-F]+;|[^&%'<]{0,32})')\s*>""")
MAX_DOCTYPE_PASSES = 4
# feedparser's complaints about the HTTP labels, not the document
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)

# feedparser would otherwise fetch a URL if handed one; we only ever give it bytes.
feedparser.RESOLVE_RELATIVE_URIS = True
feedparser.SANITIZE_HTML = True


def parse_feed(body: bytes, url: str, guid_mode: str = "guid",
               content_type: str | None = None, now: datetime | None = None,
               settings: Settings | None = None) -> ParsedFeed:
    """Parse one feed document. Never raises: a document nothing can be made of is an
    ``error``; an item that cannot be made into an entry is skipped and counted in the
    ``warning``, and the other items are kept."""
    settings = settings or Settings()
    now = now or datetime.now(timezone.utc)
    warnings: list[str] = []
    if not body or not body.strip():
        return ParsedFeed(entries=[], error="empty response body")
    body, removed = strip_unsafe_doctype(body)
    if removed:
        warnings.append(f"document type declaration removed: {removed}")
    body, scrubbed = validate.scrub_document(body)
    if scrubbed:
        warnings.append(f"{scrubbed} character reference(s) to characters XML forbids replaced")
    # feedparser resolves relative links (and hrefs in HTML text) against this address:
    # a feed's credentials must not travel into them (newsflow.redaction)
    url = split_credentials(url)[0]
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
        detail = f"{type(reason).__name__}: {reason}" if reason else "unknown format"
        if not version:
            return ParsedFeed(entries=[], error=f"not a feed: {detail}")
        # a broken document that yields nothing (truncated, garbled): an error, so the
        # feed's health shows it, rather than a silent "no new entries". A well-formed
        # feed that merely has an odd Content-Type or charset label is just empty.
        if not isinstance(reason, _BENIGN_BOZO):
            return ParsedFeed(entries=[], error=f"malformed {version} feed with no usable items: {detail}")
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        warnings.append(_clip(f"{type(exc).__name__}: {exc}" if exc else "malformed feed"))
    base = parsed.get("href") or url
    entries, skipped = _entries(parsed.entries, base, guid_mode, now, settings)
    # Bad GUIDs (shared by different items) would make items vanish: judge the document
    # and, if needed, re-identify its items by a stronger key. The caller stores the mode.
    while guid_mode != "link_title_date" and (reason := identity_problem(entries, guid_mode)):
        guid_mode = "link" if guid_mode == "guid" else "link_title_date"
        warnings = [w for w in warnings if not w.startswith("identity downgraded")]
        warnings.append(f"identity downgraded to {guid_mode}: {reason}")
        entries, skipped = _entries(parsed.entries, base, guid_mode, now, settings)
    if skipped:
        warnings.append(f"{len(skipped)} item(s) skipped: {'; '.join(sorted(set(skipped))[:3])}")
    ttl = None
    raw_ttl = parsed.feed.get("ttl")
    if raw_ttl and str(raw_ttl).strip().isdigit() and len(str(raw_ttl).strip()) < 7:
        ttl = int(str(raw_ttl).strip()) * 60  # RSS <ttl> is in minutes
    return ParsedFeed(entries=dedupe_within_feed(entries), ttl=ttl, warning="; ".join(warnings) or None,
                      guid_mode=guid_mode)


def _clip(message: str, size: int = 300) -> str:
    message = validate.text(message, size, "message", []) or ""
    return message


def _entries(items, base: str, guid_mode: str, now: datetime,
             settings: Settings) -> tuple[list[ParsedEntry], list[str]]:
    """The items that make entries, and why the others were skipped. One item never costs
    the document: whatever goes wrong with it is its own reason to be skipped."""
    entries, skipped = [], []
    for item in items:
        try:
            entry = _entry(item, base, guid_mode, now, settings)
        except Exception as exc:  # a parser quirk on one hostile item
            skipped.append(_clip(f"{type(exc).__name__}: {exc}", 120))
            continue
        if entry is None:
            skipped.append("no link, title or text")
        else:
            entries.append(entry)
    return entries, skipped


def strip_unsafe_doctype(body: bytes) -> tuple[bytes, str | None]:
    """Remove an internal DTD subset that could expand or fetch entities; (body, why)."""
    body = _utf8_if_wide(body)
    why = None
    for _ in range(MAX_DOCTYPE_PASSES):
        match = _DOCTYPE.search(body)
        if not match:
            break
        before = _PROLOG_NOISE.sub(b"", body[:match.start()])
        if _ROOT.search(before):
            break  # the text "<!DOCTYPE" inside the document, not a declaration
        subset_start = end = None
        depth = 0
        for token in _DTD_TOKEN.finditer(body, match.end()):
            t = token.group()
            if t == b"[":
                depth += 1
                subset_start = token.end() if subset_start is None else subset_start
            elif t == b"]":
                depth = max(0, depth - 1)
            elif t == b">" and depth == 0:
                end = token.end()
                break
        if end is None:
            return body[:match.start()], "unterminated document type declaration"
        if subset_start is None:
            if why is None:
                break  # <!DOCTYPE rss PUBLIC "..." "...">: harmless (and tells RSS 0.91)
            # a second DOCTYPE after a removed one: drop it as well
            body = body[:match.start()] + body[end:]
            continue
        subset = body[subset_start:body.rindex(b"]", subset_start, end)]
        leftover = _SAFE_DECL.sub(b"", subset)
        leftover = _PROLOG_NOISE.sub(b"", leftover).strip()
        if not leftover:
            break  # only short literal entities: safe to let the parser expand them
        why = "entity declarations (possible entity expansion or external entity)"
        name = body[match.end():subset_start - 1]
        body = body[:match.start()] + b"<!DOCTYPE" + name.rstrip() + b">" + body[end:]
    return body, why


def _utf8_if_wide(body: bytes) -> bytes:
    """UTF-16/32 documents with a DOCTYPE are re-encoded as UTF-8 so the guard sees it."""
    head = body[:4]
    codec = None
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        codec = "utf-32"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif head == b"\x00\x00\x00<":
        codec = "utf-32-be"
    elif head == b"<\x00\x00\x00":
        codec = "utf-32-le"
    elif head[:2] == b"\x00<":
        codec = "utf-16-be"
    elif head[:2] == b"<\x00":
        codec = "utf-16-le"
    if codec is None:
        return body
    text = body.decode(codec, errors="replace").lstrip("\ufeff")
    if not re.search("<!DOCTYPE", text[:65536], re.I):
        return body
    text = re.sub(r"""^(<\?xml[^>]*?encoding\s*=\s*["'])[^"']*""", r"\1utf-8", text)
    return text.encode("utf-8")


def _entry(item, base: str, guid_mode: str, now: datetime, settings: Settings) -> ParsedEntry | None:
    """One item through the validation boundary (see newsflow.validate)."""
    notes: list[str] = []
    raw_link = item.get("link")
    link = None if raw_link is None else validate.url(str(raw_link), settings, "link", notes, base=base)
    # scrubbed before clean_text, which would drop the controls without a note
    title = validate.text(clean_text(validate.scrub(_as_text(item, "title"), "title", notes)),
                          settings.max_title_chars, "title", notes)
    summary = validate.text(_best_text(item, notes), settings.max_summary_chars, "summary", notes)
    _unreadable_dates(item, notes)
    published = validate.date(entry_date(item), settings, "date", notes, now)
    updated = validate.date(entry_date(item, ("updated_parsed",)), settings, "updated date", notes, now)
    raw_guid = validate.guid(_text(item.get("id")), notes)
    if not (link or title or summary):
        return None  # nothing to identify or show
    guid = validate.identity(entry_identity(raw_guid, link, title, published, guid_mode), settings, notes)
    author = validate.text(clean_text(validate.scrub(_text(item.get("author")), "author", notes)),
                           settings.max_author_chars, "author", notes)
    return ParsedEntry(guid=guid, link=link, title=title, summary=summary, author=author,
                       published_at=published, raw_guid=raw_guid, notes=tuple(notes), updated_at=updated)


def _text(value) -> str:
    """A feedparser field as a string (hostile documents give odd types)."""
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _plain(value, content_type: str | None) -> str:
    """Plain text of a feed field: HTML (escaped or not) is turned into text once; a
    field the feed marks as plain text (Atom type="text") is taken as it is."""
    value = _text(value)
    return value if content_type == "text/plain" else html_to_text(value)


def _as_text(item, key: str) -> str:
    detail = item.get(f"{key}_detail") or {}
    return _plain(item.get(key), detail.get("type") if hasattr(detail, "get") else None)


def entry_identity(raw_guid: str | None, link: str | None, title: str | None,
                   published: datetime | None, mode: str = "guid") -> str:
    """guid → link → hash of link+title+date, downgraded per feed when GUIDs are bad."""
    if mode == "guid" and raw_guid:
        return raw_guid
    if mode in ("guid", "link") and link:
        return link
    digest = hashlib.sha1("\x1f".join([link or "", title or "",
                                       published.isoformat() if published else ""]).encode()).hexdigest()
    return f"sha1:{digest}"


def entry_date(item, keys=("published_parsed", "updated_parsed", "created_parsed")) -> datetime | None:
    """The item's own date (published, else updated, else created), as feedparser read it;
    its range is judged by the validation boundary. ``keys``: which dates, in order."""
    for key in keys:
        struct = item.get(key)
        if struct:
            try:
                return datetime.fromtimestamp(calendar.timegm(struct), tz=timezone.utc)
            except (OverflowError, ValueError, OSError, TypeError):
                continue
    return None


def _unreadable_dates(item, notes: list[str]) -> None:
    """A note for each date the item gives that feedparser could not read ("-1", "NaN"):
    the entry goes on without it, and says so."""
    for key in ("published", "updated", "created"):
        raw = item.get(key)
        if raw and not item.get(f"{key}_parsed"):
            shown = validate.text(_text(raw), 60, key, []) or ""
            notes.append(f"{key} date {shown!r} is not a date: dropped")


def _best_text(item, notes: list[str]) -> str | None:
    """The longest of the item's content and summary, as plain text."""
    candidates = [_plain(c.get("value"), c.get("type")) for c in item.get("content") or []
                  if hasattr(c, "get")]
    candidates.append(_as_text(item, "summary"))
    texts = [clean_text(validate.scrub(c, "summary", notes)) for c in candidates if c]
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
