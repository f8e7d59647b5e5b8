"""Shared fixtures: a real PostgreSQL (fresh database per test), the sample world on
loopback, settings for tests.

PostgreSQL: ``NEWSFLOW_TEST_DATABASE_URL`` names a server to use (each test gets its own
database on it); unset, one embedded server (pgserver) is started for the session.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import pytest

from newsflow import db
from newsflow.config import Settings
from newsflow.sampleworld import SAMPLE_DIR, SampleServer
from tools.pgscratch import scratch_database, server

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS_PAGES = SHARED / "corpus" / "pages"
CORPUS_FEEDS = SHARED / "corpus" / "feeds"


def pytest_configure(config):
    # A temporary folder of this session's own: pytest's default /tmp/pytest-of-<user>
    # keeps the last 3 sessions and deletes older ones, so two sessions at once (two
    # checkouts) would delete each other's folders, embedded PostgreSQL data included.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = Path(tempfile.gettempdir()) / "newsflow-pytest"
        base.mkdir(exist_ok=True)
        config.option.basetemp = base / str(os.getpid())
    # Tests never touch a developer's real database or the demo's embedded server.
    os.environ.pop("NEWSFLOW_DATABASE_URL", None)
    # Airflow, when a test imports its task SDK in this process, writes under AIRFLOW_HOME:
    # never a developer's ~/airflow.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="nf_airflow_home_"))


def pytest_unconfigure(config):
    base = Path(tempfile.gettempdir()) / "newsflow-pytest" / str(os.getpid())
    if config.option.basetemp == base:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory) -> str:
    """URL of a server on which tests may create databases: NEWSFLOW_TEST_DATABASE_URL,
    else an embedded server for the session."""
    with server(env=("NEWSFLOW_TEST_DATABASE_URL",), datadir=tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def database_url(pg_server_url) -> str:
    """A fresh, migrated database for one test; dropped afterwards."""
    with scratch_database(pg_server_url) as url:
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


def execute(url: str, sql: str, params=()) -> None:
    """Run one statement that returns no rows (DDL, settings), committed."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


@contextlib.contextmanager
def database_before(pg_server_url: str, tmp_path: Path, version: int):
    """A scratch database migrated up to (not including) migration ``version``: for
    testing what a migration does to rows an older release stored."""
    before = tmp_path / f"before-{version}"
    before.mkdir()
    for number, path in db.migration_files():
        if number < version:
            (before / path.name).write_text(path.read_text())
    with scratch_database(pg_server_url, migrate=False) as url:
        db.upgrade(url, before)
        yield url


def fetch_all(url: str, sql: str, params=()) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def sql(url: str, query: str, params=()) -> list[dict]:
    """One statement in its own committed transaction; its rows, if it returns any."""
    with db.transaction(url) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def requires_corpus(path: Path = CORPUS_PAGES):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} absent (shared corpus only in CI)")


@pytest.fixture(scope="session")
def console(pg_server_url, tmp_path_factory):
    """A real Airflow API server with the console plugin (tests/console_server.py) and its own
    news database (``console.news``), shared by the console's API and browser tests: each
    test makes and removes its own feeds."""
    from console_server import ConsoleServer

    with scratch_database(pg_server_url, prefix="nf_console") as news:
        with ConsoleServer(tmp_path_factory.mktemp("console_home"), news) as server:
            server.news = news
            yield server
