"""Citations: which outlets an article's text says it draws on, and where.

Recognised attributions (each a :class:`Citation` with its kind and character position):

* ``via`` — a credit line: "(Via Reuters, NBC News & Sunday Times)", "Via Reuters",
  "Source: AFP", "Sources: Reuters, AP";
* ``according_to`` — "according to Reuters", "according to the New York Times";
* ``told`` — "told NBC News", "told The Sunday Times";
* ``reports`` — "the Sunday Times reports", "Reuters reported", "as CNN reported";
* ``dateline`` — "(AP) —", "BAGHDAD, Nov 20 (Reuters) -";
* ``credit`` — "Reuters contributed to this report", "originally published by Reuters",
  "This report is from Reuters".

Precision first: outside a credit line or a dateline, a name counts only when it is an
outlet — a known publisher (the feeds' publishers), a known agency or outlet (below), or
a capitalised name ending in an outlet word (News, Times, Post, Herald, ...). "according
to Colonel Okafor" or "told reporters" is no citation. Measured on a labelled sample:
bench/citations_eval.py, docs/events.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from .storage import citations as citation_store


@dataclass(frozen=True)
class Citation:
    position: int
    name: str          # as written, "the" removed ("Sunday Times")
    kind: str
    publisher: str | None = None


# Outlets and agencies known by name; feeds' publishers are added at run time
# (match_publisher).
_KNOWN = [
    "Reuters", "AP", "Associated Press", "AFP", "Agence France-Presse", "dpa", "UPI", "ANSA", "EFE",
    "Xinhua", "Kyodo", "Yonhap", "PA Media", "Press Association", "Bloomberg", "TASS", "Interfax",
    "Anadolu", "AAP", "Canadian Press", "PTI", "IANS", "ANI", "Europa Press", "BBC", "BBC News", "CNN",
    "NBC", "NBC News", "ABC News", "CBS News", "Fox News", "MSNBC", "NPR", "PBS", "Sky News", "ITV News",
    "Al Jazeera", "Politico", "Axios", "New York Times", "Washington Post", "Wall Street Journal",
    "Financial Times", "Guardian", "Observer", "Independent", "Telegraph", "Daily Telegraph",
    "Sunday Times", "Times", "Economist", "Daily Mail", "Mail on Sunday", "Mirror", "Evening Standard",
    "USA Today", "Los Angeles Times", "Chicago Tribune", "Boston Globe", "Newsweek", "Forbes",
    "Business Insider", "CNBC", "Spiegel", "Der Spiegel", "Zeit", "Die Zeit", "FAZ",
    "Frankfurter Allgemeine", "Süddeutsche Zeitung", "Handelsblatt", "Bild", "Tagesschau", "ARD", "ZDF",
    "DW", "Deutsche Welle", "Le Monde", "Le Figaro", "Libération", "France 24", "RFI", "El País",
    "El Mundo", "Corriere della Sera", "La Repubblica", "NZZ", "Haaretz", "Times of Israel",
    "Jerusalem Post", "South China Morning Post", "Nikkei", "The Verge", "TechCrunch", "Wired",
    "Ars Technica", "Engadget", "F.A.Z", "F.A.S", "FAZ", "FAS", "Technology Review", "Euronews", "Euro News", "Semafor", "ProPublica", "Variety", "Deadline", "Kyiv Independent",
]
KNOWN_OUTLETS = frozenset(n.lower() for n in _KNOWN)
# a capitalised name ending in one of these is an outlet ("Hallam Evening Gazette")
_OUTLET_WORDS = ("News", "Times", "Post", "Herald", "Journal", "Tribune", "Gazette", "Telegraph",
                 "Chronicle", "Press", "Guardian", "Observer", "Mail", "Mirror", "Express", "Standard",
                 "Independent", "Courier", "Star", "Sun", "Daily", "Weekly", "Magazine", "Radio", "TV",
                 "Television", "Agency", "Wire", "Review", "Record", "Zeitung", "Rundschau", "Presse",
                 "Kurier", "Nachrichten", "Allgemeine", "Monde", "Figaro", "Digest", "Reporter")
# a capitalised name on one line: "The New York Times", "Mail on Sunday", "France 24"
_NAME = r"(?:[Tt]he[ \t]+)?(?:[A-Z][\w&'’.\-]*|[A-Z]{2,})(?:[ \t]+(?:(?:of|on|de|della|du|des|la|le|am)[ \t]+)?(?:[A-Z][\w&'’.\-]*|[0-9]+))*"
_DASH = r"(?:-{1,2}|[\u2010-\u2015])"

_VIA_RE = re.compile(r"(?:^|\()[ \t]*(?:[Vv]ia|VIA|[Ss]ources?|SOURCES?|[Qq]uellen?)[ \t]*:?[ \t]+([^\n()]{2,120}?)[ \t]*(?:\)|$)",
                     re.M)
# "according to Reuters", German "laut Reuters", French "selon Le Monde"
_ACCORDING_RE = re.compile(rf"(?:\b[Aa]ccording\s+to\s+(?:(?:a\s+)?reports?\s+(?:by|in|from|cited\s+by)\s+)?|"
                           rf"\b[Ll]aut\s+(?:der\s+|dem\s+|des\s+)?|\b[Ss]elon\s+)({_NAME})")
_TOLD_RE = re.compile(rf"\btold\s+({_NAME})")
# "the Sunday Times reports", German "die F.A.S. berichtet(e)"
_REPORTS_RE = re.compile(rf"({_NAME})\s+(?:reports|reported|has\s+reported|first\s+reported|was\s+reporting|"
                         rf"said\s+in\s+a\s+report|berichtet|berichtete|hatte\s+berichtet)\b")
# "..., reported Euro News", German "berichtet das Magazin Technology Review"
_REPORTED_BY_RE = re.compile(rf"\b(?:reported|reports|berichtet|berichtete)\s+(?:(?:das|die|der)\s+)?"
                             rf"(?:(?:Magazin|Zeitung|Nachrichtenagentur|Sender|Portal)\s+)?({_NAME})")
_DATELINE_RE = re.compile(rf"\(\s*([A-Za-z][^()\n]{{0,38}}?)\s*\)\s*{_DASH}(?=\s)")
_CREDIT_RES = [
    re.compile(rf"({_NAME})\s+contributed\s+(?:to\s+)?(?:this|the)\s+(?:report|story|article)"),
    re.compile(rf"(?:originally|first)\s+published\s+(?:by|in|on)\s+({_NAME})"),
    re.compile(rf"[Tt]his\s+(?:report|story|article)\s+is\s+from\s+({_NAME})"),
]
_DATELINE_PLACE_RE = re.compile(r"\s*(?:[A-Z][A-Z.'/\- ]{1,30}(?:,[^\n()]{1,25})?\s*)?")
_SPLIT_RE = re.compile(r"\s*(?:,|;|&|\+|/|\band\b|\bund\b|\bet\b)\s*")


def _clean(name: str) -> str:
    name = re.sub(r"\s+", " ", name).strip(" \t.,;:!?\"'“”‘’()[]")
    name = re.sub(r"['’]s$", "", name)
    return re.sub(r"^(?:[Tt]he|THE)\s+", "", name)


def is_outlet(name: str, publishers: Iterable[str] = ()) -> bool:
    """Whether a cleaned name is an outlet: known, a feed's publisher, or ending in an
    outlet word."""
    low = name.lower()
    if low in KNOWN_OUTLETS or match_publisher(name, publishers):
        return True
    words = name.split()
    return len(words) >= 2 and words[-1] in _OUTLET_WORDS and words[0][:1].isupper()


def _longest_outlet(name: str, publishers: Sequence[str]) -> str | None:
    """The longest leading run of words of a captured name that is an outlet ("NBC News
    on Sunday" -> "NBC News")."""
    words = _clean(name).split()
    for end in range(len(words), 0, -1):
        candidate = _clean(" ".join(words[:end]))
        if candidate and is_outlet(candidate, publishers):
            return candidate
    return None


def extract(body: str, publishers: Sequence[str] = ()) -> list[Citation]:
    """Every attribution in ``body``, in text order (one per position)."""
    found: dict[int, Citation] = {}

    def add(pos: int, name: str | None, kind: str) -> None:
        if name and pos not in found:
            found[pos] = Citation(pos, name, kind, match_publisher(name, publishers))

    for m in _VIA_RE.finditer(body):
        part_text = m.group(1)
        if len(part_text.split()) > 12 or re.search(r"[.!?]\s+\S", part_text):
            continue  # a sentence that starts with "via", not a credit line
        offset = m.start(1)
        for part in _SPLIT_RE.split(part_text):
            name = _clean(part)
            if name and name[:1].isupper() and len(name.split()) <= 5:
                add(offset + part_text.find(part), name, "via")
    for m in _DATELINE_RE.finditer(body):
        first = _clean(_SPLIT_RE.split(m.group(1))[0])
        line_start = body.rfind("\n", 0, m.start()) + 1
        before = body[line_start:m.start()]
        if len(before) > 60:
            continue  # a dateline opens its paragraph
        known = first.lower() in KNOWN_OUTLETS or match_publisher(first, publishers)
        # an unknown acronym ("(CNN) -") only after nothing or an upper-case place: not
        # "Body Condition Score (BCS) - ..." in a list
        if known or (re.fullmatch(r"[A-Z]{2,6}", first) and _DATELINE_PLACE_RE.fullmatch(before)):
            add(m.start(1), first, "dateline")
    for pattern, kind in ((_ACCORDING_RE, "according_to"), (_TOLD_RE, "told"), (_REPORTS_RE, "reports"),
                          (_REPORTED_BY_RE, "reports")):
        for m in pattern.finditer(body):
            add(m.start(1), _longest_outlet(m.group(1), publishers), kind)
    for pattern in _CREDIT_RES:
        for m in pattern.finditer(body):
            add(m.start(1), _longest_outlet(m.group(1), publishers), "credit")
    return [found[p] for p in sorted(found)]


def _words(name: str) -> list[str]:
    return [w for w in re.findall(r"\w+", name.lower()) if w != "the"]


def match_publisher(name: str, publishers: Iterable[str]) -> str | None:
    """The feed publisher a cited name stands for: the same words ("Sunday Times" = "The
    Sunday Times"), or the name's words leading the publisher's ("Reuters" = "Reuters
    Wire"); a single generic word ("Times", "News") matches nothing."""
    words = _words(name)
    if not words or (len(words) == 1 and words[0].capitalize() in _OUTLET_WORDS):
        return None
    best = None
    for publisher in publishers:
        pw = _words(publisher)
        if pw == words:
            return publisher
        if pw[: len(words)] == words and best is None:
            best = publisher
    return best


def record(conn, article_id: int, body: str) -> list[Citation]:
    """Extract and store an article's citations (replacing any earlier ones)."""
    found = extract(body, citation_store.publishers(conn))
    citation_store.replace(conn, article_id, found)
    return found
