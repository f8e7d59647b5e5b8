"""Database connections, the embedded PostgreSQL, and migrations.

``NEWSFLOW_DATABASE_URL`` (a libpq URL) selects a server.  When it is unset the
package starts an embedded PostgreSQL 16 (the ``pgserver`` wheel) whose data lives
in ``<data_dir>/pgdata`` and which keeps running between commands, so the second
command of a session connects in milliseconds.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.rows import dict_row

from .config import Settings

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{3,})_[\w-]+\.sql$")


class DatabaseError(RuntimeError):
    """A database could not be reached or set up; the message says what to do."""


def embedded_url(data_dir: str | os.PathLike) -> str:
    """Start (or reuse) the embedded server and return its URL."""
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a pinned dependency
        raise DatabaseError(
            "NEWSFLOW_DATABASE_URL is unset and the embedded PostgreSQL (pgserver) "
            "is not installed; run `make demo` or set NEWSFLOW_DATABASE_URL") from exc
    pgdata = Path(data_dir).resolve() / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: leave the server running when this process exits; the next
    # command reuses it (`newsflow db stop` stops it).
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


def stop_embedded(data_dir: str | os.PathLike) -> bool:
    pgdata = Path(data_dir).resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pgserver

    pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()
    return True


def resolve_url(settings: Settings) -> str:
    return settings.database_url or embedded_url(settings.data_dir)


def ready(settings: Settings) -> str:
    """The database URL of ``settings``, migrated to this version of the code (idempotent;
    an advisory lock serialises concurrent workers). What every writing command uses."""
    url = resolve_url(settings)
    upgrade(url)
    return url


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row,
                               application_name="newsflow")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc


@contextmanager
def transaction(url: str) -> Iterator[psycopg.Connection]:
    """A connection in one transaction: committed on success, rolled back on error."""
    with connect(url) as conn:
        with conn.transaction():
            yield conn


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


# --- migrations ---------------------------------------------------------------------

def migrations() -> Traversable:
    """The migrations folder: package data (``newsflow/migrations/NNN_name.sql``), found the
    same way in a checkout, an editable install and a wheel."""
    return resources.files("newsflow") / "migrations"


def migration_files(sql_dir: Traversable | Path | None = None) -> list[tuple[int, Traversable]]:
    """(version, file) of every migration, in order. An empty list is an error: a package
    without its schema must not report "up to date"."""
    sql_dir = migrations() if sql_dir is None else sql_dir
    found = []
    for path in sorted(sql_dir.iterdir(), key=lambda p: p.name):
        match = _MIGRATION_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        raise DatabaseError(f"no migrations found in {sql_dir}: the newsflow package is incomplete "
                            "(reinstall it; migrations are package data)")
    versions = [v for v, _ in found]
    if len(versions) != len(set(versions)):
        raise DatabaseError(f"two migrations share a number in {sql_dir}")
    return found


def upgrade(url: str, sql_dir: Traversable | Path | None = None) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied.

    An advisory lock serialises concurrent upgrades (several workers starting at once).
    """
    from .storage import schema

    applied: list[str] = []
    with connect(url) as conn:
        with conn.transaction():
            done = schema.prepare_ledger(conn)
            for version, path in migration_files(sql_dir):
                if version in done:
                    continue
                log.info("applying migration %s", path.name)
                schema.apply(conn, version, path.name, path.read_text())
                applied.append(path.name)
    return applied


def current_version(url: str) -> int | None:
    from .storage import schema

    with connect(url) as conn:
        return schema.version(conn)
