"""Extraction: article HTML → main text and metadata, with trafilatura.

Pages run in a process pool (pebble) so extraction uses every core and a page that
makes lxml spin or crash costs one worker, not the batch: each page has a time limit
after which its worker is killed and replaced.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Iterable, Iterator, Sequence

from .config import Settings
from .models import Extracted

log = logging.getLogger(__name__)

_HTML_LANG = re.compile(rb"<html[^>]*\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.I)


def extract_page(html: bytes, url: str, max_bytes: int, settings: Settings | None = None,
                 titles: Sequence[str | None] = (), search_date: bool = True) -> Extracted:
    """Run trafilatura on one page. Pure function: safe to call in a worker process.

    With ``settings``, also does the rest of the CPU work on the text here in the
    worker: the normalised body (headline line dropped), its content hash and its
    dedup fingerprint, so the coordinating process only fetches and writes.

    ``search_date=False`` skips htmldate's extensive search of the page (about an
    eighth of the extraction time): used when the feed already dated the entry, since
    the feed's date is the one stored.
    """
    found = _extract(html, url, max_bytes, search_date)
    if settings is not None and found.text:
        from . import dedup
        from .normalize import clean_text, content_hash, drop_leading_title

        found.body = drop_leading_title(clean_text(found.text), [*titles, found.title])
        found.content_hash = content_hash(found.body)
        found.fingerprint = dedup.fingerprint(found.body, settings)
    return found


def _extract(html: bytes, url: str, max_bytes: int, search_date: bool = True) -> Extracted:
    import trafilatura  # heavy import, paid once per worker

    if len(html) > max_bytes:
        html = html[:max_bytes]  # bounded input: lxml time grows with document size
    try:
        doc = trafilatura.bare_extraction(
            html, url=url, with_metadata=True, include_comments=False,
            include_tables=False, favor_precision=False, deduplicate=False,
            date_extraction_params={"extensive_search": search_date, "original_date": True,
                                    "outputformat": "%Y-%m-%dT%H:%M:%S%z"})
    except Exception as exc:  # trafilatura/lxml on hostile markup: record, never raise
        return Extracted(error=f"extraction failed: {type(exc).__name__}: {exc}")
    language = None
    match = _HTML_LANG.search(html[:4096])
    if match:
        language = match.group(1).decode("ascii").lower()
    if doc is None:
        return Extracted(error="no main text found", language=language)
    return Extracted(
        text=doc.text, title=doc.title, author=doc.author, date=doc.date,
        site_name=doc.sitename, language=doc.language or language,
        canonical_url=doc.url, image=doc.image,
    )


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
        self._pool = ProcessPool(max_workers=self.settings.extract_pool_size(), max_tasks=2000)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.stop() if exc[0] else self._pool.close()
            self._pool.join()

    def extract_many(self, pages: Iterable[tuple]) -> list[Extracted]:
        """Extract pages in parallel; results in input order, failures as Extracted.error.

        ``pages`` holds (html, url) or (html, url, titles, search_date): with titles,
        the workers also prepare body, hash and fingerprint (see :func:`extract_page`).
        """
        return list(self.extract_iter(pages))

    def extract_iter(self, pages: Iterable[tuple]) -> Iterator[Extracted]:
        """Like extract_many, but yields each result (in input order) as soon as it is
        ready, so the caller's own work overlaps with the workers'."""
        assert self._pool is not None, "use Extractor as a context manager"
        futures = []
        for html, url, *prepare in pages:
            args = (html, url, self.settings.max_extract_bytes)
            if prepare:
                titles, search_date = prepare
                args += (self.settings, tuple(titles), search_date)
            futures.append(self._pool.schedule(extract_page, args=args,
                                               timeout=self.settings.extract_timeout))
        for future in futures:
            try:
                yield future.result()
            except FutureTimeout:
                yield Extracted(error=f"extraction exceeded {self.settings.extract_timeout:.0f}s; "
                                      "worker killed")
            except Exception as exc:  # ProcessExpired (worker crashed) and friends
                yield Extracted(error=f"extraction worker failed: {type(exc).__name__}: {exc}")
