"""The validation boundary: everything that comes from outside passes here once.

Feed items (``parse``), page metadata and extracted text (``extract``) become the
pipeline's typed records only through these functions, so no later stage (and no
database column) sees a NUL, a lone surrogate, a control character, an unbounded field,
a year-0001 date or a ``javascript:`` link:

* text: NUL, lone surrogates, control characters (other than newline and tab) and
  bidirectional formatting controls (U+061C, U+200E/F, U+202A–E, U+2066–9) removed, NFC,
  cut at the field's documented cap (``NEWSFLOW_MAX_*_CHARS``);
* identities (GUIDs, or links used as identities) longer than ``max_guid_bytes`` in UTF-8
  are replaced by their sha256 (one per item still; a b-tree index row has ~2.7 kB);
* links, canonical and image URLs: absolute http(s), no whitespace, control or bidi
  characters, at most ``max_url_bytes`` in UTF-8; anything else is dropped, with a note;
  user information (``user:password@``) is removed, and a feed item's link that names the
  feed document itself (Atom ``<link href=""/>``) is dropped;
* dates: kept only from ``min_year`` to now + ``max_future_seconds``; a date the feed or
  page gives that cannot be read (``-1``, ``NaN``) is dropped with a note;
* language codes: a BCP 47-shaped tag (``en``, ``pt-BR``) kept as its primary subtag
  (``en``, ``pt``), else dropped.

Every change is a *note* ("title cut to 1000 characters", "date 0001-01-01 out of
range, dropped"): the entry keeps them (``news.entries.notes``), so a cleaned record is
never silently different from what the publisher sent.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

from .config import Settings
from .models import Extracted
from .redaction import redact, same_origin, split_credentials

# NUL and C0/C1 controls except tab and newline (carriage returns become newlines first),
# lone surrogates, and the non-characters U+FFFE/U+FFFF.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Bidirectional formatting controls (marks, embeddings, overrides, isolates): invisible,
# they reorder what a reader sees ("Trojan Source"; an RLO makes "gpj.exe" read "exe.jpg"),
# and a title or link that needs them to be read right is rarer than one abusing them.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
# numeric character references to what XML forbids: surrogates, NUL and C0 controls,
# beyond U+10FFFF. feedparser's fallback parser crashes on "&#xD800;".
_BAD_CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")


def scrub(value: str, what: str, notes: list[str]) -> str:
    """``value`` without NUL, controls (carriage returns become newlines), lone surrogates
    and non-characters, with a note when any were there. Callers that clean text further
    (``normalize.clean_text``) scrub first, so the note is not lost."""
    s = value.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = _UNWANTED.sub("", s)
    note = f"{what}: control characters, NUL or lone surrogates removed"
    if cleaned != s and note not in notes:
        notes.append(note)
    visible = _BIDI.sub("", cleaned)
    note = f"{what}: bidirectional control characters removed"
    if visible != cleaned and note not in notes:
        notes.append(note)
    return visible


def text(value: object, cap: int, what: str, notes: list[str]) -> str | None:
    """A clean, bounded string (None when nothing is left)."""
    if value is None:
        return None
    cleaned = scrub(value if isinstance(value, str) else str(value), what, notes)
    cleaned = unicodedata.normalize("NFC", cleaned).strip()
    if len(cleaned) > cap:
        notes.append(f"{what} cut to {cap} characters (was {len(cleaned)})")
        cleaned = cleaned[:cap].rstrip()
    return cleaned or None


def guid(value: str | None, notes: list[str]) -> str | None:
    """A feed item's own id, clean (its length is bounded by :func:`identity`)."""
    return text(value, 1 << 30, "guid", notes)


def identity(value: str, settings: Settings, notes: list[str]) -> str:
    """An entry's identity (guid, link or hash) as stored: too long ones (in UTF-8 bytes)
    become their sha256, so the (feed, identity) index can always hold it."""
    size = len(value.encode("utf-8"))
    if size <= settings.max_guid_bytes:
        return value
    notes.append(f"identity of {size} bytes replaced by its sha256")
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def url(value: str | None, settings: Settings, what: str, notes: list[str], *,
        base: str | None = None) -> str | None:
    """An absolute http(s) URL fit to store and fetch, or None (with a note saying why).
    ``base``: a relative ``value`` is resolved against it first (a feed item's link)."""
    if value is None:
        return None
    raw = value.strip() if isinstance(value, str) else str(value)
    if not raw:
        notes.append(f"{what} is empty")
        return None
    if base:
        # the feed's own credentials stay with the feed request: a relative link is
        # resolved against the feed's address without them (feedparser resolves links
        # itself, against the address it was given: poll gives it none with credentials)
        base = split_credentials(base)[0]
        try:
            raw = urljoin(base, raw)
        except ValueError:  # "http://[" and the like: urljoin parses before it joins
            notes.append(f"{what} {redact(raw)[:80]!r} is not a valid URL: dropped")
            return None
    shown = _shown(raw)
    size = len(raw.encode("utf-8", "replace"))
    if size > settings.max_url_bytes:
        notes.append(f"{what} of {size} bytes is longer than {settings.max_url_bytes}: dropped")
        return None
    if _URL_FORBIDDEN.search(raw) or _UNWANTED.search(raw) or _BIDI.search(raw):
        notes.append(f"{what} {_UNWANTED.sub('?', shown)!r} contains spaces or control characters: dropped")
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        notes.append(f"{what} {shown!r} is not a valid URL: dropped")
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        notes.append(f"{what} {shown!r} is not an absolute http(s) URL: dropped")
        return None
    raw, credentials = split_credentials(raw)
    if credentials:  # never stored, shown or sent with a page request
        notes.append(f"{what} {_shown(raw)!r}: user name and password removed")
    if base and _same_document(raw, base):
        # Atom <link href=""/> (or "#", or the feed's own URL) names the feed document:
        # fetched as a page, the feed's XML would be loaded as the item's article
        notes.append(f"{what} {_shown(raw)!r} is the feed's own address, not an article: dropped")
        return None
    return raw


def _shown(raw: str) -> str:
    """A URL fit for a note: credentials redacted first, then cut (a cut could split them)."""
    shown = redact(raw)
    return shown[:80] + ("…" if len(shown) > 80 else "")


def _same_document(link: str, feed: str) -> bool:
    """Does ``link`` name the document at ``feed`` (fragments and a default port aside)?"""
    a, b = urlsplit(link), urlsplit(feed)
    return same_origin(link, feed) and (a.path or "/", a.query) == (b.path or "/", b.query)


def date(value: datetime | None, settings: Settings, what: str, notes: list[str],
         now: datetime | None = None) -> datetime | None:
    """An aware UTC date within [min_year, now + max_future_seconds], else None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    if value.year < settings.min_year:
        notes.append(f"{what} {value:%Y-%m-%d} is before {settings.min_year}: dropped")
        return None
    if value > now + timedelta(seconds=settings.max_future_seconds):
        notes.append(f"{what} {value:%Y-%m-%d} is in the future: dropped")
        return None
    return value.astimezone(timezone.utc)


def language(value: str | None, notes: list[str]) -> str | None:
    if not value:
        return None
    candidate = str(value).strip()
    if len(candidate) <= 35 and _LANGUAGE.match(candidate):
        # the primary subtag (ISO 639): "en-US" and "en" are one language for consumers
        return candidate.replace("_", "-").split("-")[0].lower()
    notes.append(f"language {candidate[:40]!r} is not a language tag: dropped")
    return None


def page(found: Extracted, settings: Settings) -> tuple[Extracted, list[str]]:
    """Extraction output (page metadata and text) made fit for the records; (page, notes)."""
    from .normalize import to_utc

    notes: list[str] = []
    when = None
    if found.date:
        when = to_utc(found.date)
        if when is None:
            notes.append(f"page date {text(found.date, 60, 'page date', []) or ''!r} is not a date: dropped")
        when = date(when, settings, "page date", notes)
    cleaned = replace(
        found,
        text=text(found.text, settings.max_body_chars, "page text", notes),
        title=text(found.title, settings.max_title_chars, "page title", notes),
        author=text(found.author, settings.max_author_chars, "page author", notes),
        date=when.isoformat() if when else None,
        site_name=text(found.site_name, settings.max_title_chars, "site name", notes),
        language=language(found.language, notes),
        canonical_url=url(found.canonical_url, settings, "canonical URL", notes),
        image=url(found.image, settings, "image URL", notes),
        error=text(found.error, 2000, "error", []),
    )
    return cleaned, notes


def scrub_document(body: bytes) -> tuple[bytes, int]:
    """Replace character references to surrogates, NUL and C0 controls (which no XML
    allows and which crash feedparser's fallback parser) by U+FFFD; (body, how many)."""
    count = 0

    def fix(match: re.Match) -> bytes:
        nonlocal count
        ref = match.group(1)
        try:
            code = int(ref[1:], 16) if ref[:1] in (b"x", b"X") else int(ref)
        except ValueError:
            return match.group(0)
        if (code < 0x20 and code not in (9, 10, 13)) or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            count += 1
            return b"&#xFFFD;"
        return match.group(0)

    if b"&#" not in body:
        return body, 0
    return _BAD_CHARREF.sub(fix, body), count
