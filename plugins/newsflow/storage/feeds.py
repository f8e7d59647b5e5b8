"""SQL for news.feeds: registry sync, due feeds, polling state, health."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg
from psycopg.types.json import Jsonb

from ..models import Feed, FeedSpec, FeedStatus
from ..redaction import redact

_FEED_COLUMNS = """id, url, publisher, etag, last_modified, body_hash, poll_interval,
                   effective_interval, consecutive_errors, last_full_fetch_at, guid_mode"""


SYNC_LOCK = "newsflow.feeds.sync"


def lock_for_sync(conn: psycopg.Connection) -> None:
    """Serialise syncs (two runs starting together on a new feeds file)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SYNC_LOCK,))


def declared(conn: psycopg.Connection) -> list[dict]:
    """Every feed's id, current URL and the URL it was declared with (for matching)."""
    return conn.execute("SELECT id, url, coalesce(declared_url, url) AS declared FROM news.feeds "
                        "ORDER BY id").fetchall()


def update_declared(conn: psycopg.Connection, pairs: Sequence[tuple[int, FeedSpec]]) -> None:
    """Apply the file's declared fields to known feeds (one statement). Polling state is
    left alone; a feed the file disables is disabled, one disabled for errors stays so."""
    if not pairs:
        return
    conn.execute("""
        UPDATE news.feeds f SET publisher = s.publisher, name = s.name, poll_interval = s.interval,
               tags = ARRAY(SELECT jsonb_array_elements_text(s.tags)), language = s.language,
               enabled = CASE WHEN NOT s.enabled THEN false ELSE f.enabled END, updated_at = now()
        FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::jsonb[], %s::text[], %s::bool[])
             AS s(id, publisher, name, interval, tags, language, enabled)
        WHERE f.id = s.id""",
        _columns([(feed_id, *_declared_values(spec)) for feed_id, spec in pairs], 7))


def insert_declared(conn: psycopg.Connection, specs: Sequence[FeedSpec]) -> dict[str, int]:
    """Add new feeds (one statement); their ids by URL."""
    if not specs:
        return {}
    rows = conn.execute("""
        INSERT INTO news.feeds (url, declared_url, publisher, name, poll_interval, tags, language, enabled)
        SELECT s.url, s.url, s.publisher, s.name, s.interval, ARRAY(SELECT jsonb_array_elements_text(s.tags)),
               s.language, s.enabled
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::jsonb[], %s::text[], %s::bool[])
             AS s(url, publisher, name, interval, tags, language, enabled)
        ON CONFLICT DO NOTHING
        RETURNING id, url""",
        _columns([(spec.url, *_declared_values(spec)) for spec in specs], 7)).fetchall()
    return {r["url"]: r["id"] for r in rows}


def _declared_values(spec: FeedSpec) -> tuple:
    return (spec.publisher, spec.name, spec.poll_interval, Jsonb(list(spec.tags)), spec.language, spec.enabled)


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(col) for col in zip(*rows)] if rows else [[] for _ in range(width)]


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
                   interval: int, guid_mode: str | None = None, warning: str | None = None,
                   keep_warning: bool = False) -> None:
    """A successful poll. ``keep_warning``: the document was not re-read (304 or same
    bytes), so a warning from its last parse (e.g. an identity downgrade) stays shown."""
    conn.execute("""
        UPDATE news.feeds SET
            etag = coalesce(%(etag)s, etag), last_modified = coalesce(%(lm)s, last_modified),
            body_hash = coalesce(%(hash)s, body_hash), last_status = %(status)s,
            last_polled_at = now(),
            last_full_fetch_at = CASE WHEN %(full)s THEN now() ELSE last_full_fetch_at END,
            effective_interval = %(interval)s,
            next_poll_at = now() + make_interval(secs => %(interval)s),
            last_error = CASE WHEN %(keep)s AND consecutive_errors = 0 THEN last_error
                              ELSE %(warning)s END,
            consecutive_errors = 0,
            guid_mode = coalesce(%(mode)s, guid_mode), updated_at = now()
        WHERE id = %(id)s""",
        {"etag": etag, "lm": last_modified, "hash": body_hash, "status": status,
         "full": full_fetch, "interval": interval, "mode": guid_mode, "warning": warning,
         "keep": keep_warning,
         "id": feed_id})


def record_failure(conn: psycopg.Connection, feed_id: int, *, status: int | None, error: str,
                   retry_in: float, disable_reason: str | None) -> None:
    conn.execute("""
        UPDATE news.feeds SET
            last_status = %(status)s, last_polled_at = now(),
            consecutive_errors = consecutive_errors + 1, last_error = %(error)s,
            next_poll_at = now() + make_interval(secs => %(retry)s),
            enabled = CASE WHEN %(disable)s::text IS NULL THEN enabled ELSE false END,
            disabled_reason = coalesce(%(disable)s, disabled_reason), updated_at = now()
        WHERE id = %(id)s""",
        {"status": status, "error": redact(error)[:2000], "retry": retry_in,
         "disable": redact(disable_reason)[:2000] if disable_reason else None,
         "id": feed_id})


# host[:port] of a feed URL, as fetch.host_key computes it in Python.
_HOST_SQL = r"lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]*)'))"


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


def set_enabled(conn: psycopg.Connection, feed_ref: str, enabled: bool) -> int:
    """Enable/disable by id or URL; enabling clears the error state and polls soon."""
    key = int(feed_ref) if feed_ref.isdigit() else None
    rows = conn.execute("""
        UPDATE news.feeds SET enabled = %(on)s,
            disabled_reason = CASE WHEN %(on)s THEN NULL ELSE 'disabled by operator' END,
            consecutive_errors = CASE WHEN %(on)s THEN 0 ELSE consecutive_errors END,
            next_poll_at = CASE WHEN %(on)s THEN now() ELSE next_poll_at END,
            updated_at = now()
        WHERE id = %(id)s OR url = %(url)s RETURNING id""",
        {"on": enabled, "id": key, "url": feed_ref}).fetchall()
    return len(rows)


def status(conn: psycopg.Connection) -> list[FeedStatus]:
    """One row per feed: health, last error, next poll, entry counts. Reads the view
    news_api.feed_status (migration 010), so a reader login can run `newsflow feeds status`."""
    rows = conn.execute("SELECT * FROM news_api.feed_status ORDER BY id").fetchall()
    # for display: a feed URL's credentials are never shown (they stay in news.feeds.url)
    return [FeedStatus(**{**r, "url": redact(r["url"])}) for r in rows]
