"""SQL for news.feeds: registry sync, due feeds, polling state, health."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Sequence

import psycopg
from psycopg.types.json import Jsonb

from ..models import Feed, FeedSpec, FeedStatus, PollDecision, StaleRule, feed_label
from ..redaction import redact
from . import hosts as host_store
from . import locks

_FEED_COLUMNS = """id, url, publisher, etag, last_modified, body_hash, poll_interval,
                   effective_interval, consecutive_errors, last_full_fetch_at, guid_mode, name"""


FILE_DISABLED = "disabled in the feeds file (enabled: false)"


def lock_for_sync(conn: psycopg.Connection, timeout: float, stop: threading.Event | None = None) -> None:
    """Serialise syncs (two runs starting together on a new feeds file); the wait is
    bounded by ``timeout`` and ended by ``stop`` (storage.locks)."""
    locks.take(conn, locks.FEEDS_SYNC, timeout=timeout, stop=stop)


def declared(conn: psycopg.Connection) -> list[dict]:
    """Every feed's id, current URL and the URL it was declared with (for matching)."""
    return conn.execute("SELECT id, url, coalesce(declared_url, url) AS declared FROM news.feeds "
                        "ORDER BY id").fetchall()


def update_declared(conn: psycopg.Connection, pairs: Sequence[tuple[int, FeedSpec]]) -> tuple[list[int], list[int]]:
    """Apply the file's declared fields to known feeds (one statement); returns the ids
    the file (enabled, disabled). Polling state is left alone.

    What the file's ``enabled`` means (docs/politeness.md, "Disabled feeds"): ``false`` disables an
    enabled feed; ``true`` enables again only a feed the file itself disabled. A feed
    newsflow disabled after errors, or an operator disabled, stays disabled until an
    operator re-enables it."""
    if not pairs:
        return [], []
    rows = conn.execute("""
        UPDATE news.feeds f SET publisher = s.publisher, name = s.name, poll_interval = s.interval,
               tags = ARRAY(SELECT jsonb_array_elements_text(s.tags)), language = s.language,
               enabled = CASE WHEN NOT s.enabled THEN false
                              WHEN f.disabled_by = 'file' THEN true ELSE f.enabled END,
               disabled_by = CASE WHEN NOT s.enabled AND f.enabled THEN 'file'
                                  WHEN s.enabled AND f.disabled_by = 'file' THEN NULL
                                  ELSE f.disabled_by END,
               disabled_reason = CASE WHEN NOT s.enabled AND f.enabled THEN %s
                                      WHEN s.enabled AND f.disabled_by = 'file' THEN NULL
                                      ELSE f.disabled_reason END,
               consecutive_errors = CASE WHEN s.enabled AND f.disabled_by = 'file' THEN 0
                                         ELSE f.consecutive_errors END,
               next_poll_at = CASE WHEN s.enabled AND f.disabled_by = 'file' THEN now()
                                   ELSE f.next_poll_at END,
               updated_at = now()
        FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::jsonb[], %s::text[], %s::bool[])
             AS s(id, publisher, name, interval, tags, language, enabled),
             (SELECT id, enabled FROM news.feeds WHERE id = ANY(%s) FOR UPDATE) old
        WHERE f.id = s.id AND old.id = f.id
        RETURNING f.id, old.enabled AS was_enabled, f.enabled""",
        [FILE_DISABLED, *_columns([(feed_id, *_declared_values(spec)) for feed_id, spec in pairs]),
         [feed_id for feed_id, _ in pairs]]).fetchall()
    changed = [r for r in rows if r["enabled"] != r["was_enabled"]]
    return [r["id"] for r in changed if r["enabled"]], [r["id"] for r in changed if not r["enabled"]]


def insert_declared(conn: psycopg.Connection, specs: Sequence[FeedSpec]) -> dict[str, int]:
    """Add new feeds (one statement); their ids by URL. A feed the file declares disabled
    is disabled by the file."""
    if not specs:
        return {}
    rows = conn.execute("""
        INSERT INTO news.feeds (url, declared_url, publisher, name, poll_interval, tags, language, enabled,
                                disabled_by, disabled_reason)
        SELECT s.url, s.url, s.publisher, s.name, s.interval, ARRAY(SELECT jsonb_array_elements_text(s.tags)),
               s.language, s.enabled, CASE WHEN s.enabled THEN NULL ELSE 'file' END,
               CASE WHEN s.enabled THEN NULL ELSE %s END
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::jsonb[], %s::text[], %s::bool[])
             AS s(url, publisher, name, interval, tags, language, enabled)
        ON CONFLICT DO NOTHING
        RETURNING id, url""",
        [FILE_DISABLED, *_columns([(spec.url, *_declared_values(spec)) for spec in specs])]).fetchall()
    return {r["url"]: r["id"] for r in rows}


def _declared_values(spec: FeedSpec) -> tuple:
    return (spec.publisher, spec.name, spec.poll_interval, Jsonb(list(spec.tags)), spec.language, spec.enabled)


def _columns(rows: list[tuple]) -> list[list]:
    return [list(col) for col in zip(*rows, strict=True)]


def _feed(row: dict) -> Feed:
    return Feed(**{k: row[k] for k in Feed.__dataclass_fields__})


def due(conn: psycopg.Connection, limit: int = 1000, now: datetime | None = None) -> list[Feed]:
    rows = conn.execute(f"""
        SELECT {_FEED_COLUMNS} FROM news.feeds
        WHERE enabled AND next_poll_at <= coalesce(%s, now())
        ORDER BY next_poll_at, id LIMIT %s""", (now, limit)).fetchall()
    return [_feed(r) for r in rows]


def by_ids(conn: psycopg.Connection, ids: Sequence[int]) -> list[Feed]:
    rows = conn.execute(f"SELECT {_FEED_COLUMNS} FROM news.feeds WHERE id = ANY(%s) ORDER BY id",
                        (list(ids),)).fetchall()
    return [_feed(r) for r in rows]


def enabled(conn: psycopg.Connection) -> list[Feed]:
    rows = conn.execute(f"SELECT {_FEED_COLUMNS} FROM news.feeds WHERE enabled ORDER BY id").fetchall()
    return [_feed(r) for r in rows]


def record_success(conn: psycopg.Connection, feed_id: int, *, status: int, etag: str | None,
                   last_modified: str | None, body_hash: str | None, full_fetch: bool,
                   interval: int, guid_mode: str | None = None,
                   warning: str | None = None, keep_warning: bool = False) -> None:
    """A successful poll. ``keep_warning``: the document was not re-read (304 or same
    bytes), so a warning from its last parse (e.g. an identity downgrade) stays shown.
    A Retry-After its host gave in the meantime (to another feed's poll in flight at the
    same moment) still holds the next poll back."""
    conn.execute(f"""
        UPDATE news.feeds SET
            etag = coalesce(%(etag)s, etag), last_modified = coalesce(%(lm)s, last_modified),
            body_hash = coalesce(%(hash)s, body_hash), last_status = %(status)s,
            last_polled_at = now(),
            last_full_fetch_at = CASE WHEN %(full)s THEN now() ELSE last_full_fetch_at END,
            effective_interval = %(interval)s,
            next_poll_at = greatest(now() + make_interval(secs => %(interval)s), {_HOST_WAIT}),
            last_error = CASE WHEN %(keep)s AND consecutive_errors = 0 THEN last_error
                              ELSE %(warning)s END,
            consecutive_errors = 0,
            guid_mode = coalesce(%(mode)s, guid_mode), updated_at = now()
        WHERE id = %(id)s""",
        {"etag": etag, "lm": last_modified, "hash": body_hash, "status": status,
         "full": full_fetch, "interval": interval, "mode": guid_mode, "warning": warning,
         "keep": keep_warning, "id": feed_id})


def lock(conn: psycopg.Connection, feed_id: int) -> None:
    """Lock one feed's row for the rest of the transaction: the first row lock of a poll
    outcome (docs/politeness.md, "Lock order": hosts, feeds, entries, articles)."""
    conn.execute("SELECT id FROM news.feeds WHERE id = %s FOR UPDATE", (feed_id,))


def apply_failure(conn: psycopg.Connection, decision: PollDecision) -> None:
    """Write a failed poll's decision (politeness.decide_poll_failure), in the lock order:
    the host's row (when its host asked us to wait), then the feed rows it touches in id
    order (the host's other enabled feeds, pushed back, and this one), nothing else."""
    deferral = decision.host_deferral
    if deferral is not None:
        host_store.defer(conn, deferral.host, deferral.seconds, deferral.reason)
        conn.execute(f"""
            SELECT id FROM news.feeds WHERE id = %s OR (enabled AND {_HOST_SQL} = %s)
            ORDER BY id FOR UPDATE""", (decision.feed_id, deferral.host.lower()))
        defer_host(conn, deferral.host, deferral.seconds, except_feed=decision.feed_id)
    else:
        lock(conn, decision.feed_id)
    record_failure(conn, decision.feed_id, status=decision.status, error=decision.error,
                   retry_in=decision.retry_in, disable_reason=decision.disable_reason)


def record_failure(conn: psycopg.Connection, feed_id: int, *, status: int | None, error: str,
                   retry_in: float, disable_reason: str | None) -> None:
    """A failed poll: retried after ``retry_in`` (or when its host allows, if later)."""
    conn.execute(f"""
        UPDATE news.feeds SET
            last_status = %(status)s, last_polled_at = now(),
            consecutive_errors = consecutive_errors + 1, last_error = %(error)s,
            next_poll_at = greatest(now() + make_interval(secs => %(retry)s), {_HOST_WAIT}),
            enabled = CASE WHEN %(disable)s::text IS NULL THEN enabled ELSE false END,
            disabled_reason = coalesce(%(disable)s, disabled_reason), updated_at = now()
        WHERE id = %(id)s""",
        {"status": status, "error": redact(error)[:2000], "retry": retry_in,
         "disable": redact(disable_reason)[:2000] if disable_reason else None,
         "id": feed_id})


def note_error(conn: psycopg.Connection, feed_id: int, error: str) -> None:
    """An error that was not the feed's (a transient database error that outlasted its
    retries): shown on the feed, counts no failure, the feed stays due."""
    conn.execute("UPDATE news.feeds SET last_error = %s, updated_at = now() WHERE id = %s",
                 (redact(error)[:2000], feed_id))


# host[:port] of a feed URL, as politeness.host_key computes it in Python (the host
# after the last @ of the authority, lower case).
_HOST_SQL = r"lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?([^/?#]*)'))"
# When the feed's host asked every poll to wait (news.hosts, Retry-After): a feed's next
# poll is never earlier, whatever its own poll in flight meanwhile answered.
_HOST_WAIT = f"(SELECT deferred_until FROM news.hosts WHERE host = {_HOST_SQL})"


def defer(conn: psycopg.Connection, feed_id: int, seconds: float) -> None:
    """Push one feed's next poll back without counting an error."""
    conn.execute("""
        UPDATE news.feeds SET next_poll_at = greatest(next_poll_at, now() + make_interval(secs => %s)),
               updated_at = now()
        WHERE id = %s""", (seconds, feed_id))


def defer_host(conn: psycopg.Connection, host: str, seconds: float, except_feed: int | None = None) -> int:
    """Push back every enabled feed on ``host`` (it sent 429/503 with Retry-After)."""
    cur = conn.execute(f"""
        UPDATE news.feeds SET next_poll_at = greatest(next_poll_at, now() + make_interval(secs => %s)),
               updated_at = now()
        WHERE enabled AND id IS DISTINCT FROM %s AND {_HOST_SQL} = %s""",
        (seconds, except_feed, host.lower()))
    return cur.rowcount


def move(conn: psycopg.Connection, feed_id: int, new_url: str) -> bool:
    """Follow a permanent redirect; refused when another feed already has that URL.
    The URL it was declared with is kept in ``declared_url`` for the next sync."""
    row = conn.execute("""
        UPDATE news.feeds SET url = %s, declared_url = coalesce(declared_url, url), updated_at = now()
        WHERE id = %s AND NOT EXISTS (SELECT 1 FROM news.feeds WHERE url = %s)
        RETURNING id""", (new_url, feed_id, new_url)).fetchone()
    return row is not None


# --- operations (newsflow.operations) and health (console, CLI, maintenance) -------------------

_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-"})


def find(conn: psycopg.Connection, ref: str) -> list[dict]:
    """Feeds matching a reference as people give one: an id, ``feed 7 (...)``, a URL (current
    or declared), a name, or a publisher for a feed without a name. Dashes are compared
    loosely ("Example News – World" finds "Example News - World")."""
    ref = ref.strip()
    match = re.fullmatch(r"(?:feed\s+)?#?(\d+)(?:\s*\(.*\))?", ref)
    key = int(match.group(1)) if match else None
    loose = ref.translate(_DASHES).lower()
    return conn.execute("""
        SELECT id, publisher, name, url, enabled, disabled_by, disabled_reason FROM news.feeds
        WHERE id = %(id)s OR url = %(ref)s OR declared_url = %(ref)s
           OR lower(translate(name, '–—', '--')) = %(loose)s
           OR (name IS NULL AND lower(translate(publisher, '–—', '--')) = %(loose)s)
        ORDER BY (id = %(id)s) DESC NULLS LAST, id LIMIT 10""",
        {"id": key, "ref": ref, "loose": loose}).fetchall()


def enable(conn: psycopg.Connection, feed_id: int) -> dict | None:
    """Enable a feed, clear its errors and disabled reason, make it due now. Returns its
    state before (None: no such feed)."""
    return conn.execute("""
        UPDATE news.feeds f SET enabled = true, disabled_by = NULL, disabled_reason = NULL,
               consecutive_errors = 0, last_error = NULL, next_poll_at = now(), updated_at = now()
        FROM (SELECT id, enabled, disabled_by, disabled_reason FROM news.feeds WHERE id = %s FOR UPDATE) old
        WHERE f.id = old.id
        RETURNING old.enabled, old.disabled_by, old.disabled_reason""", (feed_id,)).fetchone()


def disable(conn: psycopg.Connection, feed_id: int, reason: str) -> None:
    """Disable a feed on an operator's word."""
    conn.execute("""
        UPDATE news.feeds SET enabled = false, disabled_by = 'operator', disabled_reason = %s,
               updated_at = now()
        WHERE id = %s""", (reason[:2000], feed_id))


def next_due(conn: psycopg.Connection) -> datetime | None:
    """When the next enabled feed is due (None: no enabled feed)."""
    return conn.execute("SELECT min(next_poll_at) AS at FROM news.feeds WHERE enabled").fetchone()["at"]


def make_due(conn: psycopg.Connection, feed_id: int) -> bool:
    """An enabled feed is due now (the next poll run takes it, whatever its interval)."""
    return conn.execute("""
        UPDATE news.feeds SET next_poll_at = least(next_poll_at, now()), updated_at = now()
        WHERE id = %s AND enabled RETURNING id""", (feed_id,)).fetchone() is not None


# Sort orders of the health list: whitelisted SQL, never input.
HEALTH_SORTS = {
    "state": "array_position(ARRAY['failing','disabled','stale','deferred','new','healthy'], state), "
             "consecutive_errors DESC, publisher, name NULLS FIRST, id",
    "name": "publisher, name NULLS FIRST, id",
    "quiet": "coalesce(last_arrival_at, created_at), id",
    "last_poll": "last_polled_at DESC NULLS LAST, id",
    "errors": "consecutive_errors DESC, id",
    "next_poll": "next_poll_at, id",
    "id": "id",
}

# One definition of a feed's state (models.FeedStatus): failing and disabled from the row;
# deferred when its next poll is later than its own schedule puts it (after a success the
# poll sets next_poll_at = last_polled_at + effective_interval exactly: only a host's
# Retry-After, through storage.feeds.defer/defer_host, pushes it further); new when it was
# not polled, or its last answer was an error that an operator cleared (re-enabled); stale
# when it answers but its last arrival of new entries is older than its stale_after.
_HEALTH = """
WITH s AS MATERIALIZED (
    SELECT f.id, f.publisher, f.name, f.url, f.enabled, f.disabled_reason, f.disabled_by,
           f.last_status, f.consecutive_errors, f.last_error, f.last_polled_at, f.next_poll_at,
           f.effective_interval, f.guid_mode, f.created_at, la.last_arrival_at,
           r.rhythm_seconds, coalesce(r.samples, 0) AS rhythm_samples,
           coalesce(r.samples, 0) >= %(min_samples)s AS rhythm_trusted,
           CASE WHEN coalesce(r.samples, 0) >= %(min_samples)s
                THEN greatest(%(min_age)s, round(%(factor)s * r.rhythm_seconds))::int
                ELSE %(default_age)s END AS stale_after
    FROM news.feeds f
    LEFT JOIN news.feed_rhythm r ON r.feed_id = f.id
    LEFT JOIN LATERAL (SELECT e.first_seen_at AS last_arrival_at FROM news.entries e
                       WHERE e.feed_id = f.id ORDER BY e.first_seen_at DESC LIMIT 1) la ON true
    WHERE (%(q)s::text IS NULL OR f.publisher ILIKE %(q)s OR f.name ILIKE %(q)s OR f.url ILIKE %(q)s)
      AND (%(ids)s::bigint[] IS NULL OR f.id = ANY(%(ids)s::bigint[]))
), st AS (
    SELECT s.*, CASE
        WHEN NOT s.enabled THEN 'disabled'
        WHEN s.consecutive_errors > 0 THEN 'failing'
        WHEN s.next_poll_at > now() AND (s.last_polled_at IS NULL OR s.next_poll_at >
             s.last_polled_at + make_interval(secs => coalesce(s.effective_interval, 0) + 1)) THEN 'deferred'
        WHEN s.last_polled_at IS NULL OR s.last_status IS NULL OR s.last_status >= 400 THEN 'new'
        WHEN now() - coalesce(s.last_arrival_at, s.created_at) > make_interval(secs => s.stale_after)
             THEN 'stale'
        ELSE 'healthy' END AS state
    FROM s
), page AS (
    SELECT st.*, row_number() OVER (ORDER BY {order}) AS pos FROM st
    WHERE %(state)s::text IS NULL OR state = %(state)s
    ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s
)
SELECT cnt.counts, p.* FROM
    (SELECT coalesce(json_object_agg(state, n), '{{}}') AS counts
     FROM (SELECT state, count(*) AS n FROM st GROUP BY state) x) cnt
LEFT JOIN LATERAL (
    SELECT page.*, c.*, coalesce(ls.at, CASE WHEN page.consecutive_errors = 0 AND page.last_status < 400
                                             THEN page.last_polled_at END) AS last_success_at
    FROM page
    LEFT JOIN LATERAL (
        SELECT count(*) AS entries,
               count(*) FILTER (WHERE e.status = 'pending') AS pending,
               count(*) FILTER (WHERE e.status = 'failed') AS failed,
               count(*) FILTER (WHERE e.first_seen_at > now() - interval '24 hours') AS entries_24h,
               count(*) FILTER (WHERE e.first_seen_at > now() - interval '7 days') AS entries_7d,
               count(*) FILTER (WHERE e.status = 'loaded'
                                  AND e.first_seen_at > now() - interval '24 hours') AS loaded_24h,
               count(*) FILTER (WHERE e.status = 'loaded'
                                  AND e.first_seen_at > now() - interval '7 days') AS loaded_7d
        FROM news.entries e WHERE e.feed_id = page.id) c ON true
    LEFT JOIN LATERAL (
        SELECT max(l.fetched_at) AS at FROM news.fetch_log l
        WHERE l.feed_id = page.id AND l.kind = 'feed' AND l.error IS NULL) ls ON true
) p ON true
ORDER BY p.pos
"""


def health(conn: psycopg.Connection, rule: StaleRule, *, state: str | None = None,
           q: str | None = None, ids: Sequence[int] | None = None, sort: str = "state",
           limit: int | None = None, offset: int = 0) -> tuple[list[FeedStatus], dict[str, int]]:
    """Feeds with their state and why, filtered (state, text in publisher/name/URL, ids),
    sorted (``HEALTH_SORTS``) and paginated; plus the number of feeds in each state (of
    those matching ``q``/``ids``)."""
    order = HEALTH_SORTS.get(sort)
    if order is None:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(HEALTH_SORTS)}")
    pattern = None
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(_HEALTH.format(order=order), {
        "min_samples": rule.min_samples, "min_age": rule.min_age, "factor": rule.factor,
        "default_age": rule.default_age, "q": pattern, "ids": list(ids) if ids is not None else None,
        "state": state, "limit": limit, "offset": offset}).fetchall()
    counts = {k: int(v) for k, v in (rows[0]["counts"] if rows else {}).items()}
    fields = FeedStatus.__dataclass_fields__
    # for display: a feed URL's credentials are never shown (they stay in news.feeds.url)
    return [FeedStatus(**{**{k: r[k] for k in fields if k in r}, "url": redact(r["url"])})
            for r in rows if r["id"] is not None], counts


def labels(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, str]:
    """``feed 7 (Example News - World)`` for each id."""
    rows = conn.execute("SELECT id, publisher, name FROM news.feeds WHERE id = ANY(%s)", (list(ids),))
    return {r["id"]: feed_label(r["id"], r["publisher"], r["name"]) for r in rows}
