"""Throwaway PostgreSQL databases for tests, benchmarks and the local Airflow launcher.

Developer tooling (not part of the ``newsflow`` package). One home for:

* :func:`server` — a server on which databases may be created: an explicit URL, else the
  environment variable named by the caller (``NEWSFLOW_TEST_DATABASE_URL``,
  ``NEWSFLOW_BENCH_DATABASE_URL``), optionally the local server at 127.0.0.1:5432, else an
  embedded pgserver in a temporary directory, stopped on exit;
* :func:`scratch_database` — a fresh database on it (migrated unless told otherwise),
  dropped on exit;
* :func:`ensure_database` — create a named database if missing (optionally from scratch).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

LOCAL = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@contextmanager
def server(url: str | None = None, *, env: tuple[str, ...] = (), try_local: bool = False,
           datadir: Path | None = None) -> Iterator[str]:
    """The URL of a server on which databases may be created (see the module docstring)."""
    url = url or next((os.environ[name] for name in env if os.environ.get(name)), None)
    if not url and try_local:
        try:
            psycopg.connect(LOCAL, connect_timeout=2).close()
            url = LOCAL
        except psycopg.OperationalError:
            pass
    if url:
        yield url
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="nf_pg_") as tmp:
        embedded = pgserver.get_server((datadir or Path(tmp)) / "pgdata", cleanup_mode="stop")
        try:
            yield embedded.get_uri()
        finally:
            embedded.cleanup()


@contextmanager
def scratch_database(server_url: str, *, prefix: str = "nf_test", migrate: bool = True,
                     keep: bool = False) -> Iterator[str]:
    """Create a database on the server (migrated unless ``migrate=False``), yield its URL,
    drop it afterwards (unless ``keep``: then its name is printed)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server_url, dbname=name)
    try:
        if migrate:
            from newsflow import db

            db.upgrade(url)
        yield url
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(dsn: str, name: str, fresh: bool = False) -> str:
    """Create database ``name`` on the server of ``dsn`` (if missing); return its DSN."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        if fresh:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(dsn, dbname=name)
