"""Ingestion: claimed entries → fetched pages → extracted text → decisions → load.

A batch is three steps, and no transaction stays open across network I/O:

1. **claim** (``frontier.claim``, one short transaction): up to ``batch_size`` due
   entries, hosts in rotation, leased to this worker, each with its host slot;
2. **work**, with no transaction open: fetch the pages politely (``fetch``), extract
   them in the process pool (``extract``), decide what each entry becomes (``decide``,
   pure);
3. **write** (one short transaction under the load lock): for each entry whose lease is
   still ours, apply its decision in a savepoint of its own — link it to an existing
   article (exact duplicate), add a new article to its story (``stories``), or record the
   retry or the failure. A record the database refuses (or a bug it trips) rolls back
   that entry only: the error is recorded on it, it gets a strike, and the others commit;
   at ``max_strikes`` it is quarantined (failed, with the reason).

**Strikes count only what the entry did** (docs/politeness.md, "Strikes"): a row the
database refused. A claim is not a strike: a lease lost to a killed process, a restarted
or read-only database, a timeout or a signal counts nothing, so no fault outside the
entry can quarantine it. Fetch and extraction failures count attempts (``max_attempts``);
a page that kills its extraction worker is that entry's extraction failure. A transient
database error (deadlock, lock or statement timeout) is tried again (``db_retries``); if
it persists the entries are put back, no attempt and no strike counted.

A worker killed anywhere loses nothing: its leases die with its worker lock (see
``frontier.Worker``) and the next run takes the entries again; nothing is written twice
because only the lease's owner writes. A set ``stop`` event (Ctrl-C, SIGTERM) stops
claiming; batches in flight, and a write still waiting for the load lock, give their
leases back unused (``Interrupted``).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable, Sequence

import psycopg

from . import corrections, db, dberrors, events, frontier, stories
from .config import Settings
from .decide import decide_safely
from .extract import Extractor
from .fetch import PageFetcher
from .httpclient import SafeClient
from .models import Action, BatchResult, Decision, ErrorKind, ExtractJob, Interrupted, PageFetch, PageJob
from .politeness import backoff, host_delay, host_key
from .storage import dedup_index
from .storage import entries as entry_store
from .storage import fetch_log
from .storage import hosts as host_store
from .storage.locks import take_write_locks

log = logging.getLogger(__name__)

def ingest_pending(url: str, settings: Settings, *, max_batches: int | None = None,
                   entry_ids: Sequence[int] | None = None, client: SafeClient | None = None,
                   progress: Callable[[BatchResult], None] | None = None,
                   stop: threading.Event | None = None) -> BatchResult:
    """Process batches until no due pending entry is left (or ``max_batches``, or ``stop``).

    ``ingest_concurrency`` batches are in flight at once (threads sharing one HTTP
    client, one extraction pool and one worker identity): while one batch writes, the
    next is fetching and extracting, so no core waits on the database. Raises
    ``Interrupted`` when stopped, and the database's error when the database fails.
    """
    stop = stop or threading.Event()
    total = BatchResult()
    own_client = client is None
    client = client or SafeClient(settings)
    fetcher = PageFetcher(settings, client, stop)
    lock = threading.Lock()
    started = 0
    failures: list[BaseException] = []

    def worker(extractor: Extractor, worker_id: int) -> None:
        nonlocal started
        try:
            with db.connect(url, autocommit=True, lock_timeout=settings.lock_timeout) as conn:
                while not stop.is_set() and not failures:
                    with lock:
                        if max_batches is not None and started >= max_batches:
                            return
                        started += 1
                    try:
                        jobs, worn = dberrors.retry(lambda: _claim(conn, worker_id, settings, entry_ids),
                                              tries=settings.db_retries, delay=settings.db_retry_delay,
                                              what="claim", stop=stop)
                    except dberrors.RetriesExhausted as exc:
                        # nothing was claimed: this thread ends its run, the entries stay queued
                        log.warning("claiming entries failed: %s; the next run takes them", exc)
                        return
                    if worn.quarantined:
                        with lock:
                            total.add(worn)
                    if not jobs:
                        wait = frontier.next_opening(conn, settings, entry_ids)
                        if wait is None or wait > settings.frontier_max_wait:
                            return
                        with lock:
                            started -= 1  # waiting for a host's slot is not a batch
                        stop.wait(max(wait, 0.05))
                        continue
                    batch = run_batch(conn, worker_id, jobs, settings, fetcher, extractor, stop)
                    with lock:
                        total.add(batch)
                        if progress:
                            progress(batch)
        except BaseException as exc:  # surfaced in the calling thread below
            failures.append(exc)
            stop.set()  # the other batch threads stop claiming and give back their leases

    try:
        with frontier.Worker(url) as me, Extractor(settings) as extractor:
            threads = [threading.Thread(target=worker, args=(extractor, me.id), name=f"ingest-{i}")
                       for i in range(max(1, settings.ingest_concurrency))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failures:
                raise failures[0]
    finally:
        if own_client:
            client.close()
    return total


def _claim(conn: psycopg.Connection, worker_id: int, settings: Settings,
           entry_ids: Sequence[int] | None) -> tuple[list[PageJob], BatchResult]:
    """One claim (one transaction, so it may be tried again), and what it quarantined."""
    worn = BatchResult()
    return frontier.claim(conn, worker_id, settings, entry_ids, worn), worn


def run_batch(conn: psycopg.Connection, worker_id: int, jobs: Sequence[PageJob], settings: Settings,
              fetcher: PageFetcher, extractor: Extractor, stop: threading.Event) -> BatchResult:
    """Work and write one claimed batch; on ``stop``, give the leases back and raise."""
    out = BatchResult(claimed=len(jobs))
    try:
        decisions, pages = process(jobs, settings, fetcher, extractor, stop)
        _host_news(conn, settings, pages, stop)
        write_retrying(conn, worker_id, settings, decisions, pages, out, stop)
    except Interrupted:
        with conn.transaction():
            released = entry_store.release(conn, worker_id, [j.entry_id for j in jobs])
        log.info("stopped: %d claimed entries given back", released)
        raise
    return out


# --- work: fetch, extract, decide (no transaction open) ----------------------------------

def process(jobs: Sequence[PageJob], settings: Settings, fetcher: PageFetcher, extractor: Extractor,
            stop: threading.Event | None = None) -> tuple[list[Decision], dict[int, PageFetch]]:
    fetchable = [j for j in jobs if j.link]
    fetched = dict(zip((j.entry_id for j in fetchable), fetcher.fetch_jobs(fetchable), strict=True))
    to_extract = [j for j in fetchable
                  if fetched[j.entry_id].result is not None and fetched[j.entry_id].result.ok]
    pages = [ExtractJob(html=fetched[j.entry_id].result.body, url=fetched[j.entry_id].result.final_url,
                        titles=(j.title,),
                        search_date=j.published_at is None)  # the feed's date wins
             for j in to_extract]
    decisions = {}
    # decisions are made here while the workers extract the next pages
    for job, found in zip(to_extract, extractor.extract_iter(pages, stop), strict=True):
        decisions[job.entry_id] = decide_safely(job, fetched[job.entry_id], found, settings)
    return ([decisions.get(job.entry_id) or decide_safely(job, fetched.get(job.entry_id), None, settings)
             for job in jobs], fetched)


# --- write (one short transaction, under the load lock) ----------------------------------

def write_retrying(conn: psycopg.Connection, worker_id: int, settings: Settings, decisions: Sequence[Decision],
                   pages: dict[int, PageFetch], out: BatchResult, stop: threading.Event | None = None) -> None:
    """``write``, tried again on a transient database error; when it persists, the entries
    are put back with the cause (no attempt, no strike: not their fault) and the run goes on."""
    def attempt() -> BatchResult:
        mine = BatchResult(claimed=out.claimed)
        write(conn, worker_id, settings, decisions, pages, mine, stop)
        return mine
    try:
        done = dberrors.retry(attempt, tries=settings.db_retries, delay=settings.db_retry_delay,
                              what="ingest write", stop=stop)
    except dberrors.RetriesExhausted as exc:
        if stop is not None and stop.is_set():
            raise Interrupted("stopped while retrying the write") from exc
        error = f"not written: {exc}"
        log.warning("batch of %d entries: %s", len(decisions), error)
        with conn.transaction():
            for d in decisions:
                entry_store.mark_retry(conn, d.job.entry_id, error, settings.lock_timeout, attempt=False,
                                       owner=worker_id)
                out.errors.append(f"entry {d.job.entry_id} ({d.job.link}): {error}")
                out.count_error(ErrorKind.DATABASE)
        out.db_retried += len(decisions)
        return
    claimed = out.claimed
    out.add(done)
    out.claimed = claimed


def write(conn: psycopg.Connection, worker_id: int, settings: Settings, decisions: Sequence[Decision],
          pages: dict[int, PageFetch], out: BatchResult, stop: threading.Event | None = None) -> None:
    for d in decisions:  # texts from the feed were not fingerprinted by the workers
        if d.article is not None:
            stories.fingerprint(d.article, settings)
    with conn.transaction():
        # the load lock, then the changes lock: rows are stamped (clock_timestamp) only
        # once every change committed before is visible (storage.locks). The wait is
        # bounded (lock_timeout) and a stop ends it (the leases are given back).
        take_write_locks(conn, timeout=settings.lock_timeout, stop=stop)
        mine = entry_store.owned(conn, worker_id, [d.job.entry_id for d in decisions])
        index = dedup_index.BatchIndex(conn, settings.dedup_window_days, [
            (d.article.fingerprint, d.article.published_at or datetime.now(timezone.utc))
            for d in decisions if d.article is not None and d.job.entry_id in mine])
        # Oldest first, so a story's original becomes its representative when the
        # original and its copies arrive in one batch.
        for decision in sorted(decisions, key=_publication_order):
            job = decision.job
            if job.entry_id not in mine:
                out.lost += 1  # the lease ran out and another worker took the entry
                log.warning("entry %s: lease lost before writing; its new owner writes it", job.entry_id)
                continue
            mark = index.mark()
            try:
                with conn.transaction():  # a savepoint: this entry alone
                    _apply(conn, settings, decision, out, index)
            except Exception as exc:
                if not dberrors.is_record_fault(exc):
                    raise  # fatal, or transient: the whole write is tried again
                index.rollback(mark)
                _record_load_failure(conn, settings, job, exc, out)
        index.flush()


def _host_news(conn: psycopg.Connection, settings: Settings, pages: dict[int, PageFetch],
               stop: threading.Event | None = None) -> None:
    """What the hosts told us in this batch, kept for every worker: Retry-After, Crawl-delay.
    A transaction of its own before the write (host rows are above entries and articles in
    the lock order), hosts in sorted order; a note that cannot be written is logged."""
    deferrals: dict[str, tuple[float, str]] = {}
    delays: dict[str, float] = {}
    for page in pages.values():
        host = host_key(page.url)
        if page.deferred_for is not None and page.result is not None and page.result.rate_limited:
            deferrals[host] = (page.deferred_for, page.result.error or "Retry-After")
        if page.crawl_delay and host_delay(settings, page.crawl_delay) > settings.per_host_delay:
            delays.setdefault(host, page.crawl_delay)
    if not deferrals and not delays:
        return

    def note() -> None:
        with conn.transaction():
            for host in sorted(set(deferrals) | set(delays)):
                if host in deferrals:
                    host_store.defer(conn, host, *deferrals[host])
                if host in delays:
                    host_store.set_crawl_delay(conn, host, delays[host])
    try:
        dberrors.retry(note, tries=settings.db_retries, delay=settings.db_retry_delay, what="host notes", stop=stop)
    except dberrors.RetriesExhausted as exc:
        log.warning("what the hosts told this batch was not kept: %s", exc)


def _publication_order(decision: Decision) -> tuple:
    a = decision.article
    when = (a.published_at if a else None) or datetime.max.replace(tzinfo=timezone.utc)
    return (when, a.canonical_url if a else "", decision.job.entry_id)


def _apply(conn: psycopg.Connection, settings: Settings, decision: Decision, out: BatchResult,
           index: dedup_index.BatchIndex) -> None:
    job = decision.job
    if decision.fetch is not None:
        fetch_log.record(conn, kind="page", feed_id=job.feed_id, entry_id=job.entry_id,
                         url=job.link or "", status=decision.fetch.status, bytes=decision.fetch.bytes,
                         duration_ms=decision.fetch.ms, error=decision.error)
    if decision.action in (Action.FAIL, Action.RETRY):
        out.count_error(decision.kind)
    if decision.action is Action.FAIL:
        out.errors.append(f"entry {job.entry_id} ({job.link}): {decision.error}")
        entry_store.mark_failed(conn, job.entry_id, decision.error or "failed")
        out.failed += 1
        return
    if decision.action in (Action.RETRY, Action.POSTPONE):
        out.errors.append(f"entry {job.entry_id} ({job.link}): {decision.error}")
        entry_store.mark_retry(conn, job.entry_id, decision.error or "retry", decision.retry_in or 0,
                               attempt=decision.action is Action.RETRY)
        if decision.action is Action.RETRY:
            out.retry += 1
        else:
            out.postponed += 1
        return
    article = decision.article
    if article.body_source == "feed":
        out.fallbacks += 1
    if _known_or_blocked(conn, settings, job, article, out):
        return
    article_id, joined = stories.add_article(conn, settings, article, index)
    events.after_load(conn, settings, article_id, article.body)  # citations, the story's event (issue 17)
    entry_store.mark_loaded(conn, job.entry_id, article_id)
    out.loaded += 1
    out.near_duplicates += joined
    out.article_ids.append(article_id)


def _known_or_blocked(conn: psycopg.Connection, settings: Settings, job: PageJob, article, out: BatchResult) -> bool:
    """Deleted articles stay deleted; the page of an article we hold is a correction or
    nothing (``corrections``). True when the entry is done."""
    blocked = corrections.blocked_by(conn, job, article)
    if blocked:
        out.errors.append(f"entry {job.entry_id} ({job.link}): {blocked}")
        entry_store.mark_failed(conn, job.entry_id, blocked)
        out.blocked += 1
        return True
    known = corrections.load_known(conn, settings, job, article)
    if known is None:
        return False
    outcome, article_id = known
    entry_store.mark_loaded(conn, job.entry_id, article_id)
    if outcome == "updated":
        out.updated += 1
    elif outcome == "unchanged":
        out.unchanged += 1
    else:
        out.exact_duplicates += 1
    return True


def _record_load_failure(conn: psycopg.Connection, settings: Settings, job: PageJob, exc: BaseException,
                         out: BatchResult) -> None:
    """The entry's writes were rolled back (its savepoint): the database refused this
    entry's own rows (or a bug tripped on its values). Record why, with a strike; at
    ``max_strikes`` the entry is quarantined (failed, with the reason)."""
    first_line = (str(exc).splitlines() or [""])[0][:300]
    error = f"load failed: {type(exc).__name__}: {first_line}"
    log.warning("entry %s (%s): %s", job.entry_id, job.link, error)
    out.errors.append(f"entry {job.entry_id} ({job.link}): {error}")
    strikes = job.strikes + 1
    if strikes >= settings.max_strikes:
        entry_store.mark_failed(conn, job.entry_id, f"quarantined: loading it failed {strikes} times; {error}")
        out.failed += 1
        out.quarantined += 1
    else:
        entry_store.mark_retry(conn, job.entry_id, error, backoff(settings.retry_backoff_base, job.attempts),
                               strike=True)
        out.retry += 1
    out.load_errors += 1

