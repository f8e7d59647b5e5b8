"""Extraction at trafilatura's quality: tables, titles unescaped exactly once."""

from __future__ import annotations

from faultserver import rss

from newsflow.config import Settings
from newsflow.extract import extract_page
from newsflow.models import ExtractJob
from newsflow.parse import parse_feed


def para(i: int) -> str:
    return (f"The harbour council met on Tuesday evening to debate plan number {i}, and members argued "
            "at length about dredging, ferries and the new sea wall that engineers have proposed.")


def page(body: str, title: str = "Story") -> bytes:
    return f"<html lang=en><head><title>{title}</title></head><body>{body}</body></html>".encode()


def test_an_article_laid_out_in_a_table_keeps_its_text_as_paragraphs_without_the_menu():
    layout = page("<table><tr><td class=nav><a href=/>Home</a> <a href=/news>News</a> <a href=/sport>Sport</a></td>"
                  "<td><h1>Layout story</h1>" + "".join(f"<p>{para(i)}</p>" for i in range(6)) + "</td></tr></table>")
    found = extract_page(ExtractJob(layout, "http://x.test/layout", titles=("Layout story",)), Settings())
    lines = found.body.split("\n")
    assert [f"plan number {i}," in line for i, line in enumerate(lines)] == [True] * 6  # one paragraph a line
    assert "|" not in found.body and "Home" not in found.body and "Sport" not in found.body


def test_a_data_table_in_an_article_keeps_its_rows():
    data = page("<article><h1>Data story</h1>" + "".join(f"<p>{para(i)}</p>" for i in range(3))
                + "<table><tr><th>Town</th><th>Votes</th></tr><tr><td>Kingsbridge</td><td>4,210</td></tr>"
                "<tr><td>Hallam</td><td>3,977</td></tr></table>" + "".join(f"<p>{para(i)}</p>" for i in range(3, 6))
                + "</article>")
    body = extract_page(ExtractJob(data, "http://x.test/data"), Settings()).body
    assert "| Kingsbridge | 4,210 |" in body and "| Hallam | 3,977 |" in body
    assert body.index("plan number 2,") < body.index("Kingsbridge") < body.index("plan number 3,")


def test_titles_are_unescaped_exactly_once_wherever_they_come_from():
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><title type="html">Jupiter&amp;#x27;s moons &amp;amp; rings</title><id>1</id>
        <link href="http://x.test/1"/><summary type="html">Tom &amp;amp; Jerry &lt;b&gt;bold&lt;/b&gt;</summary></entry>
      <entry><title type="text">AT&amp;amp;T &lt;b&gt; stays</title><id>2</id><link href="http://x.test/2"/></entry>
      <entry><title>Plain &amp; simple</title><id>3</id><link href="http://x.test/3"/></entry>
    </feed>"""
    entries = {e.link.rsplit("/", 1)[-1]: e for e in parse_feed(atom, "http://x.test/feed").entries}
    assert entries["1"].title == "Jupiter's moons & rings"  # HTML: decoded once
    assert entries["1"].summary == "Tom & Jerry bold"
    assert entries["2"].title == "AT&amp;T <b> stays"  # declared plain text: as the publisher wrote it
    assert entries["3"].title == "Plain & simple"
    rss_titles = parse_feed(rss([{"title": "Jupiter&amp;#x27;s moons", "link": "http://x.test/r", "guid": "r"}]),
                            "http://x.test/rss").entries
    assert rss_titles[0].title == "Jupiter's moons"
    found = extract_page(ExtractJob(page("<article>" + "".join(f"<p>{para(i)}</p>" for i in range(4)) + "</article>",
                                         title="Caf&eacute; &amp; bar"), "http://x.test/p"), Settings())
    assert found.title == "Café & bar"  # the page's title, decoded by the HTML parser, not again
