"""The package is self-contained: a regular (non-editable) install carries its migrations and
its sample world, and `newsflow db upgrade` works from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, fetch_all
from tools.pgscratch import scratch_database

UV = Path(sys.executable).with_name("uv")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not UV.exists(), reason="uv is installed into the venv by `make setup`")
def test_wheel_install_upgrades_a_database_from_any_directory(tmp_path, pg_server_url):
    with scratch_database(pg_server_url, prefix="nf_wheel", migrate=False) as target:  # not migrated yet
        _install_and_upgrade(tmp_path, target)


def _install_and_upgrade(tmp_path, target: str) -> None:
    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "-q", str(venv)], check=True)
    # a copy of the repository: the install must not depend on where it was built from
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".newsflow", "airflow_home", "*.egg-info", "__pycache__", "build", "screenshots"))
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    "-r", str(REPO_ROOT / "requirements.lock"), str(src)], check=True, timeout=540)
    shutil.rmtree(src)  # nothing may be read from the source tree after the install
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import newsflow; print(newsflow.__file__)"],
                          capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "site-packages" in site
    env = {**os.environ, "NEWSFLOW_DATABASE_URL": target}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(venv / "bin" / "newsflow"), "db", "upgrade"], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "applied 001_init.sql" in proc.stdout
    tables = {r["t"] for r in fetch_all(target, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'news'")}
    assert {"feeds", "entries", "articles", "stories", "schema_migrations"} <= tables
    # the sample world is package data too
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "from newsflow.sampleworld import SITE_DIR, SAMPLE_DIR;"
                          "print((SAMPLE_DIR / 'feeds.yaml').is_file(), len(list(SITE_DIR.rglob('*.html'))))"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()
    assert out[0] == "True" and int(out[1]) >= 13
    # and the console's templates and assets (read with importlib.resources)
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "from importlib import resources; c = resources.files('newsflow.airflow.console');"
                          "print(len(list((c / 'templates').iterdir())), (c / 'static' / 'console.css').is_file())"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()
    assert int(out[0]) >= 7 and out[1] == "True"
