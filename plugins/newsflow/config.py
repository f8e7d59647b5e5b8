"""Settings: every limit of the pipeline in one place.

Each field is read from an environment variable ``NEWSFLOW_<FIELD NAME IN CAPS>``
(for example ``NEWSFLOW_READ_TIMEOUT=30``).  Airflow users set the same names as
environment variables of the workers, or as Airflow Variables with the same name
(see ``newsflow/airflow/context.py``).  Defaults are the production-safe ones: benchmarks
may lift politeness explicitly, production never does so silently.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

ENV_PREFIX = "NEWSFLOW_"


@dataclass(frozen=True)
class Settings:
    # --- database -------------------------------------------------------------
    database_url: str = ""  # libpq URL; empty = embedded PostgreSQL under data_dir
    data_dir: str = ".newsflow"  # embedded PostgreSQL data and other local state
    db_retries: int = 4  # tries of one transaction that met a deadlock/serialization failure/lock or statement timeout
    db_retry_delay: float = 0.2  # seconds before the 2nd try, doubled per try, with 0.5-1.5x jitter
    lock_timeout: float = 10.0  # seconds any lock wait may last: row locks and the load, changes and feeds-sync locks (a batch's write is then retried, see db_retries; a command ends naming the lock)

    # --- HTTP (feeds and pages) ------------------------------------------------
    user_agent: str = "newsflow/0.1 (+{contact_url})"  # User-Agent template; keep the product name
    contact_url: str = "https://github.com/newsflow/newsflow"  # where publishers reach you: set yours
    connect_timeout: float = 10.0  # seconds to establish a TCP/TLS connection
    read_timeout: float = 20.0  # seconds between two received chunks
    total_timeout: float = 60.0  # seconds for one whole response (slowloris guard)
    max_feed_bytes: int = 10 * 1024 * 1024  # decoded size cap for a feed document
    max_page_bytes: int = 5 * 1024 * 1024  # decoded size cap for an article page
    max_redirects: int = 5  # redirect hops followed (each hop re-checked by the address guard)
    allow_private_networks: bool = False  # loopback/private targets refused unless set

    # --- polling ---------------------------------------------------------------
    poll_concurrency: int = 8  # feeds polled at once
    parse_pool_min_feeds: int = 50  # a poll of this many feeds parses documents in worker processes
    parse_timeout: float = 30.0  # seconds a feed document may take to parse in a worker (then killed)
    default_poll_interval: int = 900  # seconds, when a feed does not say
    min_poll_interval: int = 300  # never poll one feed more often than this
    max_poll_interval: int = 86400  # adaptive interval ceiling
    full_fetch_interval: int = 12 * 3600  # unconditional GET at least this often
    max_feed_errors: int = 10  # consecutive failures before a feed is disabled
    error_backoff_base: int = 300  # seconds; doubled per consecutive error
    retry_after_cap: int = 24 * 3600  # cap on a server's Retry-After
    host_backoff_default: float = 60.0  # seconds a host is left alone after a 429/503 without Retry-After (feeds and pages)

    # --- article fetching --------------------------------------------------------
    fetch_concurrency: int = 8  # article fetches in flight overall
    per_host_concurrency: int = 2  # article fetches in flight per host
    per_host_delay: float = 1.0  # seconds between two requests to one host
    obey_robots: bool = True  # robots.txt obeyed for article pages
    max_crawl_delay: float = 60.0  # a robots.txt Crawl-delay is honoured up to this many seconds
    frontier_horizon: float = 2.0  # seconds of a host's schedule one claim may reserve (entries per host per batch)
    frontier_scan: int = 5000  # oldest due entries a claim chooses from (hosts in rotation)
    frontier_max_wait: float = 30.0  # a worker waits this long for a busy host's next slot, else ends its run
    max_attempts: int = 5  # article fetch attempts before an entry is marked failed
    retry_backoff_base: int = 300  # seconds; doubled per failed attempt
    batch_size: int = 32  # entries claimed per batch (claimed in one short transaction)
    ingest_concurrency: int = 2  # batches in flight per process: one loads while one extracts
    lease_seconds: int = 900  # a claimed entry is another worker's again after this long
    max_strikes: int = 3  # failed loads of one entry (rows the database refused) before quarantine; claims never count

    # --- extraction ----------------------------------------------------------------
    extract_workers: int = 0  # process pool size; 0 = number of CPU cores
    extract_timeout: float = 30.0  # seconds per page before the worker is killed
    max_extract_bytes: int = 2 * 1024 * 1024  # HTML larger than this is truncated
    min_body_chars: int = 200  # shorter extracted text counts as "no text"

    # --- untrusted input (one validation boundary: newsflow/validate.py) ------------------
    max_title_chars: int = 1000  # longer titles are cut (feed and page)
    max_author_chars: int = 500  # longer author fields are cut
    max_summary_chars: int = 200_000  # feed summary/content text kept per entry
    max_body_chars: int = 500_000  # article text kept (PostgreSQL's tsvector caps at 1 MB)
    max_guid_bytes: int = 1000  # longer entry identities (UTF-8 bytes) are replaced by their sha256
    max_url_bytes: int = 2048  # longer links, canonicals and image URLs (UTF-8 bytes) are dropped
    min_year: int = 1990  # dates before this year are dropped (zero dates, epoch 0)
    max_future_seconds: int = 86400  # dates further in the future than this are dropped
    min_hash_words: int = 5  # bodies with fewer words never match another by content hash

    # --- dedup ---------------------------------------------------------------------
    dedup_window_days: int = 7  # near-duplicates are searched within +/- this many days
    dedup_shingle_size: int = 5  # words per shingle
    dedup_num_perm: int = 128  # MinHash permutations
    dedup_bands: int = 64  # LSH: 64 bands x 2 rows (evidence in docs/dedup.md)
    dedup_rows: int = 2  # rows per LSH band (bands x rows <= num_perm)
    dedup_containment: float = 0.5  # same story when containment >= this ...
    dedup_jaccard: float = 0.3  # ... or Jaccard >= this
    dedup_min_shingles: int = 20  # texts shorter than this match only at Jaccard >= 0.9
    # A credited text ("Via ...", "(Reuters) -") below the copy thresholds joins as an
    # excerpt when it quotes one passage of at least this many consecutive shingles ...
    dedup_quote_run: int = 40
    # ... and at least this share of its shingles are the story's (docs/dedup.md)
    dedup_quote_containment: float = 0.3
    dedup_passage_max_texts: int = 100  # a passage hash more indexed texts of the window share is standing text (a footer), not a quotation: it proposes nobody

    # --- consumers (news_api: corrections, search, export) --------------------------
    correction_min_interval: int = 3600  # seconds: a loaded item whose feed entry changed is fetched again no sooner than this after its last load
    search_candidates: int = 5000  # newest matches ranked per search (fewer matches: exact ranking)
    search_limit: int = 20  # results `newsflow search` prints unless --limit
    export_batch_size: int = 2000  # rows per round trip of `newsflow export` (memory stays constant)
    export_progress_rows: int = 50000  # `newsflow export` reports progress on stderr every this many rows
    changes_retention_days: int = 0  # change-feed rows kept this long by maintenance; 0 = forever

    # --- events (docs/events.md) ----------------------------------------------------
    event_window_hours: int = 72  # a story is compared with stories published within +/- this many hours
    event_threshold: float = 0.8  # same event when the link score (probability, time-weighted) reaches this (docs/events.md) ...
    event_min_entities: int = 1  # ... and at least this many named entities are shared
    event_min_lexical: float = 0.1  # ... and the titles + ledes share at least this much (word-set cosine)
    event_merge_threshold: float = 0.99  # a story that matches stories of two events this well merges them
    event_grace_hours: float = 0  # stories this close in time are compared on their text alone ...
    event_half_life_hours: float = 72  # ... further apart, a link's probability halves every this many hours (0: off)
    event_candidates: int = 200  # stories compared per new story at most (most shared entities/numbers first)
    event_key_max_stories: int = 300  # an entity or number carried by more stories than this in the window is not looked up by
    event_lede_chars: int = 400  # characters of the body (after the title) compared word by word
    event_entity_chars: int = 1200  # characters of the body searched for entities and numbers
    event_rebuild_batch: int = 500  # stories per transaction of `newsflow events rebuild`

    # --- demo ------------------------------------------------------------------------
    demo_port: int = 8765  # loopback port of the sample world (fixed: feed URLs must not change)

    # --- maintenance -------------------------------------------------------------
    retention_days: int = 90  # raw data (fetch log, failed entries) kept this long

    # --- feed health -------------------------------------------------------------
    stale_factor: float = 4.0  # stale: a feed answers but brings no new entry for this many times its usual gap ...
    stale_min_age: int = 86400  # ... and for at least this many seconds
    stale_default_age: int = 7 * 86400  # seconds without a new entry that make a feed of unknown rhythm stale
    rhythm_arrivals: int = 30  # a feed's rhythm: the median gap between its last this-many arrivals of new entries
    rhythm_min_samples: int = 5  # gaps needed before a rhythm is trusted (fewer: NEWSFLOW_STALE_DEFAULT_AGE applies)
    rhythm_lookback_days: int = 90  # arrivals older than this are not measured

    # --- operations console (Airflow UI) -------------------------------------------
    console_page_size: int = 50  # rows per page: feeds, stories, entries, failed entries
    console_history_days: int = 14  # span of a feed page's fetch-history chart and fetch list
    console_pipeline_hours: int = 48  # span of the Pipeline page's articles-per-hour chart
    console_runs: int = 5  # last runs shown per DAG on the Pipeline page
    console_api_url: str = ""  # Airflow REST API the console calls (poll now, runs); empty = [api] base_url
    console_api_timeout: float = 10.0  # seconds for one call to that API
    console_follow_refresh: int = 5  # seconds between reloads of a feed page while its "Poll now" run is queued or running
    console_settings_ttl: int = 60  # seconds the console keeps settings and the connection before re-reading

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> "Settings":
        """Defaults, then ``NEWSFLOW_*`` environment variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _coerce(f, raw)
        for key, value in (overrides or {}).items():
            f = _field(cls, key)
            values[f.name] = _coerce(f, value) if isinstance(value, str) else value
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @property
    def http_user_agent(self) -> str:
        return self.user_agent.format(contact_url=self.contact_url)

    def extract_pool_size(self) -> int:
        return self.extract_workers or (os.cpu_count() or 1)


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in fields(cls):
        if f.name == name.lower().removeprefix(ENV_PREFIX.lower()):
            return f
    raise KeyError(f"unknown newsflow setting: {name}")


def _coerce(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return raw
    except ValueError:
        raise ValueError(
            f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind}") from None


def describe() -> list[tuple[str, str, Any]]:
    """(env var, type, default) for every setting; used by `newsflow config`."""
    return [(ENV_PREFIX + f.name.upper(), str(f.type), f.default) for f in fields(Settings)]


def documentation() -> list[tuple[str, str, Any, str]]:
    """(env var, type, default, meaning) for every setting, the meaning taken from the
    comment beside the field above: docs/configuration.md is generated from it
    (`newsflow config --markdown`; tests/test_docs.py keeps the two in step)."""
    import inspect
    import re

    comments: dict[str, str] = {}
    section = ""
    for line in inspect.getsource(Settings).splitlines():
        heading = re.match(r"\s*# --- (.+?) -*$", line)
        if heading:
            section = heading.group(1)
        field = re.match(r"\s*(\w+): [\w| ]+ = .*?(?:#\s*(.*))?$", line)
        if field:
            comments[field.group(1)] = (field.group(2) or section).strip()
    return [(env, kind, default, comments.get(env.removeprefix(ENV_PREFIX).lower(), ""))
            for env, kind, default in describe()]
