"""The records that flow between the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


@dataclass
class ParsedFeed:
    entries: list[ParsedEntry]
    title: str | None = None
    ttl: int | None = None  # seconds, from RSS <ttl>
    error: str | None = None  # fatal: nothing usable
    warning: str | None = None  # recoverable: feedparser's bozo on a usable feed
    guid_mode: str = "guid"  # identity mode the entries were keyed with


@dataclass
class PollOutcome:
    feed_id: int
    url: str
    status: int | None
    new_entries: int = 0
    seen_entries: int = 0
    bytes: int = 0
    error: str | None = None
    not_modified: bool = False
    deferred: bool = False  # not requested: its host asked us to wait (Retry-After)


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


@dataclass
class Extracted:
    """What trafilatura found in a page (all optional)."""
    text: str | None = None
    title: str | None = None
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    image: str | None = None
    error: str | None = None
    # prepared in the extraction worker (see extract.extract_page)
    body: str | None = None  # normalised text, headline line dropped
    content_hash: str | None = None
    fingerprint: Any = None  # dedup.Fingerprint


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
    fingerprint: Any = None  # dedup.Fingerprint, when the worker computed it


@dataclass
class JobResult:
    """The outcome for one claimed entry, decided before anything is written."""
    job: PageJob
    article: Article | None = None
    error: str | None = None
    permanent: bool = False  # failure that retrying will not fix
    fetch_status: int | None = None
    fetch_bytes: int = 0
    fetch_ms: int | None = None
    fetched_url: str | None = None
    skipped_reason: str | None = None


@dataclass
class RunSummary:
    feeds_polled: int = 0
    feeds_failed: int = 0
    feeds_not_modified: int = 0
    entries_new: int = 0
    entries_processed: int = 0
    articles_loaded: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    entries_failed: int = 0
    entries_retry: int = 0
    fallbacks: int = 0
    errors: list[str] = field(default_factory=list)
