"""The events rule's pure parts (newsflow.events): rarity of names, the fitted score, the
time half-life, the gates, and which events a story joins."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from newsflow import events
from newsflow.config import Settings

from bench.events_dataset import ECB, ECB_AGAIN, QUAKE_1, QUAKE_2

T = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)


def sig(title: str, body: str, hours: float = 0.0, language: str = "en") -> events.Signature:
    return events.signature(title, body, language=language, published_at=T + timedelta(hours=hours))


ECB_1, ECB_2 = sig(*ECB), sig(*ECB_AGAIN, hours=3)
QUAKE_JAPAN, QUAKE_CHILE = sig(*QUAKE_1), sig(*QUAKE_2, hours=2)
BACKGROUND = [sig(f"Council {k} debates budget", f"The council of Town{k} met on Tuesday.") for k in range(40)]


def test_a_name_few_stories_carry_is_rarer_than_one_many_carry_whatever_the_window_size():
    small = events.Rarity({"e:healdsburg": 2, "e:sonoma county": 30}, 100)
    big = events.Rarity({"e:healdsburg": 2, "e:sonoma county": 3000}, 10_000)
    for r in (small, big):
        assert 0.0 <= r.of("e:sonoma county") < r.of("e:healdsburg") <= 1.0
    assert events.Rarity({}, 10_000).of("e:x") > 0.9 and events.Rarity({"e:x": 5000}, 5000).of("e:x") == 0.0
    # a young database: a few dozen stories are read as a day of news (events.FITTED_WINDOW)
    assert events.Rarity({"e:x": 3}, 30).of("e:x") == events.Rarity({"e:x": 3}, events.FITTED_WINDOW).of("e:x")
    counted = events.Rarity.of_signatures([ECB_1, ECB_2, QUAKE_JAPAN])
    assert counted.stories == 3 and counted.counts["e:frankfurt"] == 2 and counted.counts["e:hokkaido"] == 1


def test_one_rate_decision_written_twice_is_one_event_and_two_quakes_of_one_day_are_not():
    settings = Settings()
    rarity = events.Rarity.of_signatures([ECB_1, ECB_2, QUAKE_JAPAN, QUAKE_CHILE, *BACKGROUND])
    same = events.compare(ECB_2, ECB_1, rarity)
    other = events.compare(QUAKE_CHILE, QUAKE_JAPAN, rarity)
    assert same.rarest_name > 0 and 0 < same.coverage <= 1
    assert events.same_event(same, settings), same
    assert not events.same_event(other, settings), other
    assert events.link_score(same, settings) > events.link_score(other, settings)


def test_the_link_score_halves_every_half_life_after_the_grace_and_a_zero_half_life_turns_it_off():
    def at(hours: float) -> events.Signals:
        return events.Signals(lexical=0.5, entities=2, numbers=1, hours=hours, same_language=True, rare_names=1.2,
                              rarest_name=0.8, rare_numbers=0.7, coverage=0.6)
    settings = Settings(event_grace_hours=24, event_half_life_hours=72)
    assert events.link_score(at(20), settings) == at(20).score()  # within the grace: the text alone
    assert abs(events.link_score(at(96), settings) - at(96).score() / 2) < 1e-12
    assert events.link_score(at(96), Settings(event_half_life_hours=0)) == at(96).score()


def test_the_gates_language_window_names_and_words_come_before_the_score():
    settings = Settings()
    strong = dict(lexical=0.9, entities=3, numbers=2, hours=1.0, same_language=True, rare_names=2.0,
                  rarest_name=0.9, rare_numbers=1.5, coverage=0.9)
    assert events.same_event(events.Signals(**strong), settings)
    for change in ({"same_language": False}, {"hours": settings.event_window_hours + 1}, {"entities": 0},
                   {"lexical": settings.event_min_lexical / 2}):
        assert not events.same_event(events.Signals(**{**strong, **change}), settings), change


def test_a_story_joins_its_best_links_event_and_merges_only_events_it_matches_strongly():
    # (event, story, link score, text probability)
    links = [(7, 70, 0.65, 0.7), (3, 30, 0.98, 0.995), (9, 90, 0.9, 0.992)]
    assert events.joined_events(links, 0.99) == [3, 9]  # the best (3) and the strong bridge (9), oldest first
    assert events.joined_events(links[:2], 0.99) == [3]  # 7 is matched loosely: no chaining
    assert events.joined_events(links[:2], 0.6) == [3, 7]
    # a bridge is judged on its text: a link score lowered by hours apart still merges
    assert events.joined_events([(3, 30, 0.9, 0.9), (9, 90, 0.8, 0.999)], 0.99) == [3, 9]
    assert events.joined_events([], 0.99) == []


def test_candidates_are_looked_up_by_the_keys_rare_enough_and_else_by_the_rarest():
    counts = {"e:okafor": 3, "e:iraq": 900, "n:950": 2, "e:syria": 700, "*": 16_000}
    assert events.usable_keys(["e:iraq", "e:okafor", "n:950"], counts, 300) == ["e:okafor", "n:950"]
    assert events.usable_keys(["e:iraq", "e:syria"], counts, 300) == ["e:syria"]  # all common: the rarest
    assert events.usable_keys(["e:new name"], counts, 300) == ["e:new name"]  # never counted: rare
    assert events.usable_keys([], counts, 300) == []
    rarity = events.window_rarity(counts)  # the story itself counted
    assert rarity.stories == 16_001 and rarity.counts["e:okafor"] == 4 and "*" not in rarity.counts
