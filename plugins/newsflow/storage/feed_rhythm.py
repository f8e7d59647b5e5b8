"""SQL for news.feed_rhythm: each feed's rhythm measured from its own history, and the stale
episodes already reported.

A feed's *arrivals* are the moments its polls stored new entries (entries stored by one
poll share a ``first_seen_at``, counted to the minute); its *rhythm* is the median gap
between its last arrivals. ``storage.feeds.health`` compares the time since the last
arrival with it to call a feed stale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg


def refresh(conn: psycopg.Connection, *, arrivals: int, lookback_days: int,
            feed_ids: Sequence[int] | None = None) -> int:
    """Measure the rhythm of every feed (or of ``feed_ids``) again; returns feeds measured.
    The stale episode already reported is kept."""
    return conn.execute("""
        WITH a AS (
            SELECT DISTINCT e.feed_id, date_trunc('minute', e.first_seen_at) AS t
            FROM news.entries e
            WHERE e.first_seen_at > now() - make_interval(days => %(lookback)s)
              AND (%(ids)s::bigint[] IS NULL OR e.feed_id = ANY(%(ids)s::bigint[]))),
        last AS (
            SELECT feed_id, t, row_number() OVER (PARTITION BY feed_id ORDER BY t DESC) AS n FROM a),
        gaps AS (
            SELECT feed_id, extract(epoch FROM t - lag(t) OVER (PARTITION BY feed_id ORDER BY t)) AS gap
            FROM last WHERE n <= %(arrivals)s)
        INSERT INTO news.feed_rhythm AS r (feed_id, rhythm_seconds, samples, computed_at)
        SELECT f.id, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY g.gap))::int,
               count(g.gap), now()
        FROM news.feeds f LEFT JOIN gaps g ON g.feed_id = f.id AND g.gap IS NOT NULL
        WHERE %(ids)s::bigint[] IS NULL OR f.id = ANY(%(ids)s::bigint[])
        GROUP BY f.id
        ON CONFLICT (feed_id) DO UPDATE SET rhythm_seconds = EXCLUDED.rhythm_seconds,
            samples = EXCLUDED.samples, computed_at = EXCLUDED.computed_at""",
        {"lookback": lookback_days, "arrivals": arrivals,
         "ids": list(feed_ids) if feed_ids is not None else None}).rowcount


def claim_episodes(conn: psycopg.Connection, episodes: dict[int, datetime]) -> list[int]:
    """Mark stale episodes reported (feed id -> the moment its episode started: its last
    arrival, or its creation); returns the feeds whose episode was not reported before.
    Row-locked, so two maintenance runs never report one episode twice."""
    if not episodes:
        return []
    rows = conn.execute("""
        WITH ep AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS t(feed_id, since)),
        ins AS (
            INSERT INTO news.feed_rhythm AS r (feed_id, stale_reported_for)
            SELECT feed_id, since FROM ep
            ON CONFLICT (feed_id) DO UPDATE SET stale_reported_for = EXCLUDED.stale_reported_for
            WHERE r.stale_reported_for IS DISTINCT FROM EXCLUDED.stale_reported_for
            RETURNING r.feed_id)
        SELECT feed_id FROM ins ORDER BY feed_id""",
        (list(episodes), list(episodes.values()))).fetchall()
    return [r["feed_id"] for r in rows]
