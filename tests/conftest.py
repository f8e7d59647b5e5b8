"""Shared fixtures: a real PostgreSQL (fresh database per test), the sample world on
loopback, settings for tests.

PostgreSQL: ``NEWSFLOW_TEST_DATABASE_URL`` names a server to use (each test gets its own
database on it); unset, one embedded server (pgserver) is started for the session.
"""

from __future__ import annotations

import os
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from newsflow import db
from newsflow.config import Settings
from newsflow.sampleworld import SAMPLE_DIR, SampleServer

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS_PAGES = SHARED / "corpus" / "pages"
CORPUS_FEEDS = SHARED / "corpus" / "feeds"


def pytest_configure(config):
    # Tests never touch a developer's real database or the demo's embedded server.
    os.environ.pop("NEWSFLOW_DATABASE_URL", None)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory) -> str:
    """URL of a server on which tests may create databases."""
    url = os.environ.get("NEWSFLOW_TEST_DATABASE_URL")
    if url:
        return url
    import pgserver

    datadir = tmp_path_factory.mktemp("pg") / "pgdata"
    server = pgserver.get_server(datadir, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create a migrated database on the server, yield its URL, drop it afterwards."""
    name = f"nf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server_url, dbname=name)
    try:
        db.upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_server_url) -> str:
    """A fresh, migrated database for one test; dropped afterwards."""
    with fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    """Production defaults, except what a loopback test world needs."""
    return Settings(database_url=database_url, data_dir=str(tmp_path / "state"),
                    allow_private_networks=True, per_host_delay=0.0, per_host_concurrency=4,
                    extract_workers=2, connect_timeout=5, read_timeout=5, total_timeout=15)


@pytest.fixture
def sample_world():
    with SampleServer() as server:
        yield server


@pytest.fixture
def sample_feeds(sample_world, tmp_path) -> Path:
    """sample/feeds.yaml rendered for the running sample server."""
    return sample_world.render_feeds_file(SAMPLE_DIR / "feeds.yaml", tmp_path / "feeds.yaml")


def fetch_all(url: str, sql: str, params=()) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def requires_corpus(path: Path = CORPUS_PAGES):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} absent (shared corpus only in CI)")
