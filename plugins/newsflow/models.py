"""The records that flow between the pipeline's stages, in pipeline order.

Each record that people read has exactly one rendering, its ``summary()``: the command
line, the Airflow task logs and the pass report all print that, so a count never reads
differently in two places. Error kinds are an enum (:class:`ErrorKind`) that says whether
retrying can help; no stage matches error strings.

Only records that pass from one module to another live here (a stage's result read by the
next, a storage function's result read by a stage, what the CLI and Airflow both print);
a record with a single user lives beside it, and operator-facing wording (why a feed is in
its state) is in ``health.py``. Over 450 lines on purpose: it is the one place the
hand-offs are defined, each record small; splitting it by stage would hide them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Sequence

from .errors import ErrorKind  # noqa: F401 (re-exported: the records carry it)

if TYPE_CHECKING:  # annotations only
    from .httpclient import FetchResult


class Interrupted(Exception):
    """Work stopped on request (Ctrl-C, SIGTERM); what was claimed is to be released.
    Here, not in fetch, so the command line can catch it without importing the HTTP stack."""


# --- feeds and polling ----------------------------------------------------------------------

@dataclass(frozen=True)
class FeedSpec:
    """One feed as declared in FEEDS.yaml."""
    url: str
    publisher: str
    name: str | None = None
    enabled: bool = True
    poll_interval: int | None = None  # seconds
    tags: tuple[str, ...] = ()
    language: str | None = None


def feed_label(feed_id: int, publisher: str | None, name: str | None) -> str:
    """How a feed is named to people everywhere (logs, CLI, console, webhook):
    ``feed 7 (Example News - World)``: its id with its name, else its publisher."""
    return f"feed {feed_id} ({name or publisher or 'unnamed'})"


@dataclass
class FeedSync:
    """What syncing a feeds file did."""
    inserted: int = 0
    updated: int = 0
    feed_ids: list[int] = field(default_factory=list)  # the file's feeds, in file order
    unchanged: bool = False  # the file's bytes were synced before: nothing to do
    warnings: list[str] = field(default_factory=list)
    enabled_ids: list[int] = field(default_factory=list)  # feeds the file enabled again
    disabled_ids: list[int] = field(default_factory=list)  # feeds the file disabled
    labels: dict[int, str] = field(default_factory=dict)  # of the enabled and disabled feeds

    def summary(self) -> str:
        if self.unchanged:
            return f"unchanged since its last sync ({len(self.feed_ids)} feeds)"
        return (f"{self.inserted} new, {self.updated} known"
                + (f"; the file enabled {self._named(self.enabled_ids)}" if self.enabled_ids else "")
                + (f"; the file disabled {self._named(self.disabled_ids)}" if self.disabled_ids else ""))

    def _named(self, ids: list[int]) -> str:
        return ", ".join(self.labels.get(i, f"feed {i}") for i in ids)


@dataclass
class Feed:
    """A feed row with the state polling needs."""
    id: int
    url: str
    publisher: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    poll_interval: int | None = None
    effective_interval: int | None = None
    consecutive_errors: int = 0
    last_full_fetch_at: datetime | None = None
    guid_mode: str = "guid"
    name: str | None = None

    @property
    def label(self) -> str:
        return feed_label(self.id, self.publisher, self.name)


@dataclass(frozen=True)
class HostDeferral:
    """A host that asked (429/503) to be left alone for ``seconds``."""
    host: str
    seconds: float
    reason: str


@dataclass(frozen=True)
class PollDecision:
    """What a failed poll does (politeness.decide_poll_failure; written by
    storage.feeds.apply_failure in one transaction, in the documented lock order)."""
    feed_id: int
    status: int | None
    error: str
    retry_in: float  # seconds until the feed's next poll
    disable_reason: str | None = None
    errors: int = 1  # consecutive failures, this one included
    host_deferral: HostDeferral | None = None


@dataclass(frozen=True)
class ParsedEntry:
    """One feed item after parsing: identity resolved, link absolute, date in UTC."""
    guid: str
    link: str | None
    title: str | None
    summary: str | None
    author: str | None
    published_at: datetime | None
    raw_guid: str | None = None  # the feed's own id, kept to judge GUID quality
    notes: tuple[str, ...] = ()  # what the validation boundary changed or dropped
    updated_at: datetime | None = None  # the item's own "updated" date: a change means a correction


@dataclass
class ParsedFeed:
    entries: list[ParsedEntry]
    ttl: int | None = None  # seconds, from RSS <ttl>
    error: str | None = None  # fatal: nothing usable
    warning: str | None = None  # recoverable: feedparser's bozo, skipped items, downgrades
    guid_mode: str = "guid"  # identity mode the entries were keyed with


@dataclass
class PollOutcome:
    """What polling one feed did (also what `newsflow poll` prints per feed)."""
    feed_id: int
    url: str
    status: int | None
    new_entries: int = 0
    seen_entries: int = 0
    bytes: int = 0
    error: str | None = None
    not_modified: bool = False
    deferred: bool = False  # not requested: its host asked us to wait (Retry-After)
    changed_entries: int = 0  # loaded items whose date, title or summary changed: fetched again
    error_kind: ErrorKind | None = None  # a failed fetch: why (metrics count errors by kind)

    @property
    def failed(self) -> bool:
        """A failed poll (a host's Retry-After is not a failure: it was not asked)."""
        return bool(self.error) and not self.deferred

    def summary(self) -> str:
        state = (f"error: {self.error}" if self.error else "not modified" if self.not_modified
                 else f"{self.new_entries} new of {self.seen_entries}"
                 + (f", {self.changed_entries} changed (fetched again)" if self.changed_entries else ""))
        return f"[{self.status or '---'}] {self.url}  {state}"


@dataclass
class PollRound:
    """A poll of several feeds, counted: what the poll task returns and logs, what
    metrics send, what `newsflow poll` and the pass report print."""
    feeds: int = 0
    new_entries: int = 0
    failed: int = 0
    not_modified: int = 0
    deferred: int = 0

    @classmethod
    def of(cls, outcomes: Sequence[PollOutcome]) -> PollRound:
        return cls(feeds=len(outcomes), new_entries=sum(o.new_entries for o in outcomes),
                   failed=sum(o.failed for o in outcomes), not_modified=sum(o.not_modified for o in outcomes),
                   deferred=sum(o.deferred for o in outcomes))

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        return (f"{self.feeds} feeds polled: {self.new_entries} new entries, {self.failed} failed, "
                f"{self.not_modified} not modified, {self.deferred} deferred by their host's Retry-After")


# The states a feed can be in, in the order the console lists them ("failing first").
FEED_STATES = ("failing", "disabled", "stale", "deferred", "new", "healthy")


@dataclass(frozen=True)
class StaleRule:
    """When a feed that answers counts as stale (settings ``NEWSFLOW_STALE_*``/``RHYTHM_*``):
    no new entry for ``factor`` times its rhythm and at least ``min_age`` seconds, or, when
    its rhythm rests on fewer than ``min_samples`` gaps, for ``default_age`` seconds."""
    factor: float
    min_age: int
    default_age: int
    min_samples: int

    @classmethod
    def from_settings(cls, settings) -> "StaleRule":
        return cls(settings.stale_factor, settings.stale_min_age, settings.stale_default_age,
                   settings.rhythm_min_samples)


@dataclass
class FeedStatus:
    """One feed's health: `newsflow feeds status`, the maintenance report, the console.

    ``state``: failing (errors since its last success), disabled, stale (answers but
    brings nothing new for much longer than its rhythm), deferred (its host's Retry-After),
    new (not polled yet, or not since its errors were cleared), healthy. One SQL
    definition: ``storage.feeds.health``.
    """
    id: int
    publisher: str
    name: str | None
    url: str
    enabled: bool
    disabled_reason: str | None
    disabled_by: str | None  # 'file', 'operator'; None on a disabled feed: newsflow (errors)
    last_status: int | None
    consecutive_errors: int
    last_error: str | None
    last_polled_at: datetime | None
    next_poll_at: datetime
    effective_interval: int | None
    guid_mode: str
    state: str
    last_arrival_at: datetime | None  # when new entries last arrived
    rhythm_seconds: int | None  # its usual gap between arrivals (None: unknown)
    rhythm_samples: int
    rhythm_trusted: bool  # enough gaps measured (NEWSFLOW_RHYTHM_MIN_SAMPLES)
    stale_after: int  # seconds without a new entry after which it counts as stale
    last_success_at: datetime | None = None
    created_at: datetime | None = None
    entries: int = 0
    pending: int = 0
    failed: int = 0
    entries_24h: int = 0
    entries_7d: int = 0
    loaded_24h: int = 0
    loaded_7d: int = 0

    @property
    def label(self) -> str:
        return feed_label(self.id, self.publisher, self.name)


# --- article work ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PageJob:
    """A claimed pending entry whose article must be fetched."""
    entry_id: int
    feed_id: int
    publisher: str
    link: str | None
    title: str | None
    summary: str | None
    author: str | None
    published_at: datetime | None
    attempts: int
    host: str | None = None  # politeness unit of the link
    not_before: datetime | None = None  # the host slot reserved for this fetch (frontier)
    strikes: int = 0  # times loading this entry failed (the database refused its rows)
    article_id: int | None = None  # the article the entry already carried (a correction re-fetch)
    allow_deleted: bool = False  # an operator allowed a deleted article back (requeue --allow-deleted)


@dataclass(frozen=True)
class Candidate:
    """A due pending entry a claim may hand out (``storage.entries.candidates``): its place
    in its host's queue and whether its host can take a request soon."""
    id: int
    host: str | None
    strikes: int
    rank: int  # 1 for the oldest due entry of its host
    open: bool  # no host, or a host neither deferred nor booked beyond the horizon


@dataclass(frozen=True)
class HostSchedule:
    """A host's row, locked by a claim (``storage.hosts.lock``): when its next request may
    start, its robots.txt Crawl-delay, and whether it asked us to wait (Retry-After)."""
    host: str
    free_at: datetime
    crawl_delay: float | None
    deferred: bool


@dataclass(frozen=True)
class ExtractJob:
    """One page for the extraction workers."""
    html: bytes
    url: str
    titles: tuple[str | None, ...] = ()  # headlines to drop when the body starts with one
    search_date: bool = True  # False: the feed dated the entry, skip htmldate's deep search


# Stored with every signature (news.dedup_signatures.scheme): bump it with any change to
# the shingles, the MinHash family, the band hashing (newsflow.dedup) or what a signature
# row holds. Signatures of an older scheme are computed again from their articles' text
# (upgrade.reindex_signatures, run once by upgrade.ready after the upgrade).
# 1: the first; 2: the row also holds its band hashes (its band rows go with it);
# 3: the row also holds its passage sketch (dedup.passage_hashes; MinHash values unchanged).
SIGNATURE_SCHEME = 3


@dataclass(frozen=True)
class Fingerprint:
    """An article text's near-duplicate signature (see newsflow.dedup)."""
    shingles: tuple[int, ...]  # sorted unique signed int64 hashes
    minhash: tuple[int, ...]  # settings.dedup_num_perm values, each fits in signed int64
    bands: tuple[int, ...]  # one signed int64 per band, band i at index i
    # the shingle hashes in text order (repeats kept): a quoted passage is a run of them
    sequence: tuple[int, ...] = ()
    # the passage sketch (dedup.passage_hashes): finds a text that quotes a passage of this one
    passages: tuple[int, ...] = ()


@dataclass(frozen=True)
class Member:
    """An article already in the near-duplicate index."""
    article_id: int
    story_id: int
    shingles: tuple[int, ...]


@dataclass(frozen=True)
class Placement:
    """Where a text goes: its story and its relation to the story's representative."""
    story_id: int
    joined: bool  # False: a new story, this text its first member
    relation: str
    jaccard: float | None
    containment: float | None
    signal: str | None = None  # the evidence that decided (dedup.Assignment.signal) ...
    signal_value: float | None = None  # ... and its value


@dataclass
class Extracted:
    """What extraction made of a page (all optional). The body is normalised here, once:
    later stages never clean a page's text again."""
    text: str | None = None  # trafilatura's text, as it gave it
    title: str | None = None
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    image: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None  # NO_TEXT (the page has none), EXTRACTION (timeout, crash)
    notes: tuple[str, ...] = ()  # what the validation boundary changed or dropped
    body: str | None = None  # normalised text, headline line dropped
    content_hash: str | None = None
    fingerprint: Fingerprint | None = None


@dataclass
class Article:
    """A normalised article ready to load."""
    url: str
    canonical_url: str
    publisher: str
    title: str | None
    body: str
    published_at: datetime | None
    language: str | None
    authors: list[str]
    image_url: str | None
    site_name: str | None
    content_hash: str
    word_count: int
    body_source: str  # 'page' or 'feed'
    fallback_reason: str | None = None
    wire_credit: str | None = None
    fingerprint: Fingerprint | None = None  # when the extraction worker computed it


@dataclass(frozen=True)
class StoredArticle:
    """What a correction needs of an article already stored (``storage.revisions.known``)."""
    id: int
    story_id: int | None
    content_hash: str
    body_source: str  # 'page' or 'feed'
    published_at: datetime | None
    canonical_url: str


@dataclass(frozen=True)
class ArticleText:
    """An article as the rebuild reads it (``storage.articles.in_content_order``)."""
    id: int
    body: str
    at: datetime  # published_at, else fetched_at: never NULL
    story_id: int | None


class Action(str, Enum):
    LOAD = "load"  # store the article (or link the entry to the one it duplicates)
    RETRY = "retry"  # keep the entry pending, try again after a backoff (an attempt used)
    POSTPONE = "postpone"  # not attempted (its host asked us to wait): back in the queue as is
    FAIL = "fail"  # give up on the entry, with its error


@dataclass
class PageFetch:
    """What fetching an entry's page gave (newsflow.fetch), for the decision and the fetch log."""
    url: str
    result: FetchResult | None = None
    denied: tuple[ErrorKind, str] | None = None  # robots.txt forbids, or cannot be read
    deferred_for: float | None = None  # seconds the host asked to be left alone (429/503)
    crawl_delay: float | None = None  # the host's robots.txt Crawl-delay


@dataclass
class PageFetchRecord:
    """The HTTP fetch of an entry's page, for the fetch log."""
    status: int | None
    bytes: int
    ms: int
    url: str


@dataclass
class Decision:
    """What to do with one claimed entry: decided (by newsflow.decide) before anything is
    written, applied by ingestion in the write transaction."""
    job: PageJob
    action: Action
    article: Article | None = None  # LOAD
    error: str | None = None  # RETRY, FAIL; a LOAD from the feed's text: why the page failed
    kind: ErrorKind | None = None
    retry_in: float | None = None  # RETRY, POSTPONE: seconds
    fetch: PageFetchRecord | None = None


@dataclass
class BatchResult:
    """Counts of one ingestion batch, or of several added up."""
    claimed: int = 0
    loaded: int = 0  # new articles
    exact_duplicates: int = 0  # entries linked to an article that already existed
    near_duplicates: int = 0  # new articles that joined an existing story
    fallbacks: int = 0
    retry: int = 0
    failed: int = 0
    postponed: int = 0  # not attempted: the host asked us to wait (Retry-After)
    load_errors: int = 0  # entries whose write the database refused (recorded on each entry)
    lost: int = 0  # leases that ran out before the write: another worker writes those
    updated: int = 0  # corrections: a known article's page changed, updated in place (revision kept)
    unchanged: int = 0  # re-fetched known articles whose text had not changed
    blocked: int = 0  # deleted articles not loaded again (tombstone; requeue --allow-deleted)
    quarantined: int = 0  # of ``failed``: entries whose own writes failed max_strikes times
    db_retried: int = 0  # entries whose write met a transient database error, tried again later (no strike)
    article_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)  # page errors (retry, fail) by ErrorKind

    def count_error(self, kind: "ErrorKind | None") -> None:
        key = kind.value if kind else "other"
        self.error_kinds[key] = self.error_kinds.get(key, 0) + 1

    def add(self, other: "BatchResult") -> None:
        for f in fields(self):
            if f.name in ("article_ids", "errors"):
                getattr(self, f.name).extend(getattr(other, f.name))
            elif f.name == "error_kinds":
                for k, v in other.error_kinds.items():
                    self.error_kinds[k] = self.error_kinds.get(k, 0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        extra = "".join(f", {n} {what}" for n, what in (
            (self.postponed, "postponed (host asked to wait)"), (self.load_errors, "refused by the database"),
            (self.lost, "taken over by another worker"), (self.updated, "corrected in place"),
            (self.unchanged, "re-fetched unchanged"), (self.blocked, "deleted before (not loaded again)"),
            (self.quarantined, "quarantined (of the failed)"),
            (self.db_retried, "postponed by a transient database error")) if n)
        return (f"{self.claimed} entries -> {self.loaded} new articles, "
                f"{self.exact_duplicates} exact duplicates, {self.near_duplicates} joined a story, "
                f"{self.fallbacks} from feed text, {self.retry} to retry, {self.failed} failed{extra}")

    def counts(self) -> dict[str, int]:
        """The counts as plain values (what an Airflow task returns through XCom)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("article_ids", "errors", "error_kinds")}


# --- reports ----------------------------------------------------------------------------------

@dataclass
class Totals:
    """What the database holds, counted (the end of a pass report)."""
    feeds: int = 0
    entries: int = 0
    pending: int = 0
    failed: int = 0
    articles: int = 0
    fallbacks: int = 0
    stories: int = 0
    syndicated: int = 0  # stories carried by more than one outlet
    single_outlet: int = 0  # stories carried by one outlet

    def summary(self) -> str:
        return (f"{self.feeds} feeds, {self.entries} entries ({self.pending} pending, {self.failed} failed), "
                f"{self.articles} articles, {self.stories} stories "
                f"({self.syndicated} carried by several outlets)")


@dataclass
class StoryOverview:
    """A story with every outlet that carried it (identical copies included)."""
    id: int
    title: str | None
    origin_publisher: str | None
    origin_basis: str | None
    first_published_at: datetime | None
    outlet_count: int
    article_count: int
    members: list[str]  # "Publisher (relation)", in publication order

    def summary(self) -> list[str]:
        if self.outlet_count == 1:
            return [f"  #{self.id} {self.title or '(untitled)'} — {self.members[0]}"]
        origin = f"origin {self.origin_publisher} ({self.origin_basis})" if self.origin_publisher else ""
        return [f"  #{self.id} {self.title or '(untitled)'}",
                f"      {self.outlet_count} outlets, {self.article_count} distinct texts, {origin}",
                f"      carried by: {', '.join(self.members)}"]


# --- consumers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchHit:
    """One result of news_api.search(): the article, its rank, and its story."""
    article_id: int
    story_id: int | None
    title: str | None
    publisher: str
    language: str | None
    published_at: datetime | None
    sort_at: datetime
    url: str
    rank: float
    story_title: str | None
    outlet_count: int | None

    def summary(self) -> str:
        when = f"{self.sort_at:%Y-%m-%d %H:%M}"
        outlets = f", story #{self.story_id} carried by {self.outlet_count} outlets" if (self.outlet_count or 0) > 1 else ""
        return (f"{self.rank:6.3f}  {when}  [{self.language or '--'}] {self.publisher}: {self.title or '(untitled)'}\n"
                f"        article {self.article_id}{outlets}  {self.url}")

    def as_json(self) -> dict:
        """The hit for `newsflow search --format json`: search_hit's columns, times in ISO 8601 (UTC)."""
        out = dict(self.__dict__)
        for key in ("published_at", "sort_at"):
            if out[key] is not None:
                out[key] = out[key].astimezone(timezone.utc).isoformat()
        return out


# --- operations ---------------------------------------------------------------------------

@dataclass
class OperatorAction:
    """One operator action (console, CLI, feeds file, manual run), as news.operator_actions
    records it and the feed page's audit trail shows it."""
    actor: str
    source: str  # 'console', 'cli', 'feeds file', 'airflow'
    action: str  # 'poll now', 'enable', 'disable', 'requeue entry', 'requeue failed entries', 'requeue'
    feed_id: int | None = None
    entry_id: int | None = None
    detail: str = ""
    feed: str | None = None  # the feed's label
    at: datetime | None = None
    id: int | None = None
    dag_id: str | None = None  # the Airflow run the action started, if any
    dag_run_id: str | None = None

    def summary(self) -> str:
        """``admin (console) re-enabled feed 7 (Example News - World): was disabled: ...``"""
        target = self.feed or ""
        if self.entry_id and self.action == "requeue entry":
            target = f"entry {self.entry_id}" + (f" of {self.feed}" if self.feed else "")
        who = self.actor if self.actor == self.source else f"{self.actor} ({self.source})"
        return (f"{who} {_VERBS.get(self.action, self.action)}{' ' + target if target else ''}"
                + (f": {self.detail}" if self.detail else ""))


_VERBS = {"poll now": "asked to poll", "enable": "re-enabled", "disable": "disabled",
          "requeue entry": "requeued", "requeue failed entries": "requeued the failed entries of",
          "requeue": "requeued"}
