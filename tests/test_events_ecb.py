"""The ECB+ evaluation's loader and scoring (bench/events_ecb.py), on two small files written
in the corpus's XML form (the corpus itself is not in the repository)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.events_ecb import detokenize, hard_merged, load, parse
from bench.events_eval import online

PLUS = """<?xml version="1.0" encoding="UTF-8"?>
<Document doc_name="1_1ecbplus.xml" doc_id="DOC1">
<token t_id="1" sentence="0" number="0">http</token><token t_id="2" sentence="0" number="1">:</token>
<token t_id="3" sentence="0" number="2">/</token><token t_id="4" sentence="0" number="3">/</token>
<token t_id="5" sentence="0" number="4">example.com</token>
<token t_id="6" sentence="1" number="0">Lohan</token><token t_id="7" sentence="1" number="1">checks</token>
<token t_id="8" sentence="1" number="2">into</token><token t_id="9" sentence="1" number="3">rehab</token>
<token t_id="10" sentence="2" number="0">Lohan</token><token t_id="11" sentence="2" number="1">'s</token>
<token t_id="12" sentence="2" number="2">rep</token><token t_id="13" sentence="2" number="3">said</token>
<token t_id="14" sentence="2" number="4">:</token><token t_id="15" sentence="2" number="5">``</token>
<token t_id="16" sentence="2" number="6">a</token><token t_id="17" sentence="2" number="7">90</token>
<token t_id="18" sentence="2" number="8">-</token><token t_id="19" sentence="2" number="9">day</token>
<token t_id="20" sentence="2" number="10">stay</token><token t_id="21" sentence="2" number="11">''</token>
<token t_id="22" sentence="2" number="12">(</token><token t_id="23" sentence="2" number="13">AP</token>
<token t_id="24" sentence="2" number="14">)</token><token t_id="25" sentence="2" number="15">.</token>
<Markables/></Document>
"""
ECB = PLUS.replace("1_1ecbplus.xml", "1_2ecb.xml").replace(">http<", ">Reid<", 1)


def test_an_ecbplus_file_gives_address_title_and_running_text(tmp_path):
    path = tmp_path / "1_1ecbplus.xml"
    path.write_text(PLUS, encoding="utf-8")
    art = parse(str(path))
    assert (art.key, art.topic, art.event) == ("1_1ecbplus", 1, "1ecbplus")
    assert art.url == "http://example.com"
    assert art.title == "Lohan checks into rehab"
    assert art.body == "Lohan's rep said: \"a 90-day stay\" (AP)."


def test_an_ecb_file_has_no_title_and_the_folder_gives_both_parts_of_a_topic(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "1_1ecbplus.xml").write_text(PLUS, encoding="utf-8")
    (tmp_path / "1" / "1_2ecb.xml").write_text(ECB, encoding="utf-8")
    found = {a.key: a for a in load(str(tmp_path))}
    assert set(found) == {"1_1ecbplus", "1_2ecb"}
    assert found["1_2ecb"].title == "" and found["1_2ecb"].url == ""
    assert found["1_2ecb"].body.startswith("Reid: / / example.com\nLohan checks into rehab")
    assert found["1_2ecb"].event != found["1_1ecbplus"].event and found["1_2ecb"].topic == 1


def test_an_empty_folder_and_a_foreign_file_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="no ECB\\+ article files"):
        load(str(tmp_path))
    other = tmp_path / "notes.xml"
    other.write_text(PLUS, encoding="utf-8")
    with pytest.raises(ValueError, match="not an ECB\\+ article file"):
        parse(str(other))


def test_dashes_between_words_stay_dashes_and_hyphenated_words_join():
    assert detokenize(["Reid", "-", "the", "star"]) == "Reid-the star"
    assert detokenize(["Malibu", "-", "The", "facility"]) == "Malibu - The facility"
    assert detokenize(["court", "-", "mandated"]) == "court-mandated"


def test_hard_merged_counts_only_pairs_of_one_topics_two_events():
    arts = [parse_like(k, t, e) for k, t, e in
            [("a", 1, "1ecb"), ("b", 1, "1ecb"), ("c", 1, "1ecbplus"), ("d", 2, "2ecb"), ("e", 3, "3ecb")]]
    everything = np.zeros(5, dtype=int)
    assert hard_merged(arts, everything) == 2  # a~c, b~c; d and e are other topics, not hard negatives
    assert hard_merged(arts, np.array([0, 0, 1, 0, 0])) == 0


def test_the_benches_assignment_joins_the_best_link_and_merges_only_strong_bridges():
    # 0~2 at 0.7 and 1~2 at 0.9: story 2 joins 1's event (its best link) and leaves 0 alone;
    # at a merge threshold of 0.6 it bridges both events
    pairs = np.array([[0, 2], [1, 2]])
    values = np.array([0.7, 0.9])
    got = online(3, pairs, values, 0.6, 0.99).tolist()
    assert got[2] == got[1] != got[0]
    got = online(3, pairs, values, 0.6, 0.6).tolist()
    assert got[0] == got[1] == got[2]
    # below the threshold nothing joins
    assert len(set(online(3, pairs, values, 0.95, 0.99).tolist())) == 3


def parse_like(key: str, topic: int, event: str):
    from bench.events_ecb import Article
    return Article(key, topic, event, "", "")
