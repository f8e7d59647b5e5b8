"""Hostile and odd feed content, and feedparser's own test corpus through parse_feed."""

from __future__ import annotations

import resource
from collections import Counter
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import CORPUS_FEEDS
from faultserver import rss
from newsflow.parse import parse_feed, strip_unsafe_doctype

URL = "http://news.test/feed.xml"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs &lol9;</title>
<item><title>Item &lol9;</title><link>http://news.test/1</link><description>&lol9;</description></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> <!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p; ]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Leak &xxe;</title><link>http://news.test/1</link><description>&xxe;</description></item>
</channel></rss>"""


def test_billion_laughs_is_not_expanded():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for body in (BILLION_LAUGHS, BILLION_LAUGHS.decode().encode("utf-16"),
                 b"<!-- <rss> -->" + BILLION_LAUGHS.replace(b'<?xml version="1.0"?>\n', b"")):
        parsed = parse_feed(body, URL)
        assert parsed.error is None and len(parsed.entries) == 1
        assert "document type declaration removed" in parsed.warning
        entry = parsed.entries[0]
        assert "lollol" not in (entry.title or "") + (entry.summary or "")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200 * 1024  # a billion "lol"s would be gigabytes


def test_external_entities_are_not_resolved():
    parsed = parse_feed(XXE, URL)
    assert parsed.error is None and parsed.entries
    text = " ".join(f"{e.title} {e.summary}" for e in parsed.entries)
    assert "root:" not in text and "/bin/" not in text
    assert "document type declaration removed" in parsed.warning


def test_harmless_doctypes_are_kept():
    netscape = (b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">')
    body = netscape + rss([{"title": "A", "link": "http://news.test/a"}])[len(b'<?xml version="1.0" encoding="utf-8"?>\n'):]
    assert strip_unsafe_doctype(body) == (body, None)
    chars = b'<!DOCTYPE rss [<!ENTITY copy "&#169;"> <!ENTITY nbsp "&#160;">]>'
    body = chars + b'<rss version="2.0"><channel><title>t &copy;</title></channel></rss>'
    assert strip_unsafe_doctype(body) == (body, None)
    # the text "<!DOCTYPE" inside the document is content, not a declaration
    body = rss([{"title": "About &lt;!DOCTYPE", "link": "http://news.test/a",
                 "description": "<![CDATA[<!DOCTYPE x [<!ENTITY a 'b'>]>]]>"}])
    assert strip_unsafe_doctype(body) == (body, None)
    unterminated = b'<!DOCTYPE rss [<!ENTITY a "b"'
    assert strip_unsafe_doctype(unterminated)[0] == b""


@pytest.mark.parametrize("body,needle", [
    (b"", "empty"),
    (b"   \n\t ", "empty"),
    (b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>", "not a feed"),
    (b'{"error": "not found"}', "not a feed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a feed"),
    (b"<rss version='2.0'><channel><title>cut off", "malformed"),
])
def test_unusable_documents_are_errors(body, needle):
    parsed = parse_feed(body, URL)
    assert parsed.error and needle in parsed.error and parsed.entries == []


def test_malformed_but_usable_feed_keeps_its_items():
    body = (b"<rss version='2.0'><channel><title>Broken & unescaped</title>"
            b"<item><title>One</title><link>http://news.test/1</link></item>"
            b"<item><title>Two <b>bold</title><link>http://news.test/2</link></item>")  # never closed
    parsed = parse_feed(body, URL)
    assert parsed.error is None and [e.link for e in parsed.entries] == ["http://news.test/1", "http://news.test/2"]
    assert parsed.warning


def test_wrong_and_missing_charsets():
    latin1 = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Caf\u00e9</title>"
              "<item><title>Cr\u00e8me br\u00fbl\u00e9e</title><link>http://news.test/1</link></item>"
              "</channel></rss>").encode("latin-1")  # declared utf-8, really latin-1
    parsed = parse_feed(latin1, URL, content_type="application/rss+xml")
    assert parsed.error is None and len(parsed.entries) == 1 and parsed.entries[0].title
    undeclared = ("<rss version='2.0'><channel><item><title>\u65e5\u672c\u8a9e</title>"
                  "<link>http://news.test/jp</link></item></channel></rss>").encode("utf-8")
    parsed = parse_feed(undeclared, URL, content_type="text/xml")  # text/xml without charset
    assert parsed.error is None and len(parsed.entries) == 1
    utf16 = ("<?xml version='1.0' encoding='utf-16'?><rss version='2.0'><channel><item><title>\u00c5se"
             "</title><link>http://news.test/u</link></item></channel></rss>").encode("utf-16")
    parsed = parse_feed(utf16, URL)
    assert parsed.error is None and parsed.entries[0].title == "\u00c5se"
    bogus = b"<?xml version='1.0' encoding='x-no-such-charset'?>" + rss([{"title": "T", "link": "http://news.test/b"}])[38:]
    parsed = parse_feed(bogus, URL)
    assert parsed.error is None and len(parsed.entries) == 1


def test_dates_in_the_future_or_unparseable_are_dropped_not_trusted():
    now = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
    body = rss([
        {"title": "Future", "link": "http://news.test/f", "pubDate": now + timedelta(days=30)},
        {"title": "Garbage", "link": "http://news.test/g", "pubDate": "the day after yesterday"},
        {"title": "Fine", "link": "http://news.test/ok", "pubDate": now - timedelta(hours=1)},
        {"title": "Slightly ahead", "link": "http://news.test/s", "pubDate": now + timedelta(hours=2)},
        {"title": "Year 99999", "link": "http://news.test/y", "pubDate": "Mon, 01 Jan 99999 00:00:00 GMT"},
    ])
    parsed = parse_feed(body, URL, now=now)
    dates = {e.title: e.published_at for e in parsed.entries}
    assert dates["Future"] is None and dates["Garbage"] is None and dates["Year 99999"] is None
    assert dates["Fine"] == now - timedelta(hours=1)
    assert dates["Slightly ahead"] == now + timedelta(hours=2)  # clock skew tolerated (1 day)


def test_duplicate_entries_within_one_feed_and_identity_fallbacks():
    items = [{"title": "A", "link": "http://news.test/a", "guid": "urn:a"},
             {"title": "A", "link": "http://news.test/a", "guid": "urn:a"},  # listed twice
             {"title": "B", "link": "http://news.test/b"},                   # no guid: link
             {"title": "C only title", "description": "no link, no guid"}]     # neither: hash
    parsed = parse_feed(rss(items), URL)
    assert [e.guid for e in parsed.entries][:2] == ["urn:a", "http://news.test/b"]
    assert parsed.entries[2].guid.startswith("sha1:") and len(parsed.entries) == 3
    reused = [{"title": f"T{i}", "link": f"http://news.test/{i}", "guid": "urn:one"} for i in range(3)]
    parsed = parse_feed(rss(reused), URL)
    assert parsed.guid_mode == "link" and len(parsed.entries) == 3


def test_enormous_feed_document_parses_or_fails_cleanly():
    items = [{"title": f"T{i}", "link": f"http://news.test/{i}", "guid": f"g{i}",
              "description": "x" * 200} for i in range(5000)]
    parsed = parse_feed(rss(items), URL)
    assert parsed.error is None and len(parsed.entries) == 5000
    nested = b"<rss version='2.0'><channel><item><title>deep</title><description>" + \
        b"&lt;div&gt;" * 50_000 + b"</description><link>http://news.test/d</link></item></channel></rss>"
    parsed = parse_feed(nested, URL)
    assert parsed.error is None or parsed.error


# --- feedparser's corpus ------------------------------------------------------------------------------

def _parse_file(path: str) -> tuple[str, str | None, bool]:
    """(path, error, well-formed per header); runs in a worker process."""
    data = Path(path).read_bytes()
    head = data[:600].decode("latin-1")
    wellformed = "Expect:" in head and "not bozo" in head
    result = parse_feed(data, "http://corpus.test/" + Path(path).name)
    return path, result.error, wellformed


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS_FEEDS.is_dir(), reason=f"{CORPUS_FEEDS} absent")
def test_feedparser_corpus_never_crashes_or_hangs():
    from pebble import ProcessPool

    files = sorted(str(p) for p in CORPUS_FEEDS.rglob("*") if p.is_file() and p.name != "LICENSE")
    assert len(files) > 1000
    outcome = Counter()
    wellformed = Counter()
    problems = []
    with ProcessPool(max_workers=2) as pool:
        futures = [(f, pool.schedule(_parse_file, args=(f,), timeout=10)) for f in files]
        for path, future in futures:
            try:
                _, error, good = future.result()
            except FutureTimeout:
                outcome["hung"] += 1
                problems.append(f"{path}: over 10 s")
                continue
            except Exception as exc:  # a crash of the parser or of the worker
                outcome["crashed"] += 1
                problems.append(f"{path}: {type(exc).__name__}: {exc}")
                continue
            outcome["error" if error else "parsed"] += 1
            if good:
                wellformed["error" if error else "parsed"] += 1
    print(f"\ncorpus: {len(files)} files, {dict(outcome)}; well-formed per header: {dict(wellformed)}")
    assert outcome["hung"] == 0 and outcome["crashed"] == 0, problems[:10]
    assert outcome["parsed"] + outcome["error"] == len(files)
    assert outcome["parsed"] > outcome["error"]
    assert wellformed["parsed"] + wellformed["error"] > 1000
    assert wellformed["parsed"] >= 0.95 * (wellformed["parsed"] + wellformed["error"])
