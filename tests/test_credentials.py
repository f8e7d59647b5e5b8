"""A feed URL's credentials go to the feed request and nowhere else.

``http://user:password@host/feed.xml`` needs its password to fetch the feed, so it stays
in ``news.feeds.url``. Everywhere else it must not appear: not in a link resolved from
the feed (relative, protocol-relative or absolute), not in a page request's headers, not
in a redirect to another origin, not in any other column, log line, export or CLI output
— whatever characters the password holds.
"""

from __future__ import annotations

import base64
import json
import logging
import signal
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from conftest import database_before, fetch_all
from faultserver import FaultServer, article_html

from newsflow import parse, validate
from newsflow.config import Settings
from newsflow.httpclient import SafeClient
from newsflow.redaction import redact, split_credentials

# Chunks of a password: upper-case letters outside hex, so that no content hash,
# fingerprint or word of the test world contains one by chance; the separators are the
# characters that confuse URL parsers.
CHUNK = st.text(alphabet="GHJKLMNPQRSTUVWXYZ", min_size=5, max_size=8)


def _password(chunks: list[str], separators: list[str]) -> str:
    out = chunks[0]
    for sep, chunk in zip(separators, chunks[1:], strict=False):  # extra separators unused
        out += sep + chunk
    return out


def _leaks(text: str, password: str, chunks: list[str]) -> list[str]:
    """Which parts of the password (whole, encoded, or any one chunk) appear in ``text``."""
    needles = {password, quote(password, safe=""), *chunks}
    return sorted(n for n in needles if n and n in text)


# --- redaction ---------------------------------------------------------------------------

@hsettings(max_examples=300, deadline=None)
@given(chunks=st.lists(CHUNK, min_size=1, max_size=4),
       separators=st.lists(st.sampled_from(list("@:%/#?&=;+!$'*()[]~")), min_size=3, max_size=3),
       user=st.sampled_from(["alice", "bob.smith", "r%40ot", ""]),
       port=st.sampled_from(["", ":8080"]),
       path=st.sampled_from(["/feed.xml", "/", "", "/a@b/c?d=e@f#g", "?x=1"]),
       around=st.sampled_from(["{}", "fetching {} failed", "'{}'", "({})", "url={}, next", "<{}>"]))
def test_redact_hides_a_password_of_any_characters(chunks, separators, user, port, path, around):
    password = _password(chunks, separators)
    url = f"https://{user}:{password}@feeds.example{port}{path}"
    text = around.format(url)
    for keep_user in (False, True):
        shown = redact(text, keep_user=keep_user)
        assert not _leaks(shown, password, chunks), (text, shown)
        if "@" not in path:  # (an "@" further on could end a password: then it is redacted too)
            assert f"feeds.example{port}" in shown  # what is not secret stays readable
        if keep_user and user:
            assert f"{user}:***@" in shown


def test_redact_leaves_urls_without_credentials_alone():
    for text in ("https://mastodon.social/@user.rss", "http://host/search?q=a@b.com",
                 "see https://example.org/a and mail me@example.org", "postgresql://db.example/news"):
        assert redact(text) == text


def test_redact_key_value_dsn_passwords():
    assert redact("host=db password=s3cr@t:x/y user=n") == "host=db password=*** user=n"
    assert redact("host=db password='a b\\' c' user=n") == "host=db password=*** user=n"
    assert "unterminated" not in redact("password='unterminated secret")
    assert redact("postgresql://news:p@ss/w#rd@db.example:5432/news", keep_user=True) == \
        "postgresql://news:***@db.example:5432/news"


def test_split_credentials_reads_the_last_at_sign():
    assert split_credentials("http://alice:Se@cr:et@127.0.0.1:8000/f.xml") == \
        ("http://127.0.0.1:8000/f.xml", ("alice", "Se@cr:et"))
    assert split_credentials("http://a%40b:p%3Aw%25@h/") == ("http://h/", ("a@b", "p:w%"))
    assert split_credentials("http://h/x@y") == ("http://h/x@y", None)
    assert split_credentials("http://@h/") == ("http://h/", None)


# --- the validation boundary -------------------------------------------------------------

FEED = "http://alice:Se@cr:et%25@news.example:8080/feeds/main.xml"


@pytest.mark.parametrize("link, expected", [
    ("/page/1", "http://news.example:8080/page/1"),
    ("page/1", "http://news.example:8080/feeds/page/1"),
    ("//news.example:8080/page/1", "http://news.example:8080/page/1"),
    ("http://news.example:8080/page/1", "http://news.example:8080/page/1"),
    ("http://bob:other@cdn.example/page/1", "http://cdn.example/page/1"),  # the feed's own user info
])
def test_links_resolved_from_a_feed_carry_no_user_information(link, expected):
    notes: list[str] = []
    assert validate.url(link, Settings(), "link", notes, base=FEED) == expected
    assert not any("Se@cr" in n or "other" in n for n in notes), notes
    if "bob:" in link:
        assert any("user name and password removed" in n for n in notes)


def test_feedparser_resolved_links_lose_the_feeds_credentials():
    """feedparser resolves relative links itself (against the address it is given): even
    given the credentialed address, the entries' links have none."""
    doc = (b'<rss version="2.0"><channel><title>t</title><item><title>One</title><link>/page/1</link>'
           b'<description>&lt;a href="/x"&gt;see&lt;/a&gt; text</description></item></channel></rss>')
    parsed = parse.parse_feed(doc, FEED)
    assert [e.link for e in parsed.entries] == ["http://news.example:8080/page/1"]
    assert "Se@cr" not in repr(parsed)


# --- the HTTP client ---------------------------------------------------------------------

def _auth_of(seen) -> str | None:
    """The user:password a request the fault server saw carried, if any."""
    return _auth_of_header(seen.headers.get("authorization"))


def test_credentials_go_to_the_feeds_origin_only(settings):
    """Basic auth for the feed and a same-origin redirect of it; none for a redirect to
    another origin, and none for the pages its links name."""
    with FaultServer() as fs, FaultServer() as other:
        other.add("/moved.xml", b"<rss/>", content_type="application/rss+xml")
        fs.redirect("/feed.xml", "/real.xml", 302)
        fs.add("/real.xml", b"<rss/>", content_type="application/rss+xml")
        fs.redirect("/away.xml", other.url("/moved.xml"), 301)
        fs.redirect("/sneaky.xml", other.url("/moved.xml").replace("http://", "http://mallory:x@"), 302)
        creds = "http://al%40ice:p@ss:w%25rd@"
        with SafeClient(settings) as client:
            same = client.get(fs.url("/feed.xml").replace("http://", creds), max_bytes=1000)
            away = client.get(fs.url("/away.xml").replace("http://", creds), max_bytes=1000)
            sneaky = client.get(fs.url("/sneaky.xml"), max_bytes=1000)
        assert same.ok and away.ok and sneaky.ok
        assert [_auth_of(s) for s in fs.hits("/feed.xml") + fs.hits("/real.xml")] == ["al@ice:p@ss:w%rd"] * 2
        assert _auth_of(fs.hits("/away.xml")[0]) == "al@ice:p@ss:w%rd"
        assert [_auth_of(s) for s in other.requests] == [None, None]
        for r in (same, away):
            assert "@" not in r.url and "@" not in r.final_url
        # a permanent move keeps the credentials only where they still apply
        assert away.permanent_redirect == other.url("/moved.xml")
        fs.redirect("/old.xml", "/real.xml", 308)
        with SafeClient(settings) as client:
            moved = client.get(fs.url("/old.xml").replace("http://", creds), max_bytes=1000)
        assert moved.ok and moved.permanent_redirect == fs.url("/real.xml").replace("http://", creds)


# --- end to end, property-based ------------------------------------------------------------

LINK_KINDS = ["relative", "relative-no-slash", "protocol-relative", "absolute", "empty"]


# one item of each format, and the document around the items
_ITEM = {"atom": ("<entry><id>urn:{prefix}:{i}</id><title>Credential story {prefix} {i}</title>"
                  "<link href='{link}'/><summary>{text}</summary><updated>2026-11-23T10:00:00Z</updated></entry>"),
         "rss": ("<item><guid isPermaLink='false'>{prefix}-{i}</guid><title>Credential story {prefix} {i}</title>"
                 "<link>{link}</link><description>{text}</description>"
                 "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>")}
_DOCUMENT = {"atom": ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
                      "<title>Private {prefix}</title><id>urn:{prefix}</id>{items}</feed>"),
             "rss": ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                     "<title>Private {prefix}</title><link>/</link>{items}</channel></rss>")}


def _feed_document(base: str, prefix: str, links: list[str], atom: bool) -> bytes:
    """A feed whose item i links to /{prefix}/page/i on ``base`` (the origin it is served
    from), each in its own way; an "empty" link names nothing (Atom: the feed itself)."""
    def link_for(i: int, how: str) -> str:
        return {"relative": f"/{prefix}/page/{i}", "relative-no-slash": f"page/{i}",
                "protocol-relative": f"//{base.split('://', 1)[1]}/{prefix}/page/{i}",
                "absolute": f"{base}/{prefix}/page/{i}", "empty": ""}[how]

    fmt = "atom" if atom else "rss"
    text = ("The feed's own text of item {i}: the harbour board met on Tuesday and "
            "argued about the budget, the roads and the schools for a long while.")
    items = "".join(_ITEM[fmt].format(prefix=prefix, i=i, link=link_for(i, how), text=text.format(i=i))
                    for i, how in enumerate(links))
    return _DOCUMENT[fmt].format(prefix=prefix, items=items).encode()


def _dump_news_tables(database_url: str) -> str:
    """Every row of every news.* table as text; news.feeds without url and declared_url
    (the feed's address as fetched and as the feeds file declares it: where the
    credentials belong)."""
    tables = [r["tablename"] for r in fetch_all(
        database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'news' ORDER BY tablename")]
    assert "articles" in tables and "entries" in tables and "story_outlets" in tables
    text = []
    for table in tables:
        drop = " - 'url' - 'declared_url'" if table == "feeds" else ""
        rows = fetch_all(database_url, f"SELECT (to_jsonb(t){drop})::text AS row FROM news.{table} t")
        text.extend(f"news.{table}: {r['row']}" for r in rows)
    return "\n".join(text)


_examples = iter(range(1_000_000))


@pytest.mark.slow
@pytest.mark.timeout(900)
@hsettings(max_examples=12, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(chunks=st.lists(CHUNK, min_size=2, max_size=3),
       separators=st.lists(st.sampled_from(["@", ":", "%"]), min_size=2, max_size=2),
       encoded=st.booleans(),
       links=st.lists(st.sampled_from(LINK_KINDS), min_size=1, max_size=4),
       atom=st.booleans(), redirect=st.sampled_from(["none", "same-origin", "other-origin"]),
       missing_page=st.booleans())
@example(chunks=["SEKRETX", "WHQQY"], separators=["@", "@"], encoded=False, links=["relative"], atom=False,
         redirect="none", missing_page=False)  # the case: a relative link, "@" in the password
def test_feed_credentials_appear_nowhere_but_the_feed_request(
        chunks, separators, encoded, links, atom, redirect, missing_page,
        database_url, tmp_path, monkeypatch, caplog, capsys):
    from newsflow import cli

    n = next(_examples)
    password = _password(chunks, separators)
    written = quote(password, safe="") if encoded else password  # as the user writes it in the URL
    expected_auth = f"reader:{unquote(written)}"
    prefix = f"x{n}"
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capsys.readouterr()
    with FaultServer() as fs, FaultServer() as other:
        feed_path = f"/{prefix}/feed.xml"
        served_from = {"none": fs, "same-origin": fs, "other-origin": other}[redirect]
        doc = _feed_document(served_from.base, prefix, links, atom)
        ctype = "application/atom+xml" if atom else "application/rss+xml"

        def private(req):
            if _auth_of_header(req.headers.get("Authorization")) != expected_auth:
                req.send_plain(401, b"who are you?", {"WWW-Authenticate": 'Basic realm="feeds"'})
            else:
                req.send_plain(200, doc, {"Content-Type": ctype})

        if redirect == "none":
            fs.route(feed_path, private)
        elif redirect == "same-origin":
            fs.redirect(feed_path, f"/{prefix}/real.xml", 302)
            fs.route(f"/{prefix}/real.xml", private)
        else:
            fs.redirect(feed_path, other.url(f"/{prefix}/public.xml"), 302)
            other.add(f"/{prefix}/public.xml", doc, content_type=ctype)
        for i in range(len(links)):  # every kind of link names /{prefix}/page/{i} of the feed's origin
            if missing_page and i == 0:  # the feed's text instead, with the page's failure logged
                served_from.add(f"/{prefix}/page/{i}", b"gone", status=404)
            else:
                served_from.add(f"/{prefix}/page/{i}", article_html(
                    f"Credential story {prefix} {i}", paragraphs=8, seed=f"{prefix}-{i}"))

        feed_url = fs.url(feed_path).replace("http://", f"http://reader:{written}@")
        feeds_file = tmp_path / f"feeds-{n}.yaml"
        feeds_file.write_text("feeds:\n  - url: " + json.dumps(feed_url) + f"\n    publisher: Private {prefix}\n")
        monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
        monkeypatch.setenv("NEWSFLOW_ALLOW_PRIVATE_NETWORKS", "1")
        monkeypatch.setenv("NEWSFLOW_PER_HOST_DELAY", "0")
        monkeypatch.setenv("NEWSFLOW_PER_HOST_CONCURRENCY", "4")
        monkeypatch.setenv("NEWSFLOW_EXTRACT_WORKERS", "1")
        monkeypatch.setenv("NEWSFLOW_DATA_DIR", str(tmp_path / "state"))
        outputs = []
        for argv in (["run", "--feeds", str(feeds_file)], ["search", "Credential"], ["export"],
                     ["feeds", "status"], ["maintenance"]):
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                code = cli.main(argv)
            finally:  # the CLI installs its own; pytest's Ctrl-C must still work afterwards
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
            out = capsys.readouterr()
            outputs.append(out.out + out.err)
            assert code in (0, 1), (argv, outputs[-1][-2000:])

        # the feed was fetched with its credentials (and only the feed)
        feed_hits = [s for s in fs.requests if s.path.startswith((feed_path, f"/{prefix}/real.xml"))]
        assert feed_hits and all(_auth_of(s) == expected_auth for s in feed_hits)
        others = [s for s in fs.requests + other.requests if s not in feed_hits]
        assert not [s.path for s in others if "authorization" in s.headers]
        assert others or set(links) == {"empty"}  # pages were asked for (without)

    loaded = fetch_all(database_url, """
        SELECT e.link, e.status, e.notes, a.body_source FROM news.entries e
        JOIN news.feeds f ON f.id = e.feed_id LEFT JOIN news.articles a ON a.id = e.article_id
        WHERE f.publisher = %s""", (f"Private {prefix}",))
    assert len(loaded) == len(links) and all(r["status"] == "loaded" for r in loaded), loaded
    for row in loaded:
        assert row["link"] is None or "@" not in row["link"]
    shown = "\n".join(outputs)
    logged = "\n".join(r.getMessage() + (caplog.text if r.exc_info else "") for r in caplog.records)
    assert "Credential story" in outputs[1] and "Credential story" in outputs[2]  # they did print
    for where, text in (("database", _dump_news_tables(database_url)), ("CLI output", shown), ("log", logged)):
        assert not _leaks(text, password, chunks), (where, [line for line in text.splitlines()
                                                            if _leaks(line, password, chunks)][:5])


def _auth_of_header(value: str | None) -> str | None:
    if not value or not value.startswith("Basic "):
        return None
    return base64.b64decode(value.split()[1]).decode("utf-8", "replace")


def test_migration_016_scrubs_credentials_stored_before(pg_server_url, tmp_path):
    """Rows stored before links lost their user information are cleaned, and news_api shows
    no part of a password holding '@' (news.public_url stopped at the first '@')."""
    from newsflow import db

    feed_url = "http://alice:p@ss%40Secret@creds.test/feed.xml"
    leaked = "http://alice:p@ss%40Secret@creds.test/page/1"
    with database_before(pg_server_url, tmp_path, 16) as url:
        with db.connect(url) as conn:
            feed = conn.execute("INSERT INTO news.feeds (url, publisher) VALUES (%s, 'Creds') RETURNING id",
                                (feed_url,)).fetchone()["id"]
            story = conn.execute("INSERT INTO news.stories (title) VALUES ('T') RETURNING id").fetchone()["id"]
            article = conn.execute("""
                INSERT INTO news.articles (url, canonical_url, publisher, site_name, title, body, language,
                                           word_count, content_hash, body_source, story_id, story_relation)
                VALUES (%s, %s, 'Creds', 'alice:p@ss%%40Secret@creds.test', 'T', 'Body text.', 'en', 2, 'h1',
                        'page', %s, 'original') RETURNING id""", (leaked, leaked, story)).fetchone()["id"]
            conn.execute("INSERT INTO news.entries (feed_id, guid, link, status, article_id) "
                         "VALUES (%s, 'g1', %s, 'loaded', %s)", (feed, leaked, article))
            conn.commit()
        db.upgrade(url)
        with db.connect(url) as conn:
            stored = conn.execute("""
                SELECT (SELECT string_agg(link, ' ') FROM news.entries)
                    || (SELECT string_agg(url || canonical_url || coalesce(site_name, ''), ' ') FROM news.articles)
                    || (SELECT string_agg(url, ' ') FROM news.story_outlets)
                    || (SELECT string_agg(url, ' ') FROM news_api.feeds)
                    || (SELECT string_agg(url, ' ') FROM news_api.feed_status) AS text""").fetchone()["text"]
        assert "Secret" not in stored and "p@ss" not in stored and "alice" not in stored
        assert "http://creds.test/page/1" in stored and "http://***@creds.test/feed.xml" in stored
