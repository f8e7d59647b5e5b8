"""SQL for news.events and news.event_stories (migration 015): events above stories.

Writers hold the write locks (``storage.locks``): the change-feed rows written here draw
their numbers under the changes lock like the triggers' rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg


def story_text(conn: psycopg.Connection, story_id: int) -> dict | None:
    """The text a story's event signature is computed from (its representative article),
    with its current placement (event_id, rebuild_pending; NULL when not placed). A story
    not placed yet also gets an event id reserved (``new_event_id``), used when it founds an
    event: the insert then needs no answer and goes with the other writes (one round trip
    less); an id reserved by a story that joins an event is left unused (ids have gaps)."""
    return conn.execute("""
        SELECT s.id AS story_id, a.title, a.body, a.language,
               coalesce(s.first_published_at, a.published_at, s.first_seen_at) AS published_at,
               es.story_id IS NOT NULL AS placed, es.event_id, es.rebuild_pending,
               es.terms AS placed_terms, es.entities AS placed_entities, es.numbers AS placed_numbers,
               es.language AS placed_language, es.published_at AS placed_published_at,
               CASE WHEN es.story_id IS NULL THEN nextval('news.events_id_seq') END AS new_event_id
        FROM news.stories s JOIN news.articles a ON a.id = coalesce(s.representative_id, s.origin_article_id)
        LEFT JOIN news.event_stories es ON es.story_id = s.id
        WHERE s.id = %s""", (story_id,)).fetchone()


def mark_for_placing(conn: psycopg.Connection, story_id: int) -> None:
    """A placed story whose signature changed is placed again: out of the candidates (as a
    rebuild's pending stories) until :func:`place` writes its new row."""
    conn.execute("UPDATE news.event_stories SET rebuild_pending = true WHERE story_id = %s", (story_id,))


def story_of_article(conn: psycopg.Connection, article_id: int) -> int | None:
    row = conn.execute("SELECT story_id FROM news.articles WHERE id = %s", (article_id,)).fetchone()
    return row["story_id"] if row else None


def candidates(conn: psycopg.Connection, story_id: int, keys: Sequence[str], days: Sequence,
               entities: Sequence[str], min_entities: int, language: str,
               since: datetime, until: datetime, limit: int) -> list[dict]:
    """Placed stories of ``language`` published in [since, until] that share one of
    ``keys`` (no day: "e:okafor"; the caller chose them by their counts, :func:`key_counts`)
    and at least ``min_entities`` of ``entities`` (the rule needs as many), most shared
    entities first. One statement:

    * the look-up: those keys with each day (``e:okafor@2026-11-20``) on the GIN index; the
      keys carry the day, so the window's time condition only trims its first and last day
      (it is kept out of the index scan: ANDing the (language, published_at) b-tree's
      ~16k window rows cost more than it saved);
    * the entity count compares the candidate's ~10 entities with ours, not its keys with
      all of the window's day-keyed ones (13 times fewer comparisons)."""
    if not keys:
        return []
    return conn.execute("""
        SELECT * FROM (
            SELECT es.story_id, es.event_id, es.terms, es.entities, es.numbers, es.published_at, es.language,
                   (SELECT count(*) FROM unnest(es.entities) e WHERE e = ANY (%(entities)s::text[])) AS shared
            FROM news.event_stories es
            WHERE es.keys && %(lookup)s::text[]
              AND es.language = %(language)s
              AND es.published_at + interval '0 s' BETWEEN %(since)s AND %(until)s
              AND es.story_id <> %(story)s AND NOT es.rebuild_pending) c
        WHERE c.shared >= %(min)s
        ORDER BY c.shared DESC, c.published_at, c.story_id
        LIMIT %(limit)s""",
        {"lookup": [f"{k}@{d.isoformat()}" for k in keys for d in days], "entities": list(entities),
         "min": min_entities, "language": language, "since": since, "until": until, "story": story_id,
         "limit": limit}).fetchall()


def key_counts(conn: psycopg.Connection, keys: Sequence[str], first_day, last_day) -> dict[str, int]:
    """How many placed stories carry each of ``keys`` (no day: "e:okafor", "*" for all
    stories) on the days ``first_day``..``last_day``: which of a new story's keys are rare
    enough to look up by, and how rare its names are."""
    rows = conn.execute("""
        SELECT k.key, coalesce(sum(c.stories), 0)::int AS n FROM unnest(%s::text[]) k (key)
        LEFT JOIN news.event_keys c ON c.key = k.key AND c.day BETWEEN %s AND %s
        GROUP BY k.key""", (list(keys), first_day, last_day)).fetchall()
    return {r["key"]: r["n"] for r in rows}


def count_keys(conn: psycopg.Connection, story_id: int, keys: Sequence[str], day, placed_before: bool) -> None:
    """Count a placed story's keys on its day, after un-counting what its row counted before
    (``placed_before``: a story placed again by a rebuild). Two statements: one statement
    may not update a counter row twice."""
    if placed_before:
        conn.execute("""
            UPDATE news.event_keys k SET stories = k.stories - 1
            FROM (SELECT split_part(x, '@', 1) AS key, split_part(x, '@', 2)::date AS day
                  FROM news.event_stories es, unnest(es.keys) x
                  WHERE es.story_id = %s AND split_part(x, '@', 2) <> '') old
            WHERE k.key = old.key AND k.day = old.day""", (story_id,))
    conn.execute("""
        INSERT INTO news.event_keys (key, day, stories) SELECT k, %s, 1 FROM unnest(%s::text[]) k
        ON CONFLICT (key, day) DO UPDATE SET stories = news.event_keys.stories + 1""", (day, sorted(set(keys))))


def create_event(conn: psycopg.Connection, event_id: int | None = None) -> int:
    """A new event row (``event_id``: re-use that id, kept by a rebuild)."""
    if event_id is not None:
        conn.execute("INSERT INTO news.events (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (event_id,))
        return event_id
    return conn.execute("INSERT INTO news.events DEFAULT VALUES RETURNING id").fetchone()["id"]


def event_in_use(conn: psycopg.Connection, event_id: int) -> bool:
    """Whether a placed story is in the event (a rebuild re-uses only free ids)."""
    return conn.execute("""SELECT EXISTS (SELECT 1 FROM news.event_stories WHERE event_id = %s
                           AND NOT rebuild_pending) AS used""", (event_id,)).fetchone()["used"]


def place(conn: psycopg.Connection, story_id: int, event_id: int, *, published_at: datetime,
          language: str, terms: Sequence[str], entities: Sequence[str], numbers: Sequence[str],
          keys: Sequence[str], score: float | None, linked_story_id: int | None) -> None:
    conn.execute("""
        INSERT INTO news.event_stories (story_id, event_id, published_at, language, terms, entities,
                                        numbers, keys, score, linked_story_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (story_id) DO UPDATE SET event_id = excluded.event_id,
            published_at = excluded.published_at, language = excluded.language, terms = excluded.terms,
            entities = excluded.entities, numbers = excluded.numbers, keys = excluded.keys,
            score = excluded.score, linked_story_id = excluded.linked_story_id,
            assigned_at = clock_timestamp(), rebuild_pending = false""",
        (story_id, event_id, published_at, language, sorted(terms), sorted(entities), sorted(numbers),
         list(keys), score, linked_story_id))


def move_stories(conn: psycopg.Connection, from_events: Sequence[int], to_event: int) -> list[dict]:
    """Move every placed story of ``from_events`` into ``to_event``; (story, old event) moved."""
    return conn.execute("""
        UPDATE news.event_stories es SET event_id = %s FROM news.event_stories old
        WHERE old.story_id = es.story_id AND es.event_id = ANY (%s) AND NOT es.rebuild_pending
        RETURNING es.story_id, old.event_id AS previous_event_id""",
        (to_event, list(from_events))).fetchall()


def refresh(conn: psycopg.Connection, event_ids: Sequence[int]) -> None:
    """Label, dates, counts, outlets of these events; those left empty are deleted."""
    conn.execute("SELECT news.refresh_events(%s::bigint[])", (sorted(set(event_ids)),))


# --- change feed (news.changes, migration 015 columns) ------------------------------------------

def log_story_event(conn: psycopg.Connection, story_id: int, event_id: int,
                    previous_event_id: int | None) -> None:
    """A story's event changed (or was first set): a story row with field 'event'."""
    conn.execute("""
        INSERT INTO news.changes (seq, entity, entity_id, kind, fields, event_id, previous_event_id)
        VALUES (nextval('news.changes_seq'), 'story', %s, 'updated', '{event}', %s, %s)
        ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
            SET fields = news.change_fields_merge(changes.fields, excluded.fields),
                event_id = excluded.event_id,
                previous_event_id = coalesce(changes.previous_event_id, excluded.previous_event_id)""",
        (story_id, event_id, previous_event_id))


def log_event(conn: psycopg.Connection, event_id: int, kind: str, into: int | None = None) -> None:
    """An event was created, updated (its stories), merged into ``into``, or deleted."""
    conn.execute("""
        INSERT INTO news.changes (seq, entity, entity_id, kind, fields, event_id)
        VALUES (nextval('news.changes_seq'), 'event', %s, %s,
                CASE WHEN %s = 'updated' THEN '{stories}'::text[] END, %s)
        ON CONFLICT (xact_id, entity, entity_id) DO UPDATE
            SET kind = news.change_kind_merge(changes.kind, excluded.kind),
                fields = news.change_fields_merge(changes.fields, excluded.fields),
                event_id = coalesce(excluded.event_id, changes.event_id)""",
        (event_id, kind, kind, into))


# --- rebuild -------------------------------------------------------------------------------------

def mark_pending(conn: psycopg.Connection, since: datetime | None) -> int:
    """Start a rebuild: every story (dated at or after ``since``) is to be placed again;
    stories without a row (older than migration 015) get one. Returns how many."""
    conn.execute("""
        INSERT INTO news.event_stories (story_id, event_id, published_at, language, terms, entities,
                                        numbers, keys, rebuild_pending)
        SELECT s.id, NULL, s.sort_at, '', '{}', '{}', '{}', '{}', true FROM news.stories s
        WHERE NOT EXISTS (SELECT 1 FROM news.event_stories es WHERE es.story_id = s.id)
          AND (%(since)s::timestamptz IS NULL OR s.sort_at >= %(since)s)""", {"since": since})
    # the stories to place again leave the counts (news.event_keys) with their keys, so that a
    # story is compared with the stories placed before it and only those, as they arrived
    conn.execute("""
        UPDATE news.event_keys k SET stories = k.stories - old.n
        FROM (SELECT split_part(x, '@', 1) AS key, split_part(x, '@', 2)::date AS day, count(*) AS n
              FROM news.event_stories es, unnest(es.keys) x
              WHERE NOT es.rebuild_pending AND split_part(x, '@', 2) <> ''
                AND (%(since)s::timestamptz IS NULL OR es.published_at >= %(since)s)
              GROUP BY 1, 2) old
        WHERE k.key = old.key AND k.day = old.day""", {"since": since})
    conn.execute("""UPDATE news.event_stories SET rebuild_pending = true, keys = '{}'
                    WHERE NOT rebuild_pending AND (%(since)s::timestamptz IS NULL OR published_at >= %(since)s)""",
                 {"since": since})
    return pending_count(conn)


def count(conn: psycopg.Connection) -> int:
    """How many events there are."""
    return conn.execute("SELECT count(*) AS n FROM news.events").fetchone()["n"]


def pending_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM news.event_stories WHERE rebuild_pending").fetchone()["n"]


def next_pending(conn: psycopg.Connection, limit: int) -> list[dict]:
    """The next stories a rebuild places, in publication order (then story id)."""
    return conn.execute("""SELECT story_id, event_id FROM news.event_stories WHERE rebuild_pending
                           ORDER BY published_at, story_id LIMIT %s""", (limit,)).fetchall()


# --- reading (console, demo, tests) ---------------------------------------------------------------

def event_of_story(conn: psycopg.Connection, story_id: int) -> int | None:
    row = conn.execute("SELECT event_id FROM news.event_stories WHERE story_id = %s", (story_id,)).fetchone()
    return row["event_id"] if row else None


def latest(conn: psycopg.Connection, *, outlet: str | None = None, biggest: bool = False,
           min_stories: int = 1, limit: int = 50, offset: int = 0) -> list[dict]:
    """Events, latest first (or biggest: most outlets first), optionally those an outlet covered."""
    order = "outlet_count DESC, last_published_at DESC NULLS LAST, id DESC" if biggest \
        else "last_published_at DESC NULLS LAST, id DESC"
    return conn.execute(f"""
        SELECT id, label, first_published_at, last_published_at, story_count, outlet_count, outlets,
               languages
        FROM news.events
        WHERE (%(outlet)s::text IS NULL OR outlets @> ARRAY[%(outlet)s::text]) AND story_count >= %(min)s
        ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s""",  # order: one of two constants
        {"outlet": outlet, "min": min_stories, "limit": limit, "offset": offset}).fetchall()


def get(conn: psycopg.Connection, event_id: int) -> dict | None:
    return conn.execute("""SELECT id, label, first_published_at, last_published_at, story_count,
                                  outlet_count, outlets, languages FROM news.events WHERE id = %s""",
                        (event_id,)).fetchone()


def stories(conn: psycopg.Connection, event_id: int) -> list[dict]:
    """An event's stories in publication order, with their outlets."""
    return conn.execute("""
        SELECT es.story_id, s.title, s.origin_publisher, es.published_at, s.outlet_count, es.score,
               ARRAY(SELECT so.publisher FROM news.story_outlets so WHERE so.story_id = es.story_id
                     ORDER BY so.published_at NULLS LAST, so.publisher) AS outlets
        FROM news.event_stories es JOIN news.stories s ON s.id = es.story_id
        WHERE es.event_id = %s ORDER BY es.published_at, es.story_id""", (event_id,)).fetchall()


def overview(conn: psycopg.Connection, min_stories: int = 2, limit: int = 20) -> list[dict]:
    """Events with several stories, biggest first, each with its stories (the demo)."""
    events = conn.execute("""
        SELECT id, label, first_published_at, story_count, outlet_count, outlets FROM news.events
        WHERE story_count >= %s ORDER BY outlet_count DESC, story_count DESC, first_published_at, id
        LIMIT %s""", (min_stories, limit)).fetchall()
    for e in events:
        e["stories"] = stories(conn, e["id"])
    return events
