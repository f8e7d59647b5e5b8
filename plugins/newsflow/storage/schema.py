"""SQL about the schema itself: the migrations ledger (news.schema_migrations), applying
one migration, and ANALYZE. The migration files are found by ``newsflow.db``."""

from __future__ import annotations

from typing import Sequence

import psycopg

MIGRATION_LOCK = "newsflow.migrations"


def prepare_ledger(conn: psycopg.Connection) -> set[int]:
    """Serialise concurrent upgrades (transaction-scoped lock), make sure the ledger
    exists, and return the versions already applied."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (MIGRATION_LOCK,))
    conn.execute("CREATE SCHEMA IF NOT EXISTS news")
    conn.execute("""
        CREATE TABLE IF NOT EXISTS news.schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())""")
    return {r["version"] for r in conn.execute("SELECT version FROM news.schema_migrations")}


def applied(conn: psycopg.Connection) -> set[int] | None:
    """The versions applied, without any lock; None when there is no ledger yet."""
    if conn.execute("SELECT to_regclass('news.schema_migrations') AS t").fetchone()["t"] is None:
        return None
    return {r["version"] for r in conn.execute("SELECT version FROM news.schema_migrations")}


def apply(conn: psycopg.Connection, version: int, name: str, script: str) -> None:
    """Run one migration file (our own package data, never input) and record it."""
    conn.execute(script)
    conn.execute("INSERT INTO news.schema_migrations (version, name) VALUES (%s, %s)", (version, name))


def version(conn: psycopg.Connection) -> int | None:
    """The newest applied migration, None for a database newsflow never migrated."""
    row = conn.execute("SELECT to_regclass('news.schema_migrations') AS t").fetchone()
    if row["t"] is None:
        return None
    return conn.execute("SELECT max(version) AS v FROM news.schema_migrations").fetchone()["v"]


def analyze(conn: psycopg.Connection, tables: Sequence[str]) -> None:
    """ANALYZE the given tables (fixed identifiers from the code, never input)."""
    for table in tables:
        conn.execute(f"ANALYZE {table}")
