"""FEEDS.yaml validation and settings from the environment."""

import pytest

from newsflow.config import Settings, describe
from newsflow.registry import FeedsFileError, parse_feeds, parse_file, parse_interval


def test_feeds_file_full_and_minimal(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("""
feeds:
  - url: https://example.com/rss.xml
    publisher: Example
  - url: https://example.org/atom.xml
    publisher: Other
    name: Other world
    enabled: false
    poll_interval: 15m
    tags: [world, uk]
    language: en
""")
    a, b = parse_file(path).specs
    assert (a.url, a.publisher, a.enabled, a.poll_interval, a.tags) == (
        "https://example.com/rss.xml", "Example", True, None, ())
    assert (b.name, b.enabled, b.poll_interval, b.tags, b.language) == (
        "Other world", False, 900, ("world", "uk"), "en")


@pytest.mark.parametrize("data, message", [
    ({}, "top-level `feeds:` list"),
    ({"feeds": [{"url": "https://x.com/rss"}]}, "`url` and `publisher` are required"),
    ({"feeds": [{"url": "ftp://x.com/rss", "publisher": "X"}]}, "not an absolute http(s) URL"),
    ({"feeds": [{"url": "https://x.com/rss", "publisher": "X", "colour": "red"}]}, "unknown keys"),
    ({"feeds": [{"url": "https://x.com/rss", "publisher": "X", "poll_interval": "soon"}]}, "poll_interval"),
])
def test_feeds_file_errors_name_the_problem(data, message):
    with pytest.raises(FeedsFileError, match="feeds"):
        parse_feeds(data)
    with pytest.raises(FeedsFileError) as exc:
        parse_feeds(data)
    assert message in str(exc.value)


def test_one_feed_per_canonical_url_with_a_warning(tmp_path):
    warnings: list[str] = []
    specs = parse_feeds({"feeds": [{"url": "HTTP://Example.COM:80/rss?", "publisher": "X"},
                                   {"url": "http://example.com/rss", "publisher": "Y"},
                                   {"url": "https://example.com:443/Rss?b=1#top", "publisher": "Z"}]},
                        warnings=warnings)
    assert [(s.url, s.publisher) for s in specs] == [("http://example.com/rss", "X"),
                                                     ("https://example.com/Rss?b=1", "Z")]
    assert len(warnings) == 1 and "list item 2" in warnings[0] and "ignored" in warnings[0]


def test_errors_name_file_line_and_feed_without_credentials(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example/rss\n    publisher: A\n"
                    "  - url: https://bob:s3cret@b.example/rss\n    publisher: B\n    colour: red\n")
    with pytest.raises(FeedsFileError) as exc:
        parse_file(path)
    message = str(exc.value)
    assert f"{path}:4: list item 2" in message and "b.example/rss" in message
    assert "s3cret" not in message and "bob" not in message
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("feeds:\n  - url: https://a.example/rss\n    publisher: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(FeedsFileError, match=f"{latin}: not UTF-8"):
        parse_file(latin)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FeedsFileError, match="no such file"):
        parse_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds: [unclosed")
    with pytest.raises(FeedsFileError, match="not valid YAML"):
        parse_file(bad)


def test_parse_interval():
    assert [parse_interval(v) for v in (900, "900", "15m", "1h", "1d")] == [900, 900, 900, 3600, 86400]


def test_settings_from_env_and_overrides():
    env = {"NEWSFLOW_FETCH_TIMEOUT": "ignored-unknown", "NEWSFLOW_READ_TIMEOUT": "3.5",
           "NEWSFLOW_MAX_ATTEMPTS": "7", "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "yes",
           "NEWSFLOW_DEDUP_JACCARD": "0.4"}
    s = Settings.from_env({"max_attempts": "9", "NEWSFLOW_BATCH_SIZE": 5}, environ=env)
    assert (s.read_timeout, s.max_attempts, s.allow_private_networks, s.dedup_jaccard, s.batch_size) == (
        3.5, 9, True, 0.4, 5)
    defaults = Settings.from_env(environ={})
    assert defaults.allow_private_networks is False and defaults.obey_robots is True


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="NEWSFLOW_MAX_ATTEMPTS='many'"):
        Settings.from_env(environ={"NEWSFLOW_MAX_ATTEMPTS": "many"})
    with pytest.raises(KeyError):
        Settings.from_env({"no_such_setting": 1}, environ={})


def test_every_setting_is_described():
    names = [env for env, _, _ in describe()]
    assert "NEWSFLOW_DATABASE_URL" in names and "NEWSFLOW_DEDUP_WINDOW_DAYS" in names
    assert len(names) == len(set(names))


def test_config_never_prints_a_database_password(capsys):
    import argparse

    from newsflow import cli

    for dsn in ("host=db.example user=news password=s3cret dbname=news",
                "postgresql://news:s3cret@db.example/news"):
        cli.cmd_config(argparse.Namespace(markdown=False), Settings(database_url=dsn))
        out = capsys.readouterr().out
        assert "s3cret" not in out and "news" in out
