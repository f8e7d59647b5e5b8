"""Wire credits: which news agency (or source) an article's text says it comes from.

A story's origin is its earliest member unless a member credits a wire agency in its
text ("BAGHDAD, Nov 20 (Reuters) -", "Via Reuters, NBC News & Sunday Times", "Reuters
contributed to this report"): then the origin is that agency (see
``newsflow.storage.stories.refresh``). Pure functions; the known agencies and their
spellings are listed below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# lower-case spelling -> canonical name
_AGENCY_NAMES: dict[str, str] = {
    "reuters": "Reuters", "thomson reuters": "Reuters",
    "ap": "AP", "associated press": "AP", "the associated press": "AP",
    "afp": "AFP", "agence france-presse": "AFP", "agence france presse": "AFP",
    "dpa": "dpa", "deutsche presse-agentur": "dpa", "deutsche presse agentur": "dpa",
    "upi": "UPI", "united press international": "UPI",
    "ansa": "ANSA", "efe": "EFE", "agencia efe": "EFE", "xinhua": "Xinhua",
    "kyodo": "Kyodo", "kyodo news": "Kyodo", "yonhap": "Yonhap",
    "pa": "PA", "pa media": "PA", "press association": "PA",
    "apa": "APA", "kna": "KNA", "epd": "epd", "sda": "Keystone-SDA",
    "keystone-sda": "Keystone-SDA", "ats": "ATS", "belga": "Belga", "anp": "ANP",
    "bloomberg": "Bloomberg", "tass": "TASS", "interfax": "Interfax",
    "anadolu": "Anadolu", "anadolu agency": "Anadolu",
    "aap": "AAP", "australian associated press": "AAP",
    "cp": "CP", "canadian press": "CP", "the canadian press": "CP",
    "pti": "PTI", "ians": "IANS", "ani": "ANI", "europa press": "Europa Press",
    "lusa": "Lusa", "pap": "PAP", "ritzau": "Ritzau", "ntb": "NTB", "tt": "TT",
}


def _agency_pattern() -> re.Pattern[str]:
    # short names (acronyms) must be written as agencies write them ("AP", "dpa"), so
    # that ordinary words ("pa", "tt") never count; longer names match in any case
    short = sorted({n for n in _AGENCY_NAMES if len(n) <= 4}, key=len, reverse=True)
    spellings = sorted({s for n in short for s in (_AGENCY_NAMES[n], n.upper())}, key=len,
                       reverse=True)
    long = sorted((n for n in _AGENCY_NAMES if len(n) > 4), key=len, reverse=True)
    alternatives = [re.escape(s) for s in spellings] + [
        "(?i:" + re.escape(n).replace(r"\ ", r"\s+") + ")" for n in long]
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])")


_KNOWN_AGENCY_RE = _agency_pattern()
_DASH = r"(?:-{1,2}|[\u2010-\u2015])"
# "BAGHDAD, Nov 20 (Reuters) -", "(AP) —", "Berlin (dpa/lno) -"
_DATELINE_RE = re.compile(rf"\(\s*([^()\n]{{1,40}}?)\s*\)\s*{_DASH}(?=\s)")
# what may stand before an unknown acronym: "", "WASHINGTON", "NEW YORK, Nov 20"
_DATELINE_PLACE_RE = re.compile(r"\s*(?:[A-Z][A-Z.'/\- ]{1,30}(?:,[^\n()]{1,25})?\s*)?")
# "Via Reuters, NBC News & Sunday Times", "Source: AFP", "Quelle: dpa" (a short line)
_VIA_RE = re.compile(r"^[ \t]*(?:via\b[ \t]*:?|(?:sources?|quellen?)[ \t]*:)[ \t]*(\S[^\n]*)$",
                     re.I | re.M)
_NAME_SPLIT_RE = re.compile(r"\s*(?:,|;|&|\+|/|\band\b|\bund\b|\bet\b)\s*", re.I)
# phrases that credit an agency only when they name a known one
_CONTRIBUTED_RE = re.compile(r"\s+contributed\s+(?:to\s+)?(?:this|the)\s+"
                             r"(?:report|story|article)", re.I)
_PHRASE_RES = [
    re.compile(r"(?:additional\s+|with\s+)?reporting\s+(?:by|from)\s+([^\n;)]{1,60})", re.I),
    re.compile(r"(?:\u00a9|\(c\)|copyright)\s*(?:\d{4}\s*)?([^\n.]{1,40})", re.I),
    re.compile(r"mit\s+material\s+(?:von|der|des)\s+([^\n.]{1,40})", re.I),
    # an aggregator's attribution: "according to Reuters", "according to an AP report"
    re.compile(r"\baccording\s+to\s+([^\n,.;:]{1,40})", re.I),
    re.compile(r"(?:(?:first|originally)\s+published\s+by|republished\s+(?:from|with\s+"
               r"permission\s+(?:of|from)))\s+([^\n.]{1,40})", re.I),
]


def normalise_agency(name: str) -> str:
    """Canonical agency name ("Associated Press" -> "AP"); unknown names as written."""
    cleaned = re.sub(r"\s+", " ", name).strip(" \t.,;:!?\"'()[]")
    return _AGENCY_NAMES.get(cleaned.lower(), cleaned)


def _known(fragment: str) -> str | None:
    match = _KNOWN_AGENCY_RE.search(fragment)
    return _AGENCY_NAMES[re.sub(r"\s+", " ", match.group(0)).lower()] if match else None


@dataclass(frozen=True)
class Credit:
    """One credit found in a text: the name, its form and where it stands."""
    name: str
    kind: str  # 'dateline' ("BERLIN (Reuters) -"), 'line' ("Via Reuters"), 'phrase' ("according to AP")
    start: int  # character span of the credit in the text
    end: int


def credits(text: str) -> list[Credit]:
    """The credits of a text, at most one of each form (its first), in text order."""
    found: list[Credit] = []
    for match in _DATELINE_RE.finditer(text):
        parts = [p for p in _NAME_SPLIT_RE.split(match.group(1)) if p]
        if not parts:
            continue
        first = parts[0].strip()
        name = _AGENCY_NAMES.get(re.sub(r"\s+", " ", first).lower())
        if name is None and re.fullmatch(r"[A-Z]{2,6}", first):
            # an unknown acronym counts only in a dateline: at most a place and a date
            # before it on its line, e.g. "WASHINGTON (CNN) —"
            line_start = text.rfind("\n", 0, match.start()) + 1
            if _DATELINE_PLACE_RE.fullmatch(text[line_start:match.start()]):
                name = first
        if name is not None:
            found.append(Credit(name, "dateline", match.start(), match.end()))
            break
    for match in _VIA_RE.finditer(text):
        body = match.group(1).strip()
        if len(body.split()) > 12 or re.search(r"[.!?]\s+\S", body):
            continue  # a sentence that starts with "via", not a credit line
        parts = [p for p in _NAME_SPLIT_RE.split(body) if p.strip(" .")]
        first = parts[0].strip() if parts else ""
        # a name, not a word: capitalised, a number, or an agency's own spelling ("Via dpa")
        if first and (first[:1].isupper() or first[:1].isdigit() or _known(first)):
            found.append(Credit(normalise_agency(parts[0]), "line", match.start(), match.end()))
            break
    phrases: list[Credit] = []
    for match in _CONTRIBUTED_RE.finditer(text):  # "<who> contributed to this report"
        window = max(0, match.start() - 80)  # the sentence before, at most 80 chars
        cut = max(text.rfind("\n", window, match.start()), text.rfind(".", window, match.start()))
        start = cut + 1 if cut >= 0 else window
        name = _known(text[start:match.start()])
        if name is not None:
            phrases.append(Credit(name, "phrase", start, match.end()))
            break
    for pattern in _PHRASE_RES:
        for match in pattern.finditer(text):
            name = _known(match.group(1))
            if name is not None:
                phrases.append(Credit(name, "phrase", match.start(1), match.end()))
                break
    if phrases:
        found.append(min(phrases, key=lambda c: c.start))
    return sorted(found, key=lambda c: c.start)


def wire_credit(text: str) -> str | None:
    """The news agency (or source) the text credits, or None; the earliest credit wins.

    Recognised: datelines "CITY, Nov 20 (Reuters) -" / "(AP) —" / "Berlin (dpa/lno) -"
    (known agencies, or an upper-case acronym such as CNN); a short credit line
    "Via Reuters, NBC News & Sunday Times" / "Source: AFP" (first name, as written when
    not a known agency); "Reuters contributed to this report", "Additional reporting by
    AFP", "Copyright 2024 The Associated Press", "Mit Material von dpa", "first published
    by AFP", "according to Reuters" (known agencies only: these phrases also name people
    and outlets).
    """
    found = credits(text)
    return found[0].name if found else None


def credit_window(body: str, size: int = 1500) -> str:
    """The parts of a body where agencies are credited: the dateline at the top, the
    "Via ..." / "contributed to this report" lines at the bottom. Scanning only these
    keeps credit detection cheap on long articles."""
    if len(body) <= 2 * size:
        return body
    return body[:size] + "\n" + body[-size:]
