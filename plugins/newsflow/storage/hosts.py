"""SQL for news.hosts: per-host politeness shared by every worker and process.

``next_allowed_at`` is the end of the host's schedule: a claim reserves the next slots of
each host it hands out (``reserve``), so two workers never ask one host faster than its
delay allows. ``deferred_until`` holds a host's Retry-After (429/503): its entries are not
handed out before then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg
from psycopg.rows import class_row

from ..models import HostSchedule


def lock(conn: psycopg.Connection, hosts: Sequence[str]) -> dict[str, HostSchedule]:
    """Lock the hosts' rows (created when missing), in a fixed order; by host."""
    hosts = sorted(set(hosts))
    if not hosts:
        return {}
    conn.execute("INSERT INTO news.hosts (host) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                 (hosts,))
    rows = conn.cursor(row_factory=class_row(HostSchedule)).execute("""
        SELECT host, greatest(next_allowed_at, now()) AS free_at, crawl_delay,
               (deferred_until IS NOT NULL AND deferred_until > now()) AS deferred
        FROM news.hosts WHERE host = ANY(%s) ORDER BY host FOR UPDATE""", (hosts,)).fetchall()
    return {r.host: r for r in rows}


def reserve(conn: psycopg.Connection, until: dict[str, datetime]) -> None:
    """Move each host's schedule end to ``until[host]``."""
    if until:
        conn.execute("""
            UPDATE news.hosts h SET next_allowed_at = u.until, updated_at = now()
            FROM unnest(%s::text[], %s::timestamptz[]) AS u(host, until) WHERE h.host = u.host""",
            (list(until), list(until.values())))


def defer(conn: psycopg.Connection, host: str, seconds: float, reason: str) -> None:
    """The host asked us (Retry-After) to leave it alone for ``seconds``."""
    conn.execute("""
        INSERT INTO news.hosts AS h (host, deferred_until, deferred_reason)
        VALUES (%(host)s, now() + make_interval(secs => %(s)s), %(reason)s)
        ON CONFLICT (host) DO UPDATE SET
            deferred_until = greatest(h.deferred_until, EXCLUDED.deferred_until),
            deferred_reason = EXCLUDED.deferred_reason, updated_at = now()""",
        {"host": host, "s": seconds, "reason": reason[:500]})


def set_crawl_delay(conn: psycopg.Connection, host: str, seconds: float | None) -> None:
    conn.execute("""
        INSERT INTO news.hosts AS h (host, crawl_delay) VALUES (%s, %s)
        ON CONFLICT (host) DO UPDATE SET crawl_delay = EXCLUDED.crawl_delay, updated_at = now()""",
        (host, seconds))


def next_opening(conn: psycopg.Connection, horizon: float,
                 entry_ids: Sequence[int] | None = None) -> float | None:
    """Seconds until a free due entry (of ``entry_ids``, when given) could be claimed:
    0 for an entry whose host is open now, None when there is no such entry."""
    row = conn.execute("""
        SELECT extract(epoch FROM min(greatest(
                   coalesce(h.next_allowed_at - make_interval(secs => %(horizon)s), now()),
                   coalesce(h.deferred_until, now()), now())) - now()) AS wait
        FROM news.entries e LEFT JOIN news.hosts h ON h.host = e.host
        WHERE e.status = 'pending' AND e.next_attempt_at <= now() AND e.lease_owner IS NULL
          AND (%(ids)s::bigint[] IS NULL OR e.id = ANY(%(ids)s::bigint[]))""",
        {"horizon": horizon, "ids": list(entry_ids) if entry_ids is not None else None}).fetchone()
    return None if row["wait"] is None else float(row["wait"])
