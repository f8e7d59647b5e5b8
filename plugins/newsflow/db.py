"""Database connections, the embedded PostgreSQL, and migrations (nothing else: what an
upgrade does to the data is in ``upgrade.py``, the consumers' reader role in ``readers.py``).

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
from typing import TYPE_CHECKING, Iterator

import psycopg
from psycopg.rows import dict_row

from . import redaction
from .config import Settings
from .storage import consumer, schema

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{3,})_[\w-]+\.sql$")


class DatabaseError(RuntimeError):
    """A database could not be reached or set up; the message says what to do."""


# What one record (a feed item, an entry's result) may do to a write and still leave the
# batch standing: values the database refuses, and Python errors from a value we did not
# foresee. Anything else from the database (lost connection, server restart, read-only,
# no privilege, disk full, a killed session) is the database's fault, not the record's:
# it ends the run with exit 2, and the next run resumes.
RECORD_FAULTS = (psycopg.errors.DataError, psycopg.errors.IntegrityError,
                 psycopg.errors.ProgramLimitExceeded)


def is_record_fault(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, RECORD_FAULTS)
    return isinstance(exc, Exception)


# (SQLSTATE class or code, what to check), most specific first
_ADVICE = [
    ("25006", "the database is read-only (a standby, or default_transaction_read_only): "
              "point NEWSFLOW_DATABASE_URL at the primary"),
    ("42501", "the database user lacks a privilege newsflow needs: grant it, or use the "
              "owner of the news schema"),
    ("53100", "the database server's disk is full: free space, then run again"),
    ("53", "the database server is out of resources (memory, connections): check its logs"),
    ("57P", "the server was shut down or restarted, or this session was terminated: run "
            "again once it is up"),
    ("25P03", "the server ended an idle transaction (idle_in_transaction_session_timeout): "
              "run again; report it if it repeats"),
    ("08", "the connection to the database was lost: check that the server is up and "
           "reachable, then run again"),
]


def explain(exc: BaseException, url: str) -> str:
    """One line for an operator: which database, what happened, what to check."""
    state = getattr(exc, "sqlstate", None) or ""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    advice = next((text for prefix, text in _ADVICE if state.startswith(prefix)), None)
    if advice is None:
        advice = ("the connection to the database was lost: check that the server is up, then run again"
                  if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
                  else "check the database's log; the run can be repeated safely")
    return f"database error at {redact(url)}: {type(exc).__name__}: {first} — {advice}"


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



def readable(settings: Settings) -> str:
    """The database URL of ``settings`` for a command that only reads: never migrates (a
    read-only login could not, and a reader must not), and says clearly when the schema
    is older than this code. Works for a login that has only ``newsflow_reader``."""
    url = resolve_url(settings)
    latest = migration_files()[-1][0]
    try:
        with connect(url) as conn:
            found = consumer.contract(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(f"this login may not read the consumer schema news_api at {redact(url)} ({exc}): "
                            f"the database owner runs `newsflow db grant-reader ROLE` for it") from exc
    if found is None:
        raise DatabaseError(f"the database at {redact(url)} has no consumer schema news_api that this login can "
                            f"see: it is older than this newsflow (migration {latest}) or was never set up (the owner "
                            "runs `newsflow db upgrade`; read-only commands never migrate), or this login lacks "
                            "access (the owner runs `newsflow db grant-reader ROLE`)")
    if found["migration"] < latest:
        raise DatabaseError(f"the database at {redact(url)} is at migration {found['migration']}, older than this "
                            f"newsflow (migration {latest}): the owner runs `newsflow db upgrade` "
                            "(read-only commands never migrate)")
    return url


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row,
                               application_name="newsflow")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc


@contextmanager
def pool(url: str, size: int) -> Iterator["ConnectionPool"]:
    """A small pool of autocommit connections (``with pool.connection() as conn:``), for
    stages that write many short transactions from several threads (polling a thousand
    feeds would otherwise open two thousand connections)."""
    from psycopg_pool import ConnectionPool

    try:
        with ConnectionPool(url, min_size=1, max_size=max(1, size), open=True, timeout=60,
                            kwargs={"autocommit": True, "row_factory": dict_row,
                                    "application_name": "newsflow"}) as p:
            p.wait(timeout=30)
            yield p
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc


@contextmanager
def transaction(url: str) -> Iterator[psycopg.Connection]:
    """A connection in one transaction: committed on success, rolled back on error."""
    with connect(url) as conn:
        with conn.transaction():
            yield conn


def redact(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    return redaction.redact(url, keep_user=True)


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
    with connect(url) as conn:
        return schema.version(conn)
