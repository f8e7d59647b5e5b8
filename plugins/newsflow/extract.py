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


def extract_html(html: bytes, url: str, max_bytes: int, search_date: bool = True) -> Extracted:
    import trafilatura  # heavy import, paid once per worker

    if len(html) > max_bytes:
        html = html[:max_bytes]  # bounded input: lxml time grows with document size
    try:
        tree = trafilatura.load_html(html)
        if tree is None:
            return Extracted(error="not an HTML document", error_kind=ErrorKind.NO_TEXT)
        unwrap_layout_tables(tree)
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
        text=doc.text, title=doc.title, author=doc.author, date=doc.date,
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
