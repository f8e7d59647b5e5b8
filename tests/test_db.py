"""Migrations and the embedded PostgreSQL."""

import os
import subprocess
import sys

from conftest import REPO_ROOT, fetch_all
from newsflow import db, upgrade


def test_upgrade_is_idempotent_and_recorded(database_url):
    versions = fetch_all(database_url, "SELECT version, name FROM news.schema_migrations ORDER BY version")
    assert [v["version"] for v in versions] == [v for v, _ in db.migration_files()]
    assert db.upgrade(database_url) == []  # nothing left to apply
    assert db.current_version(database_url) == versions[-1]["version"]
    tables = {r["table_name"] for r in fetch_all(database_url, """
        SELECT table_name FROM information_schema.tables WHERE table_schema = 'news'""")}
    assert {"feeds", "entries", "articles", "stories", "fetch_log", "dedup_signatures",
            "dedup_bands", "story_outlets"} <= tables


def test_redact_hides_passwords():
    assert db.redact("postgresql://news:s3cret@db.example.com/news") == "postgresql://news:***@db.example.com/news"


def test_cli_starts_the_embedded_server_when_no_url_is_set(tmp_path):
    """No NEWSFLOW_DATABASE_URL: `newsflow db upgrade` starts PostgreSQL under the data dir."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSFLOW_DATABASE_URL"}
    env["NEWSFLOW_DATA_DIR"] = str(tmp_path / "state")
    run = lambda *args: subprocess.run([sys.executable, "-m", "newsflow", *args], cwd=REPO_ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    try:
        first = run("db", "upgrade")
        assert first.returncode == 0, first.stderr
        assert "applied 001_init.sql" in first.stdout and (tmp_path / "state" / "pgdata" / "PG_VERSION").exists()
        again = run("db", "upgrade")
        assert again.returncode == 0 and "up to date" in again.stdout
    finally:
        stopped = run("db", "stop")
    assert "stopped" in stopped.stdout


def test_signatures_of_an_older_scheme_are_computed_again_on_the_next_start(database_url, settings):
    """After an upgrade that changes the fingerprint scheme, upgrade.ready recomputes the stored
    signatures (and their band rows) from the articles' text, once."""
    from datetime import datetime, timezone

    from newsflow import dedup, stories
    from newsflow.models import SIGNATURE_SCHEME, Article

    texts = [" ".join(f"word{i}{j} alpha beta gamma" for j in range(60)) for i in range(3)]
    with db.transaction(database_url) as conn:
        for i, body in enumerate(texts):
            stories.add_article(conn, settings, Article(
                url=f"https://r.example/{i}", canonical_url=f"https://r.example/{i}", publisher="R",
                title=f"t{i}", body=body, published_at=datetime(2026, 11, 20, i, tzinfo=timezone.utc),
                language="en", authors=[], image_url=None, site_name=None, content_hash=f"h{i}",
                word_count=len(body.split()), body_source="page"))
        # as if written by an older scheme: outdated, and their band rows gone
        conn.execute("UPDATE news.dedup_signatures SET scheme = 1, bands = '{}'")
        conn.execute("DELETE FROM news.dedup_bands")
    upgrade.ready(settings)
    rows = fetch_all(database_url, """
        SELECT s.scheme, s.bands, (SELECT count(*) FROM news.dedup_bands b WHERE b.article_id = s.article_id) AS n,
               a.body FROM news.dedup_signatures s JOIN news.articles a ON a.id = s.article_id ORDER BY s.article_id""")
    assert len(rows) == 3
    for r in rows:
        assert r["scheme"] == SIGNATURE_SCHEME
        assert tuple(r["bands"]) == dedup.fingerprint(r["body"], settings).bands
        assert r["n"] == settings.dedup_bands
