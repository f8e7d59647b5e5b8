"""Extraction: article HTML → main text and metadata, with trafilatura.

This is the only place a page becomes text: the worker also normalises the body (the
headline line dropped), hashes it and fingerprints it for near-duplicate search, so the
coordinating process only fetches and writes, and no later stage cleans a page's text
again.

Pages run in a process pool (pebble) so extraction uses every core and a page that
makes lxml spin or crash costs one worker, not the batch: each page has a time limit
after which its worker is killed and replaced.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_for
from typing import Iterable, Iterator

from .config import Settings
from .models import ErrorKind, Extracted, ExtractJob, Interrupted

log = logging.getLogger(__name__)

# <html lang="..."> when trafilatura finds no language: the whole attribute, so a bogus
# value ("xxxx...", 10,000 characters) is refused by the validation boundary, not cut down.
_HTML_LANG = re.compile(rb"<html[^>]*\blang\s*=\s*[\"']?([^\"'\s>]{1,40})[\"'\s>]", re.I)


def extract_page(job: ExtractJob, settings: Settings) -> Extracted:
    """Run trafilatura on one page and prepare its body. Pure function: safe to call in a
    worker process.

    What the page says about itself (title, author, date, canonical URL, language, image,
    and the text) passes the validation boundary here, before anything else sees it.

    ``job.search_date=False`` skips htmldate's extensive search of the page (about an
    eighth of the extraction time): used when the feed already dated the entry, since
    the feed's date is the one stored.
    """
    from . import validate

    found, notes = validate.page(extract_html(job.html, job.url, settings.max_extract_bytes, job.search_date),
                                 settings)
    found.notes = tuple(notes)
    if found.text:
        from . import dedup
        from .normalize import clean_text, content_hash, drop_leading_title

        found.body = drop_leading_title(clean_text(found.text), [*job.titles, found.title])
        found.content_hash = content_hash(found.body)
        found.fingerprint = dedup.fingerprint(found.body, settings)
    return found


# What makes a table cell a piece of page layout rather than data: block content.
_BLOCKS = ".//p|.//h1|.//h2|.//h3|.//h4|.//ul|.//ol|.//blockquote|.//table"
_CELLS = "./tr/td|./tr/th|./*/tr/td|./*/tr/th"


def unwrap_layout_tables(tree) -> int:
    """Turn layout tables into plain blocks; returns how many.

    Old and small sites lay whole pages out in tables: the article is paragraphs inside
    one cell, the navigation in another. Extracted as a table, the article comes out as
    one "cell | cell" line with the menu in it. A table with a cell holding two or more
    blocks (paragraphs, headings, lists) or more than 300 characters of text is layout:
    its rows and cells become divs, so extraction sees paragraphs and boilerplate as on
    any page. Data tables (short cells) stay tables, and trafilatura keeps them (its
    default, ``include_tables``), one row per line."""
    unwrapped = 0
    for table in list(tree.iter("table")):
        cells = table.xpath(_CELLS)
        if any(len(cell.xpath(_BLOCKS)) >= 2 or len(cell.text_content()) > 300 for cell in cells):
            for element in [table, *table.xpath("./thead|./tbody|./tfoot|./tr|./*/tr"), *cells]:
                element.tag = "div"
            unwrapped += 1
    return unwrapped


# --- page furniture ---------------------------------------------------------------
# trafilatura keeps some of what surrounds an article: a "Recommended for you" list right
# after the body, "Read more: <link>" lines between paragraphs, a newsletter box inside the
# article element, a share bar's heading. Publishers' copies of one story differ exactly
# there, so these never reach a stored body. The rules are deliberately narrow (a label
# that says what the block is, or a class that does, plus links or a form), because an
# article's own lists and link-rich paragraphs must stay; the real-world page assertions
# (tests/test_realworld_extraction.py) hold both sides.

# What a related-content block calls itself: the whole heading, in the corpus' languages.
_LIST_LABEL = re.compile(
    r"(related( (articles|stories|content|posts|coverage|links))?|recommended( for you| reading| stories)?|"
    r"(editors?[’']? )?(picks|recommendations)|more (from|on|about) .{1,40}|more (stories|news|articles)|"
    r"most (read|popular|viewed|shared)|popular( (now|stories|posts))?|trending( now)?|top stories|"
    r"read (more|next|also)|also read|see also|further reading|you (may|might) (also )?like|"
    r"don[’']t miss|latest (news|stories)|auch interessant|das könnte (sie|dich) auch interessieren|"
    r"mehr zum thema|mehr (dazu|aus dem ressort|news)|lesen sie auch|lies auch|weitere (artikel|beiträge|themen)|"
    r"meistgelesen|am meisten gelesen|empfohlene artikel|ähnliche (artikel|beiträge)|verwandte (artikel|themen)|"
    r"(à )?lire aussi|sur le même (sujet|thème)|les plus lus|articles similaires|a leer también)\s*[:.…]*",
    re.I)
# A paragraph that only points to another article: "READ MORE: <a>headline</a>".
_READ_MORE = re.compile(
    r"\s*(read more|read also|also read|read next|related|see also|more on this|lesen sie auch|lies auch|"
    r"mehr zum thema|weiterlesen|auch interessant|à lire aussi|lire aussi)\s*[:>»\-–—|]", re.I)
# Class or id words of blocks that are never article text.
_FURNITURE_CLASS = re.compile(
    r"newsletter|subscri(be|ption)|signup|sign-up|optin|opt-in|social-?share|share-?(bar|tools|buttons|links)|"
    r"sharing|related|recommend|read-?more|more-?stories|most-?(read|popular)|outbrain|taboola|"
    r"(image|photo|img)-?credit|teaser-?comments|comment-?count", re.I)
# The heading of a share bar ("Teilen auf" + a list of network links).
_SHARE_LABEL = re.compile(r"(share( this( article| story)?)?( on)?|teilen( auf)?|jetzt teilen|partager( sur)?|"
                          r"follow us( on)?|folgen sie uns( auf)?)\s*[:.…]*", re.I)
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_LABEL_TAGS = _HEADINGS | {"p", "div", "span", "strong", "b", "header"}


def _text(el) -> str:
    return " ".join(el.text_content().split())


def _head(el, size: int = 40) -> str:
    """The first ``size``-odd characters of an element's text."""
    head = ""
    for piece in el.itertext():
        head += piece
        if len(head) >= size:
            break
    return head


def _link_share(el) -> float:
    """Share of an element's text that sits inside links."""
    total = len(_text(el))
    return sum(len(_text(a)) for a in el.iter("a")) / total if total else 0.0


def _is_link_list(el) -> bool:
    """A ul/ol whose items are (nearly) all a link each: headlines pointing elsewhere."""
    items = el.findall("li")
    return len(items) >= 2 and sum(_link_share(li) >= 0.6 for li in items) >= 0.75 * len(items)


def _label_before(el):
    """The heading or short label line right before a list, if it is one (whitespace
    and empty wrappers skipped)."""
    prev = el.getprevious()
    while prev is not None and not _text(prev) and prev.tag not in ("img", "figure"):
        prev = prev.getprevious()
    if prev is None or not isinstance(prev.tag, str) or prev.tag not in _LABEL_TAGS:
        return None
    return prev if len(_text(prev)) <= 80 else None


def _labelled_as_furniture(el) -> bool:
    label = _label_before(el)
    if label is not None and _LIST_LABEL.fullmatch(_text(label)):
        return True
    parent = el.getparent()  # <section><h2>Recommended for you</h2><ul>…
    if parent is not None and parent.tag != "body":
        first = next((c for c in parent if isinstance(c.tag, str) and _text(c)), None)
        if first is not None and first is not el and first.tag in _LABEL_TAGS \
                and len(_text(first)) <= 80 and _LIST_LABEL.fullmatch(_text(first)):
            return True
    return False


def _classes(el) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''}"


def _key(text: str) -> str:
    return "".join(text.split())


def find_furniture(tree) -> frozenset[str]:
    """The texts (whitespace removed) of related-link lists, read-more lines, newsletter
    boxes, share bars and image captions on a parsed page.

    They are not cut out of the tree: removing a block changes which element trafilatura
    picks as the article (a page's text can come out shorter than without the cut).
    ``drop_furniture`` removes the lines that are exactly one of these texts from the
    extracted text instead."""
    doomed = []
    for el in tree.iter("ul", "ol"):
        if _is_link_list(el) and _labelled_as_furniture(el):
            doomed.append(el)
            label = _label_before(el)
            if label is not None and _LIST_LABEL.fullmatch(_text(label)):
                doomed.append(label)
            parent = el.getparent()
            if parent is not None:
                first = next((c for c in parent if isinstance(c.tag, str) and _text(c)), None)
                if first is not None and first is not el and _LIST_LABEL.fullmatch(_text(first)):
                    doomed.append(first)  # <section><h2>Recommended for you</h2>
    for el in tree.iter("p", "div", "li"):
        # the label first, from the element's first strings: the whole text of every
        # div (nested ones again and again) would cost more than the extraction
        if _READ_MORE.match(_head(el)):
            text = _text(el)
            if len(text) <= 200 and _link_share(el) >= 0.4 and not el.xpath(".//p"):
                doomed.append(el)
    for el in tree.iter("div", "section", "aside", "form", "ul", "figure", "span", "p", "footer"):
        classes = _classes(el)
        if classes.strip() and _FURNITURE_CLASS.search(classes) and len(_text(el)) <= 600 \
                and not el.xpath(".//article"):
            doomed.append(el)
            label = _label_before(el)
            if label is not None and _SHARE_LABEL.fullmatch(_text(label)):
                doomed.append(label)
    doomed.extend(tree.iter("figcaption"))  # captions and "Photo: Agency" credits describe images
    texts = set()
    for el in doomed:
        for sub in el.iter():
            if isinstance(sub.tag, str):
                text = _text(sub)
                if text:
                    texts.add(_key(text))
    return frozenset(texts)


def drop_furniture(text: str, furniture: frozenset[str]) -> str:
    """The extracted text without the lines that are page furniture (a list item's "- "
    marker ignored). A line of one or two words ("Urteil", "Share") can also be a line of
    the article, so it goes only when it is a furniture label itself or sits next to a
    longer furniture line."""
    if not furniture or not text:
        return text
    lines = text.split("\n")
    bare = [line.strip()[2:] if line.strip()[:2] in ("- ", "* ") else line.strip() for line in lines]
    found = [bool(b) and _key(b) in furniture for b in bare]
    strong = [f and (len(b.split()) >= 3 or bool(_LIST_LABEL.fullmatch(b)) or bool(_SHARE_LABEL.fullmatch(b)))
              for f, b in zip(found, bare, strict=True)]
    drop = [s or (f and ((i > 0 and strong[i - 1]) or (i + 1 < len(lines) and strong[i + 1])))
            for i, (f, s) in enumerate(zip(found, strong, strict=True))]
    return "\n".join(line for line, gone in zip(lines, drop, strict=True) if not gone)


def extract_html(html: bytes, url: str, max_bytes: int, search_date: bool = True,
                 strip: bool = True) -> Extracted:
    import trafilatura  # heavy import, paid once per worker

    if len(html) > max_bytes:
        html = html[:max_bytes]  # bounded input: lxml time grows with document size
    try:
        tree = trafilatura.load_html(html)
        if tree is None:
            return Extracted(error="not an HTML document", error_kind=ErrorKind.NO_TEXT)
        unwrap_layout_tables(tree)
        furniture = find_furniture(tree) if strip else frozenset()
        doc = trafilatura.bare_extraction(
            tree, url=url, with_metadata=True, include_comments=False,
            include_tables=True, favor_precision=False, deduplicate=False,
            date_extraction_params={"extensive_search": search_date, "original_date": True,
                                    "outputformat": "%Y-%m-%dT%H:%M:%S%z"})
    except Exception as exc:  # trafilatura/lxml on hostile markup: record, never raise
        return Extracted(error=f"extraction failed: {type(exc).__name__}: {exc}", error_kind=ErrorKind.NO_TEXT)
    language = None
    match = _HTML_LANG.search(html[:4096])
    if match:
        language = match.group(1).decode("ascii", "replace").lower()
    if doc is None:
        return Extracted(error="no main text found", error_kind=ErrorKind.NO_TEXT, language=language)
    return Extracted(
        text=drop_furniture(doc.text, furniture), title=doc.title, author=doc.author, date=doc.date,
        site_name=doc.sitename, language=doc.language or language,
        canonical_url=doc.url, image=doc.image,
    )


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the coordinating process, which stops them when it is done
    (a terminal sends SIGINT to the whole process group)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Extractor:
    """A pool of extraction workers; use as a context manager."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pool = None

    def __enter__(self) -> "Extractor":
        from pebble import ProcessPool

        # Imported here, before the workers are forked, so each worker starts with
        # trafilatura loaded instead of paying about a second to import it.
        import trafilatura  # noqa: F401

        # max_tasks recycles workers now and then: lxml's caches only grow.
        self._pool = ProcessPool(max_workers=self.settings.extract_pool_size(), max_tasks=2000,
                                 initializer=_ignore_interrupts)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.stop() if exc[0] else self._pool.close()
            self._pool.join()

    def extract_iter(self, jobs: Iterable[ExtractJob],
                     stop: threading.Event | None = None) -> Iterator[Extracted]:
        """Extract pages in parallel, yielding each result (in input order; failures as
        Extracted.error) as soon as it is ready, so the caller's own work overlaps with the
        workers'. A set ``stop`` cancels what is not done and raises ``Interrupted``.

        A page that outlives ``extract_timeout`` or kills its worker is an ``EXTRACTION``
        error, which may pass (retried later); a page trafilatura finds no text in is
        ``NO_TEXT``."""
        assert self._pool is not None, "use Extractor as a context manager"
        futures = [self._pool.schedule(extract_page, args=(job, self.settings),
                                       timeout=self.settings.extract_timeout) for job in jobs]
        try:
            for future in futures:
                # woken by the result itself (not a fixed sleep), checking ``stop`` between
                while stop is not None and not future.done():
                    if stop.is_set():
                        raise Interrupted("stopped while extracting")
                    wait_for([future], timeout=0.1)
                try:
                    yield future.result()
                except FutureTimeout:
                    yield Extracted(error=f"extraction exceeded {self.settings.extract_timeout:.0f}s; "
                                          "worker killed", error_kind=ErrorKind.EXTRACTION)
                except Exception as exc:  # ProcessExpired (worker crashed) and friends
                    yield Extracted(error=f"extraction worker failed: {type(exc).__name__}: {exc}",
                                    error_kind=ErrorKind.EXTRACTION)
        finally:
            for future in futures:
                future.cancel()  # an abandoned iteration leaves no work queued
