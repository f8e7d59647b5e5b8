"""Normalisation: canonical URLs, clean Unicode text, content hashes, UTC dates.

URL canonicalisation is courlan's (trafilatura's own URL library: lower-cased host,
default port dropped, ~40 tracking-parameter families removed, query sorted); we add
fragment removal and a few tracking parameters courlan keeps.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from courlan import normalize_url
from dateutil import parser as dateparser

# Parameters that only say how a reader arrived; courlan already drops utm_*, fbclid,
# gclid, mc_*, ga_* and friends.
EXTRA_TRACKING = {"ref", "ref_src", "ref_url", "cmpid", "ncid", "ocid", "smid", "s_cid",
                  "sr_share", "__twitter_impression", "src", "xtor", "at_medium",
                  "at_campaign", "traffic_source", "taid"}

_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
_BARE_NUMBER = re.compile(r"[-+]?\d{0,4}(?:\.\d*)?")
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "tr", "section", "article", "pre", "ul", "ol", "table"}


def canonical_url(url: str) -> str:
    """The form of a URL under which one article is stored once."""
    url = url.strip()
    try:
        normalised = normalize_url(url)
    except (ValueError, AttributeError):
        normalised = url
    parts = urlsplit(normalised)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in EXTRA_TRACKING]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path,
                       urlencode(sorted(query)), ""))


def clean_text(text: str) -> str:
    """NFC, unified whitespace, at most one blank line between paragraphs."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    lines = [_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (feed titles and summaries of type HTML), paragraphs
    kept apart and character references decoded exactly once ("Jupiter&#x27;s" ->
    "Jupiter's"); text that is already plain is not for this function."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return html.unescape(fragment)
    from lxml import html as lxml_html
    from lxml.etree import ParserError

    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except (ParserError, ValueError):
        return html.unescape(re.sub(r"<[^>]+>", " ", fragment))
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS:
            el.tail = "\n\n" + (el.tail or "")
    return root.text_content()


def content_hash(body: str) -> str:
    """sha256 over the body's words, lower-cased: whitespace and case never split a copy."""
    words = _WORD.findall(body.lower())
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def own_hash(body: str, canonical: str) -> str:
    """The content hash of a text too short to tell articles apart ("***", "📷 📷",
    "Video"): tied to its own URL, so it never matches another article's."""
    return "url:" + hashlib.sha256(f"{canonical}\x1f{body}".encode("utf-8")).hexdigest()


def word_count(body: str) -> int:
    return len(_WORD.findall(body))


def to_utc(value: str | datetime | None) -> datetime | None:
    """Any date string or datetime → aware UTC datetime; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if _BARE_NUMBER.fullmatch(value.strip()):
            return None  # "-1", "0", "2026": dateutil would fill in today's month and day
        try:
            value = dateparser.parse(value)
        except (ValueError, OverflowError, TypeError):
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def split_authors(value: str | None) -> list[str]:
    if not value:
        return []
    parts = re.split(r";|\band\b|\|", value)
    return [clean_text(p).strip(" ,") for p in parts if clean_text(p).strip(" ,")]


def drop_leading_title(body: str, titles: list[str | None]) -> str:
    """Remove a headline that extraction left as the body's first line.

    Copies of one story carry different headlines; keeping them in the body would only
    add noise to the content hash and the shingles.
    """
    first, _, rest = body.partition("\n")
    wanted = {content_hash(t) for t in titles if t}
    if rest and content_hash(first) in wanted:
        return rest.lstrip("\n")
    return body
