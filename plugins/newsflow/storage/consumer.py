"""SQL of the consumer contract (schema news_api, migration 010): search, export, the
contract's version, and the reader role.

Everything here except the grants reads only ``news_api`` views and functions, so it
works for a login that has nothing but ``newsflow_reader``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ..models import SearchHit

READER_ROLE = "newsflow_reader"


def contract(conn: psycopg.Connection) -> dict | None:
    """The contract's version and the database's migration level, or None when there is no
    news_api schema (a database older than migration 010). Raises InsufficientPrivilege
    when this login may not read it."""
    exists = conn.execute("SELECT to_regclass('news_api.schema_version') AS t").fetchone()
    if exists["t"] is None:
        return None
    return conn.execute("SELECT version, migration FROM news_api.schema_version").fetchone()


def search(conn: psycopg.Connection, query: str, *, since: datetime | None = None,
           until: datetime | None = None, language: str | None = None, publisher: str | None = None,
           limit: int = 20, candidates: int = 5000) -> list[SearchHit]:
    rows = conn.execute("""
        SELECT * FROM news_api.search(%s, since => %s, until => %s, language => %s,
                                      publisher => %s, lim => %s, candidates => %s)""",
        (query, since, until, language, publisher, limit, candidates)).fetchall()
    return [SearchHit(**r) for r in rows]


# --- export ------------------------------------------------------------------------------------

# One row per change in (since, until], in seq order, with the entity's state at export
# time: an article's columns, a story's (title, dates, counts, outlets), or a deleted
# article's tombstone. The same flat columns for every format.
EXPORT_COLUMNS = (
    "seq", "changed_at", "entity", "kind", "entity_id", "story_id", "previous_story_id", "fields",
    "title", "url", "canonical_url", "publisher", "site_name", "published_at", "sort_at", "language",
    "authors", "image_url", "word_count", "wire_credit", "story_relation", "body_source", "revision",
    "created_at", "updated_at", "body",
    "origin_publisher", "article_count", "outlet_count", "outlets",
    "deleted_at", "delete_reason",
)

_EXPORT = """
    SELECT c.seq, c.changed_at, c.entity, c.kind, c.entity_id, c.story_id, c.previous_story_id, c.fields,
           coalesce(a.title, s.title) AS title, a.url, coalesce(a.canonical_url, t.canonical_url) AS canonical_url,
           coalesce(a.publisher, t.publisher) AS publisher, a.site_name,
           coalesce(a.published_at, s.first_published_at) AS published_at,
           coalesce(a.sort_at, s.sort_at) AS sort_at, a.language, a.authors, a.image_url, a.word_count,
           a.wire_credit, a.story_relation, a.body_source, a.revision,
           coalesce(a.created_at, s.created_at) AS created_at, coalesce(a.updated_at, s.updated_at) AS updated_at,
           a.body, s.origin_publisher, s.article_count, s.outlet_count, s.outlets,
           t.deleted_at, t.reason AS delete_reason
    FROM news_api.changes c
    LEFT JOIN news_api.articles a ON c.entity = 'article' AND a.id = c.entity_id
    LEFT JOIN news_api.stories s ON c.entity = 'story' AND s.id = c.entity_id
    LEFT JOIN news_api.tombstones t ON c.entity = 'article' AND c.kind = 'deleted' AND t.article_id = c.entity_id
    WHERE c.seq > %(since)s AND c.seq <= %(until)s
    ORDER BY c.seq"""


def export_rows(conn: psycopg.Connection, since: int, until: int, *, as_json: bool,
                batch_size: int) -> Iterator[tuple]:
    """Stream the export through a server-side cursor (``batch_size`` rows per round trip,
    constant memory). ``as_json``: each row is one JSON text made by PostgreSQL
    (row_to_json: every control character escaped, valid JSON whatever the text), else a
    tuple in EXPORT_COLUMNS order. The caller holds a transaction; times are UTC."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    query = f"SELECT row_to_json(x)::text FROM ({_EXPORT}) x" if as_json else _EXPORT
    with conn.cursor(name="newsflow_export", row_factory=tuple_row) as cur:
        cur.itersize = batch_size
        cur.execute(query, {"since": since, "until": until})
        yield from cur


# --- the reader role ---------------------------------------------------------------------------

def reader_role_exists(conn: psycopg.Connection) -> bool:
    return role_exists(conn, READER_ROLE)


def role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def create_reader_role(conn: psycopg.Connection) -> None:
    """CREATE ROLE newsflow_reader NOLOGIN (raises InsufficientPrivilege without CREATEROLE)."""
    with conn.transaction():
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(READER_ROLE)))


def grant_reader_privileges(conn: psycopg.Connection) -> None:
    """What migration 010 grants when it can: read access to news_api, now and for objects
    this (the migrating) user creates there later."""
    reader = sql.Identifier(READER_ROLE)
    for statement in (
        "GRANT USAGE ON SCHEMA news_api TO {}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA news_api TO {}",
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA news_api TO {}",
        "GRANT USAGE ON TYPE news_api.search_hit TO {}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT SELECT ON TABLES TO {}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT EXECUTE ON FUNCTIONS TO {}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA news_api GRANT USAGE ON TYPES TO {}",
    ):
        conn.execute(sql.SQL(statement).format(reader))


def grant_reader_to(conn: psycopg.Connection, role: str) -> None:
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER_ROLE), sql.Identifier(role)))
