"""Normalisation: canonical URLs, text, hashes, dates."""

from datetime import datetime, timezone

import pytest

from newsflow.normalize import (canonical_url, clean_text, content_hash, html_to_text,
                                split_authors, to_utc, word_count)


@pytest.mark.parametrize("raw, expected", [
    ("HTTP://WWW.Example.COM:80/News/Story.html#comments", "http://www.example.com/News/Story.html"),
    ("https://example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x", "https://example.com/a"),
    ("https://example.com/a?id=7&fbclid=abc&gclid=def", "https://example.com/a?id=7"),
    ("https://example.com/a?b=2&a=1&ref=rss", "https://example.com/a?a=1&b=2"),
    ("https://example.com:443/", "https://example.com/"),
    ("https://example.com", "https://example.com/"),
])
def test_canonical_url(raw, expected):
    assert canonical_url(raw) == expected


def test_canonical_url_keeps_meaningful_parameters():
    assert canonical_url("https://ex.com/article.php?id=12&page=2") == "https://ex.com/article.php?id=12&page=2"


def test_clean_text_nfc_and_whitespace():
    decomposed = "Cafe\u0301  au\u00a0lait\r\n\r\n\r\n  second\tparagraph \x00"
    assert clean_text(decomposed) == "Caf\u00e9 au lait\n\nsecond paragraph"


def test_html_to_text_keeps_paragraphs():
    text = clean_text(html_to_text("<p>One <b>bold</b> claim.</p><p>Two &amp; three.</p>"))
    assert text == "One bold claim.\n\nTwo & three."
    assert html_to_text("plain text") == "plain text"


def test_content_hash_ignores_case_and_spacing():
    a = content_hash("The coalition said on Friday.\n\nFewer than 1,000 remain.")
    b = content_hash("the coalition  said on friday. fewer than 1,000 remain")
    assert a == b and len(a) == 64
    assert content_hash("another text") != a


def test_word_count_unicode():
    assert word_count("Größere Städte wachsen schneller.") == 4


@pytest.mark.parametrize("value, expected", [
    ("2026-11-20T09:14:00Z", datetime(2026, 11, 20, 9, 14, tzinfo=timezone.utc)),
    ("Fri, 20 Nov 2026 12:14:00 +0300", datetime(2026, 11, 20, 9, 14, tzinfo=timezone.utc)),
    ("2026-11-20", datetime(2026, 11, 20, tzinfo=timezone.utc)),
    ("not a date", None), ("", None), (None, None),
])
def test_to_utc(value, expected):
    assert to_utc(value) == expected


def test_split_authors():
    assert split_authors("Jane Doe; John Roe") == ["Jane Doe", "John Roe"]
    assert split_authors("Jane Doe and John Roe") == ["Jane Doe", "John Roe"]
    assert split_authors(None) == []
