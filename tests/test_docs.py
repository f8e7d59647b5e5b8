"""The README and docs/ stay true to the code and to each other: every relative link (and
its #anchor) resolves, and the configuration reference is what `newsflow config --markdown`
prints today."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from newsflow import cli
from newsflow.config import Settings

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# [text](target) outside code; images too. Targets with a scheme are not ours to check.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats -1, -2."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", path.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path) -> list[str]:
    text = _FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    broken = []
    for target in _links(doc):
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


def test_links_are_checked_at_all():
    # the pattern above must see the README's links, or the test would pass on nothing
    assert "docs/configuration.md" in _links(REPO_ROOT / "README.md")
    assert "benchmarks.md#consumer-queries" in _links(REPO_ROOT / "docs" / "consumers.md")


def _generated_table() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.cmd_config(argparse.Namespace(markdown=True), Settings()) == 0
    return out.getvalue()


def test_configuration_reference_is_generated_from_config():
    table = _generated_table()
    assert table.count("\n| `NEWSFLOW_") >= 50
    assert table in (REPO_ROOT / "docs" / "configuration.md").read_text(), \
        "docs/configuration.md is out of date: regenerate its table with `newsflow config --markdown`"


def test_readme_settings_are_rows_of_the_reference():
    rows = set(_generated_table().splitlines())
    readme = [r for r in (REPO_ROOT / "README.md").read_text().splitlines() if r.startswith("| `NEWSFLOW_")]
    assert readme and all(r in rows for r in readme)


def test_readme_is_an_overview():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300 and any(line.startswith("**Contents:**") for line in lines)
