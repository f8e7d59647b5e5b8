"""Hostile servers and addresses: every fault ends as a clear, recorded error.

All traffic goes to the fault server on 127.0.0.1; host names are resolved by a test
resolver (SafeClient's ``resolver``) so the address guard can be exercised on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import tracemalloc

import pytest

from faultserver import (FaultServer, article_html, blackhole_port, loopback_resolver, rss,
                         self_signed_tls_context)
from newsflow import db
from newsflow.config import Settings
from newsflow.extract import Extractor, extract_page
from newsflow.fetch import PageFetcher
from newsflow.httpclient import SafeClient, parse_retry_after
from newsflow.ingest import ingest_pending
from newsflow.netguard import address_is_public
from newsflow.models import ErrorKind, ExtractJob, FeedSpec
from newsflow.pipeline import sync_feeds
from newsflow.poll import poll_feeds, select_feeds

FAST = dict(connect_timeout=0.5, read_timeout=1.0, total_timeout=2.0)


def fast_settings(**changes) -> Settings:
    return Settings(**{"allow_private_networks": True, "per_host_delay": 0.0, **FAST, **changes})


@pytest.fixture
def fs():
    with FaultServer() as server:
        yield server


@pytest.fixture
def client():
    with SafeClient(fast_settings()) as c:
        yield c


# --- network faults -------------------------------------------------------------------------

def test_connect_timeout(client):
    with blackhole_port() as port:
        r = client.get(f"http://127.0.0.1:{port}/feed", max_bytes=1000)
    assert r.error_kind is ErrorKind.TIMEOUT and "connect timeout" in r.error
    assert r.status is None and r.body == b""


def test_read_timeout_on_silent_server(fs, client):
    r = client.get(fs.route("/silent", fs.silent), max_bytes=1000)
    assert r.error_kind is ErrorKind.TIMEOUT and "read timeout" in r.error


@pytest.mark.parametrize("fault", ["trickle_body", "trickle_headers"])
def test_slowloris_stops_at_total_deadline(fs, client, fault):
    # one byte every 0.1 s never trips the 1 s read timeout; only the 2 s total deadline
    r = client.get(fs.route("/slow", getattr(fs, fault)), max_bytes=10_000_000)
    assert r.error_kind is ErrorKind.TIMEOUT and "total timeout" in r.error, r.error


@pytest.mark.parametrize("fault,kind", [
    ("declared_huge", ErrorKind.TOO_LARGE),
    ("chunked_endless", ErrorKind.TOO_LARGE),
])
def test_body_over_cap_is_aborted(fs, client, fault, kind):
    r = client.get(fs.route("/big", getattr(fs, fault)), max_bytes=1_000_000)
    assert r.error_kind is kind and "cap" in r.error
    assert r.body == b""


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_stops_at_cap_without_blowing_memory(fs, client, encoding):
    url = fs.route("/bomb", fs.bomb(encoding, decoded_size=200 * 1024 * 1024))
    tracemalloc.start()
    try:
        r = client.get(url, max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.error_kind is ErrorKind.TOO_LARGE
    assert peak < 30 * 1024 * 1024  # 200 MB decoded would be far beyond this


def test_compressed_body_within_cap_is_decoded(fs, client):
    import gzip

    fs.add("/gz", gzip.compress(b"<rss/>" * 100), headers={"Content-Encoding": "gzip"})
    r = client.get(fs.url("/gz"), max_bytes=1_000_000)
    assert r.ok and r.body == b"<rss/>" * 100


def test_corrupt_and_unknown_encodings(fs, client):
    fs.add("/corrupt", b"definitely not gzip", headers={"Content-Encoding": "gzip"})
    fs.add("/br", b"xx", headers={"Content-Encoding": "br"})
    assert client.get(fs.url("/corrupt"), max_bytes=1000).error_kind is ErrorKind.ENCODING
    assert client.get(fs.url("/br"), max_bytes=1000).error_kind is ErrorKind.ENCODING


def test_redirect_loop_and_too_many_redirects(fs, client):
    r = client.get(fs.redirect_loop("/a", "/b"), max_bytes=1000)
    assert r.error_kind is ErrorKind.REDIRECT and "loop" in r.error
    r = client.get(fs.redirect_chain("/hop", 8), max_bytes=1000)
    assert r.error_kind is ErrorKind.REDIRECT and "more than 5 redirects" in r.error
    r = client.get(fs.redirect_chain("/short", 3, b"arrived"), max_bytes=1000)
    assert r.ok and r.body == b"arrived" and r.final_url.endswith("/short3")
    # relative Locations keep a feed URL's credentials on every hop: the error must not
    fs.redirect("/la", "/lb", 302)
    fs.redirect("/lb", "/la", 302)
    r = client.get(fs.url("/la").replace("http://", "http://reader:s3cret@"), max_bytes=1000)
    assert r.error_kind is ErrorKind.REDIRECT and "loop" in r.error and "s3cret" not in r.error


@pytest.mark.parametrize("fault", ["reset", "reset_mid_body", "hang_up"])
def test_connection_reset_and_hang_up(fs, client, fault):
    r = client.get(fs.route("/x", getattr(fs, fault)), max_bytes=1_000_000)
    assert r.error_kind is ErrorKind.NETWORK and r.error
    if fault.startswith("reset"):
        assert "reset" in r.error


def test_tls_error_https_to_plain_http_port(fs, client):
    fs.add("/feed", rss([]))
    r = client.get(f"https://127.0.0.1:{fs.port}/feed", max_bytes=1000)
    assert r.error_kind is ErrorKind.TLS and "tls error" in r.error


def test_tls_error_self_signed_certificate(tmp_path, client):
    context = self_signed_tls_context(tmp_path)
    if context is None:
        pytest.skip("neither cryptography nor openssl available to make a certificate")
    with FaultServer(tls=context) as tls_server:
        tls_server.add("/feed", rss([]))
        r = client.get(tls_server.url("/feed"), max_bytes=1000)
        assert r.error_kind is ErrorKind.TLS and "CERTIFICATE_VERIFY_FAILED" in r.error
        # the server itself works: a client that trusts it gets the feed
        import ssl
        trusting = ssl.create_default_context()
        trusting.check_hostname = False
        trusting.verify_mode = ssl.CERT_NONE
        with SafeClient(fast_settings(), verify=trusting) as lax:
            assert lax.get(tls_server.url("/feed"), max_bytes=1000).ok


def test_dns_failure(fs):
    resolver = loopback_resolver({"gone.test": socket.gaierror(socket.EAI_NONAME, "Name or service not known")})
    with SafeClient(fast_settings(), resolver=resolver) as c:
        r = c.get(fs.url("/feed", host="gone.test"), max_bytes=1000)
        assert r.error_kind is ErrorKind.DNS and "gone.test" in r.error
        r = c.get(fs.url("/feed", host="unknown.test"), max_bytes=1000)
        assert r.error_kind is ErrorKind.DNS


def test_only_http_and_https(client):
    for url in ("ftp://127.0.0.1/feed", "file:///etc/passwd", "gopher://127.0.0.1/", "javascript:alert(1)",
                "data:text/html,hi"):
        r = client.get(url, max_bytes=1000)
        assert r.error_kind is ErrorKind.SCHEME, url


def test_retry_after_parsing():
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 7 ") == 7
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert 3500 < parse_retry_after(_http_date(3600)) <= 3600
    assert parse_retry_after("soon") is None and parse_retry_after("") is None
    assert parse_retry_after("-5") is None


def _http_date(seconds_ahead: int) -> str:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_ahead), usegmt=True)


# --- the address guard ----------------------------------------------------------------------

REFUSED = ["127.0.0.1", "127.0.0.2", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
           "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
           "::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "fe80::1",
           "fc00::1", "fd12:3456::1", "ff02::1", "2002:7f00:1::1", "2001:db8::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_guard_refuses_non_public_addresses(fs, address):
    assert not address_is_public(ipaddress.ip_address(address))
    resolver = loopback_resolver({"feeds.test": address})
    with SafeClient(fast_settings(allow_private_networks=False), resolver=resolver) as c:
        r = c.get(fs.url("/feed", host="feeds.test"), max_bytes=1000)
    assert r.error_kind is ErrorKind.BLOCKED and "non-public address" in r.error
    assert fs.requests == []  # refused before connecting


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass_the_check(address):
    assert address_is_public(ipaddress.ip_address(address))  # (checked only, never contacted)


def test_ip_literal_urls_are_guarded_too(fs):
    with SafeClient(fast_settings(allow_private_networks=False)) as c:  # the system resolver
        for url in (fs.url("/feed"), f"http://[::ffff:127.0.0.1]:{fs.port}/feed",
                    f"http://localhost:{fs.port}/feed", f"http://2130706433:{fs.port}/feed"):
            r = c.get(url, max_bytes=1000)
            assert r.error_kind in (ErrorKind.BLOCKED, ErrorKind.DNS, ErrorKind.NETWORK), (url, r.error)
            assert r.error_kind is not ErrorKind.NETWORK or "refused" in r.error
    assert fs.requests == []


def test_guard_off_fetches_the_same_host(fs):
    fs.add("/feed", rss([]))
    resolver = loopback_resolver({"feeds.test": "127.0.0.1"})
    with SafeClient(fast_settings(allow_private_networks=True), resolver=resolver) as c:
        r = c.get(fs.url("/feed", host="feeds.test"), max_bytes=10_000)
    assert r.ok and fs.requests[0].host.startswith("feeds.test")


def test_guard_checks_every_redirect_hop(fs):
    # good.test is allowed (an exempt address, standing in for a public server); it
    # redirects to evil.test, which resolves to loopback: refused at the second hop.
    resolver = loopback_resolver({"good.test": "127.0.0.1", "evil.test": "127.0.0.2"})
    fs.redirect("/go", fs.url("/admin", host="evil.test"), 302)
    fs.redirect("/go-literal", f"http://[::ffff:127.0.0.2]:{fs.port}/admin", 301)
    fs.add("/admin", "internal secrets")
    fs.add("/fine", rss([]))
    settings = fast_settings(allow_private_networks=False)
    with SafeClient(settings, resolver=resolver, exempt_networks=["127.0.0.1/32"]) as c:
        assert c.get(fs.url("/fine", host="good.test"), max_bytes=10_000).ok
        for path in ("/go", "/go-literal"):
            r = c.get(fs.url(path, host="good.test"), max_bytes=10_000)
            assert r.error_kind is ErrorKind.BLOCKED and "127.0.0.2" in r.error and r.body == b""
    assert fs.hits("/admin") == []
    resolver = loopback_resolver({"good.test": "127.0.0.1", "evil.test": "127.0.0.1"})
    with SafeClient(settings.replace(allow_private_networks=True), resolver=resolver) as c:
        r = c.get(fs.url("/go", host="good.test"), max_bytes=10_000)
        assert r.ok and r.body == b"internal secrets"  # guard off: followed


def test_user_agent_names_product_and_contact(fs):
    fs.add("/feed", rss([]))
    settings = fast_settings(contact_url="https://ops.example.org/newsflow")
    with SafeClient(settings) as c:
        c.get(fs.url("/feed"), max_bytes=1000)
    ua = fs.requests[0].headers["user-agent"]
    assert ua.startswith("newsflow/") and "https://ops.example.org/newsflow" in ua


# --- pages: content types, empty bodies, extraction bounds --------------------------------------

def test_page_content_types(fs):
    html = article_html("Budget")
    fs.add("/page.html", html)
    fs.add("/untyped", html, content_type=None)
    fs.add("/xhtml", html, content_type="application/xhtml+xml")
    fs.add("/report.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    fs.add("/image", b"\x89PNG....", content_type="image/png")
    with SafeClient(fast_settings()) as c:
        fetcher = PageFetcher(fast_settings(), c)
        pages = fetcher.fetch_jobs([(fs.url(p), None) for p in ("/page.html", "/untyped", "/xhtml", "/report.pdf", "/image")])
    assert [p.result.ok for p in pages] == [True, True, True, False, False]
    assert pages[3].result.error_kind is ErrorKind.CONTENT_TYPE and "application/pdf" in pages[3].result.error


def test_extraction_is_bounded_for_huge_and_deeply_nested_html():
    nested = b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000 + b"</body></html>"
    result = extract_page(ExtractJob(nested, "http://news.test/deep"), Settings(max_extract_bytes=256 * 1024))
    assert result.error or result.text is not None  # returned, did not crash or hang
    huge = article_html("Huge") + b"<p>" + b"word " * 2_000_000 + b"</p>"
    result = extract_page(ExtractJob(huge, "http://news.test/huge"), Settings(max_extract_bytes=64 * 1024))
    assert result.error or result.text is not None
    for body in (b"", b"\x00\x01\x02", b"<html><body><p>unclosed <b><i><table><tr><td>x"):
        r = extract_page(ExtractJob(body, "http://news.test/odd"), Settings(max_extract_bytes=1024))
        assert r.error or r.text is not None


def test_extraction_time_limit_kills_the_worker():
    settings = fast_settings(extract_workers=1, extract_timeout=0.05)
    with Extractor(settings) as extractor:
        # the first page also pays trafilatura's import in the worker: well over 50 ms
        results = list(extractor.extract_iter([ExtractJob(article_html("Slow", paragraphs=8000), "http://news.test/a")]))
    assert results[0].error and "exceeded" in results[0].error


# --- whole batches: every case recorded, the rest goes on ----------------------------------------

def _setup_feed(database_url, fs, items, path="/feed.xml"):
    feed_url = fs.add(path, rss(items), content_type="application/rss+xml")
    sync_feeds(database_url, [FeedSpec(url=feed_url, publisher="Test")])
    return feed_url


def test_feed_faults_are_recorded_and_other_feeds_go_on(database_url, fs):
    settings = fast_settings(database_url=database_url)
    good = fs.add("/good.xml", rss([{"title": "Fine", "link": fs.url("/p"), "guid": "g1",
                                      "description": "fine"}]), content_type="application/rss+xml")
    cases = {
        "silent": fs.route("/silent", fs.silent),
        "trickle": fs.route("/trickle", fs.trickle_body),
        "reset": fs.route("/reset", fs.reset),
        "bomb": fs.route("/bomb", fs.bomb("gzip", 50 * 1024 * 1024)),
        "loop": fs.redirect_loop("/la", "/lb"),
        "html_error_page": fs.add("/htmlerror", "<html><head><title>Oops</title></head>"
                                                "<body><h1>Service unavailable</h1></body></html>"),
        "empty": fs.add("/empty", b"", content_type="application/rss+xml"),
        "http_500": fs.add("/500", "error", status=500),
        "malformed": fs.add("/malformed", b"<rss><channel><title>x</ti", content_type="text/xml"),
        "tls": f"https://127.0.0.1:{fs.port}/good.xml",
        "dns": "http://no-such-host.invalid/feed",
    }
    # wrong or missing content types do not stop a real feed from parsing
    typed = {
        "as_html": fs.add("/as-html.xml", rss([{"title": "H", "link": fs.url("/h"), "guid": "h"}]),
                          content_type="text/html"),
        "untyped": fs.add("/untyped.xml", rss([{"title": "U", "link": fs.url("/u"), "guid": "u"}]),
                          content_type=None),
        "octet": fs.add("/octet.xml", rss([{"title": "O", "link": fs.url("/o"), "guid": "o"}]),
                        content_type="application/octet-stream"),
    }
    urls = {"good": good, **cases, **typed}
    sync_feeds(database_url, [FeedSpec(url=u, publisher=name) for name, u in urls.items()])
    with db.connect(database_url) as conn:
        feeds = select_feeds(conn, force=True)
    outcomes = poll_feeds(database_url, settings, feeds)
    assert len(outcomes) == len(urls)
    rows = {r["publisher"]: r for r in db.connect(database_url).execute(
        "SELECT publisher, consecutive_errors, last_error, next_poll_at > now() AS later FROM news.feeds")}
    for name in ("good", *typed):
        assert rows[name]["consecutive_errors"] == 0, (name, rows[name]["last_error"])
    expected = {"silent": "read timeout", "trickle": "total timeout", "reset": "reset",
                "bomb": "exceeds cap", "loop": "redirect loop", "html_error_page": "not a feed",
                "empty": "empty", "http_500": "HTTP 500", "malformed": "unparseable feed",
                "tls": "tls error", "dns": "DNS lookup failed"}
    for name, needle in expected.items():
        row = rows[name]
        assert row["consecutive_errors"] == 1 and row["later"], name
        assert needle in row["last_error"], (name, row["last_error"])
    log = db.connect(database_url).execute(
        "SELECT count(*) AS n, count(error) AS errors FROM news.fetch_log WHERE kind = 'feed'").fetchone()
    assert log["n"] == len(urls) and log["errors"] == len(expected)


def test_page_faults_are_recorded_and_the_batch_goes_on(database_url, fs):
    settings = fast_settings(database_url=database_url, max_page_bytes=1_000_000, max_attempts=3)
    fs.add("/ok", article_html("Council budget", seed="ok"))
    pages = {
        "ok": fs.url("/ok"),
        "silent": fs.route("/silent", fs.silent),
        "reset": fs.route("/reset", fs.reset),
        "bomb": fs.route("/bomb", fs.bomb("gzip", 50 * 1024 * 1024)),
        "huge": fs.route("/huge", fs.chunked_endless),
        "loop": fs.redirect_loop("/la", "/lb"),
        "pdf": fs.add("/doc.pdf", b"%PDF-1.4", content_type="application/pdf"),
        "e500": fs.add("/500", "<html><body>Internal error</body></html>", status=500),
        "e404": fs.add("/404", "<html><body>Not found</body></html>", status=404),
        "empty": fs.add("/empty", b""),
        "errorpage": fs.add("/errorpage", "<html><body><h1>Error</h1><p>Try again.</p></body></html>"),
    }
    with_summary = {"bomb", "huge", "pdf", "e404", "empty", "errorpage", "loop"}
    items = [{"title": f"Item {name}", "link": url, "guid": name,
              "description": (f"Summary of {name}: " + "the feed's own text. " * 12) if name in with_summary
              else None} for name, url in pages.items()]
    _setup_feed(database_url, fs, items)
    with db.connect(database_url) as conn:
        poll_feeds(database_url, settings, select_feeds(conn, force=True))
    result = ingest_pending(database_url, settings, max_batches=1)
    assert result.claimed == len(pages)
    # (an RSS guid is a permalink by default: feedparser makes "ok" absolute)
    rows = {r["guid"].rsplit("/", 1)[-1]: r for r in db.connect(database_url).execute("""
        SELECT e.guid, e.status, e.attempts, e.last_error, a.body_source, a.fallback_reason
        FROM news.entries e LEFT JOIN news.articles a ON a.id = e.article_id""")}
    assert rows["ok"]["status"] == "loaded" and rows["ok"]["body_source"] == "page"
    for name in with_summary:  # permanent failures: the feed's text, with the reason
        assert rows[name]["status"] == "loaded" and rows[name]["body_source"] == "feed", name
        assert rows[name]["fallback_reason"], name
    assert "too_large" not in rows["bomb"]["fallback_reason"] and "cap" in rows["bomb"]["fallback_reason"]
    assert "Content-Type application/pdf" in rows["pdf"]["fallback_reason"]
    for name, needle in {"silent": "timeout", "reset": "reset", "e500": "HTTP 500"}.items():
        row = rows[name]  # transient, no summary: pending, error and attempt recorded
        assert row["status"] == "pending" and row["attempts"] == 1 and needle in row["last_error"], row
    page_log = db.connect(database_url).execute(
        "SELECT count(*) AS n FROM news.fetch_log WHERE kind = 'page'").fetchone()
    assert page_log["n"] >= len(pages)
