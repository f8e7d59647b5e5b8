"""Near-duplicate (syndication) detection: newsflow.dedup.

Fast, offline: the texts are written here.  The last test uses the shared corpus and
is skipped when ../shared/corpus/pages is absent.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflow import dedup
from newsflow.config import Settings
from newsflow.dedup import (Assignment, Fingerprint, MemoryIndex, assign, cluster,
                            fingerprint, same_story, similarity)
from newsflow.credit import normalise_agency, wire_credit

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "pages"
S = Settings()
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# --------------------------------------------------------------------- test texts

TITLE = "Train drivers' strike halts most long-distance services across Germany"
DATELINE = "FRANKFURT, March 7 (Reuters) - "
STORY = [
    "A strike by Germany's GDL train drivers' union brought most long-distance rail "
    "services to a standstill on Thursday, stranding hundreds of thousands of commuters "
    "and forcing freight operators to reroute goods onto already congested motorways.",
    "Deutsche Bahn said it was running an emergency timetable covering roughly one in "
    "five intercity trains, mainly on the busy corridors between Berlin, Hamburg and "
    "Munich. Regional services in the eastern states of Saxony and Thuringia were hit "
    "hardest, with almost no trains leaving stations before noon.",
    "The walkout, the sixth in the current pay dispute, began at 2 a.m. for passenger "
    "services and is due to last 35 hours. Freight traffic had already been disrupted "
    "since Wednesday evening, when drivers at the state-owned railway's cargo unit "
    "downed tools.",
    "GDL leader Claus Weselsky told reporters outside Frankfurt's central station that "
    "management had left the union no choice. \"We have been at the table for months "
    "and every offer we received was designed to be rejected,\" he said, adding that "
    "further strikes could be called at short notice.",
    "At the heart of the dispute is the union's demand to cut the working week for "
    "shift workers from 38 to 35 hours without any loss of pay. Deutsche Bahn has "
    "offered a reduction to 37 hours from 2026, combined with a pay rise of 4.8 percent "
    "spread over two years.",
    "Personnel director Martin Seiler called the strike an attack on millions of "
    "passengers who depend on the railway to get to work. He said the company would ask "
    "a labour court to review whether the union had given enough notice, a challenge "
    "that failed during a previous round of walkouts in January.",
    "Business groups warned that repeated stoppages were starting to weigh on an "
    "economy that shrank slightly last year. The DIHK chambers of commerce estimated "
    "that each day of strike action costs the German economy up to 100 million euros, "
    "as factories wait for deliveries of chemicals, steel and car parts.",
    "Passenger associations urged travellers to postpone trips where possible. Tickets "
    "booked for Thursday and Friday remain valid until the end of next week, and seat "
    "reservations can be refunded free of charge, Deutsche Bahn said on its website.",
    "Transport Minister Volker Wissing again called on both sides to accept mediation. "
    "\"The country cannot afford a railway that stands still every few weeks,\" he said "
    "in a statement, while stopping short of proposing legislation that would restrict "
    "strikes in critical infrastructure.",
    "The GDL, which represents around 40,000 workers, is competing with the larger EVG "
    "rail union for members and influence, a rivalry that analysts say has made the "
    "smaller union more willing to escalate. EVG concluded its own wage deal with "
    "Deutsche Bahn last summer.",
    "Talks between the two sides broke down in early March after four weeks of "
    "confidential negotiations moderated by two former state premiers. No new date for "
    "talks has been set.",
]

# The same event written up independently by another newsroom: same people, places,
# figures and even the same quote, different wording.
INDEPENDENT = "\n\n".join([
    "Germany's rail network grinds to a halt as GDL walkout begins",
    "Millions of rail passengers in Germany faced cancelled trains and packed platforms "
    "on Thursday after members of the GDL union walked off the job for the sixth time "
    "since November.",
    "Only about a fifth of Deutsche Bahn's intercity and ICE trains were operating, the "
    "company said, as it rolled out a reduced schedule focused on connections linking "
    "Berlin with Hamburg and Munich. In Saxony and Thuringia, hardly any regional trains "
    "ran during the morning.",
    "Union chief Claus Weselsky defended the action in Frankfurt. \"We have been at the "
    "table for months and every offer we received was designed to be rejected,\" he "
    "said. He did not rule out new stoppages with little warning.",
    "The GDL wants shift workers to work 35 hours a week instead of 38 while keeping "
    "their full salaries. Management has proposed trimming the week to 37 hours in 2026 "
    "and raising wages by 4.8 percent over 24 months, which the union dismissed as "
    "insufficient.",
    "Martin Seiler, who heads human resources at the rail operator, accused the union "
    "of holding the country hostage and said lawyers were examining whether the strike "
    "notice was legal.",
    "Economists said the cumulative cost of the dispute was rising. Industry "
    "representatives put the daily damage at as much as 100 million euros, pointing to "
    "supply chains for chemicals and automotive components that rely heavily on rail "
    "freight.",
    "Volker Wissing, the federal transport minister, repeated his appeal for arbitration "
    "but said the government had no plans to change the right to strike.",
    "The stoppage for passenger trains is scheduled to end early on Friday afternoon. "
    "Customers with tickets for the affected days may use them later or claim a refund.",
])

# The next day's story: new text that reuses ONE background paragraph (STORY[4]).
FOLLOW_UP = "\n\n".join([
    "Rail strike ends, but no breakthrough in sight",
    "BERLIN, March 8 - Trains began running again across Germany on Friday afternoon as "
    "a 35-hour strike by the GDL union came to an end, but neither side signalled any "
    "willingness to move towards a compromise.",
    "Deutsche Bahn said it expected long-distance services to return to normal by "
    "Saturday morning, although some regional lines in the east would need longer "
    "because trains and crews were not where they were supposed to be.",
    STORY[4],
    "On Friday, a spokesperson for the railway said the company was prepared to resume "
    "talks \"at any time\", but only on the basis of its existing offer. The union "
    "responded that it saw no reason to return to negotiations that had already failed "
    "twice.",
    "Several regional transport associations are now calling on the federal government "
    "to appoint a mediator with binding powers, similar to the arbitration process that "
    "ended a dispute in the aviation sector last year.",
    "Commuter groups reported that many employers had allowed staff to work from home "
    "during the strike, softening its impact in big cities. In rural areas, where there "
    "are fewer alternatives to the train, local authorities organised replacement buses.",
    "Analysts at Commerzbank said the repeated walkouts were unlikely to derail the "
    "wider economy on their own, but warned that uncertainty over rail freight could "
    "prompt some companies to move shipments to road haulage permanently.",
])

COMMENT_INTRO = ("Another week, another rail strike. If you were hoping to get anywhere by "
                 "train today, here is what the wire services are reporting so far. My own "
                 "train from Leipzig was cancelled twice before eight in the morning.")
COMMENT_OUTRO = ("Stay safe out there and check the app before you leave home. We will "
                 "update this post as more details come in.")

HEADER = "The Morning Ledger | World | Business | Markets | Opinion | Subscribe | Sign in"
FOOTER = ("© 2024 The Morning Ledger. All rights reserved. Sign up for our daily briefing "
          "and get the top stories delivered to your inbox every morning. Follow us on "
          "Facebook, X and Instagram.")


def render(*parts: str) -> str:
    return "\n\n".join(parts)


WIRE = render(TITLE, DATELINE + STORY[0], *STORY[1:])  # the original, as the agency sent it
PLAIN = render(TITLE, *STORY)  # the same without the dateline


def tail_trimmed(paragraphs: list[str], fraction: float) -> list[str]:
    words = " ".join(paragraphs).split()
    keep = round(len(words) * (1 - fraction))
    out, seen = [], 0
    for p in paragraphs:
        n = len(p.split())
        if seen + n > keep:
            out.append(" ".join(p.split()[: keep - seen]))
            break
        out.append(p)
        seen += n
    return out


SWAPPED = list(STORY)
SWAPPED[2], SWAPPED[6] = SWAPPED[6], SWAPPED[2]

VARIANTS = {  # name -> (text, relation expected against WIRE as representative)
    "boilerplate": (render(HEADER, TITLE, DATELINE + STORY[0], *STORY[1:], FOOTER), "copy"),
    "headline": (render("Report: Germany's rail network paralysed by GDL strike",
                        DATELINE + STORY[0], *STORY[1:]), "copy"),
    "dateline_removed": (PLAIN, "copy"),
    "tail_trimmed": (render(TITLE, *tail_trimmed([DATELINE + STORY[0]] + STORY[1:], 0.28)),
                     "copy"),
    "paragraph_dropped": (render(TITLE, DATELINE + STORY[0], *STORY[1:5], *STORY[6:]), "copy"),
    "paragraphs_swapped": (render(TITLE, DATELINE + SWAPPED[0], *SWAPPED[1:]), "copy"),
    "editor_note_intro": (render(
        TITLE, "Editor's note: This article was first published by Reuters and is "
        "republished here as part of our content partnership. It has been lightly edited.",
        DATELINE + STORY[0], *STORY[1:]), "copy"),
    "editor_note_outro": (render(
        TITLE, DATELINE + STORY[0], *STORY[1:],
        "Editor's note: An earlier version of this story misstated the length of the "
        "strike. This version has been corrected. We regret the error."), "copy"),
    "aggregator_excerpt": (render(
        "Rail chaos again: what we know", COMMENT_INTRO, *STORY[3:7], COMMENT_OUTRO,
        "Via Reuters, NBC News & Sunday Times"), "excerpt"),
    "combined": (render(HEADER, "Germany paralysed: GDL strike halts trains",
                        "Editor's note: republished with permission from Reuters.",
                        *tail_trimmed(STORY, 0.22), FOOTER), "copy"),
}


def index_with(*texts: str) -> MemoryIndex:
    """An index with each text as its own story (ids 1..n, article ids 1..n)."""
    index = MemoryIndex()
    for n, text in enumerate(texts, start=1):
        index.add(n, n, fingerprint(text, S))
    return index


# ------------------------------------------------------------------ transformations


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_syndicated_variant_joins_the_original(name):
    text, relation = VARIANTS[name]
    ok, jaccard, containment = same_story(fingerprint(WIRE, S).shingles,
                                          fingerprint(text, S).shingles, S)
    assert ok, (name, jaccard, containment)
    result = assign(fingerprint(text, S), index_with(WIRE), S)  # LSH retrieval + verification
    assert result.story_id == 1 and result.matched_article_id == 1
    assert result.relation == relation
    assert (result.jaccard, result.containment) == pytest.approx((jaccard, containment))


def test_dateline_added_joins_the_plain_original():
    added = render(TITLE, "BERLIN, March 7 (AP) \u2014 " + STORY[0], *STORY[1:])
    result = assign(fingerprint(added, S), index_with(PLAIN), S)
    assert (result.story_id, result.relation) == (1, "copy")


def test_update_contains_the_short_first_version():
    short = render(TITLE, DATELINE + STORY[0], *STORY[1:5])  # first, shorter wire version
    result = assign(fingerprint(WIRE, S), index_with(short), S)
    assert (result.story_id, result.relation) == (1, "update")
    assert result.containment > 0.95 and result.jaccard < 0.6


def test_all_variants_form_one_story_with_the_original():
    variants = sorted(VARIANTS.items())
    docs = [("00-wire", WIRE)] + [(f"{n:02d}-{name}", text)
                                  for n, (name, (text, _)) in enumerate(variants, 1)]
    stories = cluster(docs, S)
    assert set(stories.values()) == {1}


# ------------------------------------------------------------------------ negatives


def test_independent_write_up_of_the_same_event_is_another_story():
    ok, jaccard, containment = same_story(fingerprint(WIRE, S).shingles,
                                          fingerprint(INDEPENDENT, S).shingles, S)
    assert not ok
    assert containment < 0.27 and jaccard < 0.14  # the margins seen on real copies
    assert assign(fingerprint(INDEPENDENT, S), index_with(WIRE), S).story_id is None


def test_follow_up_reusing_one_background_paragraph_is_another_story():
    ok, jaccard, containment = same_story(fingerprint(WIRE, S).shingles,
                                          fingerprint(FOLLOW_UP, S).shingles, S)
    assert not ok and containment > 0.05  # it does share the paragraph ...
    assert containment < 0.27  # ... but far from the threshold
    result = assign(fingerprint(FOLLOW_UP, S), index_with(WIRE), S)
    assert result == Assignment(None, "original", None, 0.0, 0.0)


def test_negatives_stay_apart_in_a_mixed_stream():
    docs = [("1", WIRE), ("2", INDEPENDENT), ("3", VARIANTS["boilerplate"][0]),
            ("4", FOLLOW_UP), ("5", VARIANTS["aggregator_excerpt"][0])]
    assert cluster(docs, S) == {"1": 1, "2": 2, "3": 1, "4": 3, "5": 1}


# ------------------------------------------------------------------------- chaining


def pseudo_paragraphs(n: int, words: int = 45, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ner", "tu", "sa", "vel", "dor", "pi", "an", "reth", "ul"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3)))
             for _ in range(600)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) + "." for _ in range(n)]


def test_no_chaining_through_a_middle_member():
    p = pseudo_paragraphs(10)
    a, b, c = render(*p[0:6]), render(*p[2:8]), render(*p[4:10])
    fa, fb, fc = (fingerprint(t, S) for t in (a, b, c))
    assert same_story(fa.shingles, fb.shingles, S)[0]  # A ~ B
    assert same_story(fb.shingles, fc.shingles, S)[0]  # B ~ C
    assert not same_story(fa.shingles, fc.shingles, S)[0]  # A !~ C
    index = MemoryIndex()
    index.add(1, 1, fa)
    assert assign(fb, index, S).story_id == 1
    index.add(2, 1, fb)
    assert 2 in {m.article_id for m in index.candidates(fc.bands)}  # C does find B ...
    assert assign(fc, index, S).story_id is None  # ... but fails A, the representative
    assert cluster([("a", a), ("b", b), ("c", c)], S) == {"a": 1, "b": 1, "c": 2}


def test_best_story_wins_and_ties_go_to_the_smallest_story_id():
    index = MemoryIndex()
    index.add(10, 7, fingerprint(WIRE, S))
    index.add(11, 3, fingerprint(WIRE, S))  # same text in another story: a tie
    index.add(12, 5, fingerprint(render(*STORY[:4]), S))  # passes, lower score
    result = assign(fingerprint(WIRE, S), index, S)
    assert (result.story_id, result.matched_article_id) == (3, 11)
    assert result.jaccard == result.containment == 1.0


def test_story_whose_representative_is_gone_is_not_joined():
    class Expired(MemoryIndex):
        def representative(self, story_id):
            raise KeyError(story_id)

    index = Expired()
    index.add(1, 1, fingerprint(WIRE, S))
    assert assign(fingerprint(PLAIN, S), index, S).story_id is None


def test_representative_is_the_first_member():
    index = MemoryIndex()
    first, second = fingerprint(WIRE, S), fingerprint(PLAIN, S)
    index.add(1, 1, first)
    index.add(2, 1, second)
    assert index.representative(1).article_id == 1
    assert index.representative(1).shingles == first.shingles
    with pytest.raises(ValueError):
        index.add(2, 1, second)


# ---------------------------------------------------------------------- determinism


def test_cluster_is_independent_of_input_order():
    docs = [("2024-03-07T08:00", WIRE), ("2024-03-07T09:10", INDEPENDENT),
            ("2024-03-08T15:00", FOLLOW_UP)]
    docs += [(f"2024-03-07T{10 + n:02d}:00", text)
             for n, (_, (text, _)) in enumerate(sorted(VARIANTS.items()))]
    p = pseudo_paragraphs(10)
    docs += [("2024-03-06T01", render(*p[0:6])), ("2024-03-06T02", render(*p[2:8])),
             ("2024-03-06T03", render(*p[4:10]))]
    expected = cluster(docs, S)
    assert sorted(set(expected.values())) == list(range(1, len(set(expected.values())) + 1))
    for seed in range(5):
        shuffled = list(docs)
        random.Random(seed).shuffle(shuffled)
        assert cluster(shuffled, S) == expected
    with pytest.raises(ValueError):
        cluster(docs + [docs[0]], S)


# ---------------------------------------------------------------------- fingerprint


def check_int64(values):
    assert all(isinstance(v, int) and INT64_MIN <= v <= INT64_MAX for v in values)


def test_fingerprint_shape_and_stability():
    fp = fingerprint(WIRE, S)
    assert fp == fingerprint(WIRE, S)
    assert isinstance(fp, Fingerprint)
    assert list(fp.shingles) == sorted(set(fp.shingles))
    assert len(fp.minhash) == S.dedup_num_perm and len(fp.bands) == S.dedup_bands
    check_int64(fp.shingles)
    check_int64(fp.minhash)
    check_int64(fp.bands)
    assert all(0 <= v < (1 << 61) - 1 for v in fp.minhash)
    # case, unicode forms and whitespace do not change the fingerprint
    assert fingerprint(WIRE.upper().replace(" ", "  \n"), S) == fp


def test_fingerprint_is_stable_across_processes():
    code = ("import json, sys; from newsflow.dedup import fingerprint; "
            "from newsflow.config import Settings; "
            "f = fingerprint(sys.stdin.read(), Settings()); "
            "print(json.dumps([f.shingles, f.minhash, f.bands]))")
    env = dict(os.environ, PYTHONHASHSEED="12345",
               PYTHONPATH=str(REPO / "plugins") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], input=WIRE, capture_output=True,
                         text=True, env=env, check=True).stdout
    fp = fingerprint(WIRE, S)
    assert json.loads(out) == [list(fp.shingles), list(fp.minhash), list(fp.bands)]


def test_fingerprint_golden_values():
    # Stored signatures depend on these: a change here invalidates the dedup index, and
    # must come with a new models.SIGNATURE_SCHEME (signatures are then computed again).
    fp = fingerprint("The quick brown fox jumps over the lazy dog", S)
    assert len(fp.shingles) == 5
    assert fp.shingles[0] == -4485731263546850348
    assert fp.minhash[:3] == (970976071613450407, 33697672329460385, 695804808773417214)
    assert fp.bands[:2] == (-4386528899060104414, 1264631784027713741)
    assert fp.passages == ()  # too short for one passage gram
    assert fingerprint(" ".join(f"w{i}" for i in range(100)), S).passages == (315220675663569224,
                                                                              1233033471083393462)
    # scheme 3: the same MinHash values and bands as 1 and 2; the row holds its passage sketch
    assert dedup.SIGNATURE_SCHEME == 3


def test_minhash_matches_exact_universal_hashing():
    p = (1 << 61) - 1
    a_col, a_hi, a_hi2, a_lo, b = dedup._coefficients(16)
    a = [int(v) for v in a_col[:, 0]]
    assert a == [(int(hi) << 31) | int(lo) for hi, lo in zip(a_hi[:, 0], a_lo[:, 0], strict=True)]
    assert (a_hi2 == 2 * a_hi).all()
    shingles = (-(1 << 63), -1, 0, 1, 12345678901234567, INT64_MAX) + tuple(range(300))  # > one block
    expected = [min((a[i] * (x % (1 << 64) % p) + int(b[i, 0])) % p for x in shingles)
                for i in range(16)]
    assert list(dedup.minhash(shingles, 16)) == expected


def test_minhash_matches_exact_universal_hashing_on_random_sets():
    # values near every limb boundary: the 31-bit split of a and x, the 2**61 folds
    import random

    p = (1 << 61) - 1
    a_col, _, _, _, b = dedup._coefficients(128)
    rng = random.Random(7)
    shingles = tuple(rng.randint(-(1 << 63), INT64_MAX) for _ in range(600)) + (
        p - 1, p, p + 1, (1 << 62) - 1, (1 << 31) - 1, 1 << 31, -(1 << 62))
    expected = [min((int(a_col[i, 0]) * (x % (1 << 64) % p) + int(b[i, 0])) % p for x in shingles)
                for i in range(128)]
    assert list(dedup.minhash(shingles, 128)) == expected


def test_minhash_agreement_estimates_jaccard():
    p = pseudo_paragraphs(12)
    x, y = fingerprint(render(*p[:8]), S), fingerprint(render(*p[4:]), S)
    jaccard, _ = similarity(x.shingles, y.shingles)
    agree = sum(u == v for u, v in zip(x.minhash, y.minhash, strict=True)) / S.dedup_num_perm
    assert abs(agree - jaccard) < 0.15


def test_band_layout_must_fit_the_signature():
    with pytest.raises(ValueError):
        fingerprint(WIRE, S.replace(dedup_bands=65, dedup_rows=2))
    fp = fingerprint(WIRE, S.replace(dedup_bands=42, dedup_rows=3))
    assert len(fp.bands) == 42


# ------------------------------------------------------------------ small and empty


def test_similarity_measures():
    assert similarity([1, 2, 3, 4], [3, 4, 5, 6]) == (2 / 6, 0.5)
    assert similarity([1, 2], [1, 2, 3, 4]) == (0.5, 1.0)
    assert similarity([], [1]) == (0.0, 0.0)


def test_tiny_texts_match_only_when_nearly_identical():
    short = "Police closed the bridge after the accident on Monday night."
    fa, fb = fingerprint(short, S), fingerprint(short + " More soon.", S)
    assert len(fa.shingles) < S.dedup_min_shingles
    assert not same_story(fa.shingles, fb.shingles, S)[0]  # contained, but tiny
    assert same_story(fa.shingles, fingerprint(short.upper(), S).shingles, S)[0]
    # a tiny text inside a long article is not "the same story" either
    assert not same_story(fingerprint(STORY[3][:80], S).shingles,
                          fingerprint(WIRE, S).shingles, S)[0]


def test_empty_text_never_matches():
    empty = fingerprint("  ...  ", S)
    assert empty.shingles == () and len(empty.bands) == S.dedup_bands
    assert same_story((), (), S)[0] is False
    assert assign(empty, index_with("", "---"), S).story_id is None
    assert len(fingerprint("two words", S).shingles) == 1


def test_cjk_text_is_tokenised_per_character():
    assert dedup.tokens("北京今天下雨 Rain") == ["北", "京", "今", "天", "下", "雨", "rain"]


# ------------------------------------------------------------------------ wire credit


@pytest.mark.parametrize("text, agency", [
    ("BAGHDAD, Nov 20 (Reuters) - Iraqi officials said on Monday ...", "Reuters"),
    ("WASHINGTON (AP) \u2014 The Senate voted ...", "AP"),
    ("PARIS (AFP) - French unions called ...", "AFP"),
    ("Berlin (dpa/lno) - Der Senat hat ...", "dpa"),
    ("WASHINGTON (CNN) \u2014 The White House ...", "CNN"),
    ("LONDON (Thomson Reuters) -- Shares fell ...", "Reuters"),
    ("Rail chaos again\n\nSome commentary.\n\nVia Reuters, NBC News & Sunday Times", "Reuters"),
    ("Quote of the day.\nvia The Associated Press and AFP", "AP"),
    ("Some story.\nSource: Agence France-Presse", "AFP"),
    ("Some story.\nVia The Verge", "The Verge"),
    ("The minister resigned. Reuters contributed to this report.", "Reuters"),
    ("Associated Press writer Jane Doe contributed to this report.", "AP"),
    ("Additional reporting by Agence France-Presse; editing by John Smith", "AFP"),
    ("Copyright 2024 The Associated Press. All rights reserved.", "AP"),
    ("Ein Bericht. Mit Material von dpa", "dpa"),
    ("Editor's note: This article was first published by Reuters.", "Reuters"),
    ("NEW YORK (AP) \u2014 First.\n\nReuters contributed to this report.", "AP"),
])
def test_wire_credit_patterns(text, agency):
    assert wire_credit(text) == agency


@pytest.mark.parametrize("text", [
    "Independent reporting by our own staff in Frankfurt.",
    "Sources say the deal is near.\nSource code is on GitHub, via a mirror.",
    "Via email you can reach the newsroom.",
    "The film Parasite (2019) - a review",
    "Body Condition Score (BCS)- Beurteilung der Kühe",
    "Jane Doe contributed to this report.",
    "pa and tt are words, not agencies; the ap is an app.",
    "",
])
def test_wire_credit_none(text):
    assert wire_credit(text) is None


def test_agency_names_are_normalised():
    assert normalise_agency("Associated Press") == "AP"
    assert normalise_agency("agence france-presse") == "AFP"
    assert normalise_agency("Deutsche Presse-Agentur") == "dpa"
    assert normalise_agency(" NBC News. ") == "NBC News"
    assert wire_credit(VARIANTS["aggregator_excerpt"][0]) == "Reuters"
    assert wire_credit(WIRE) == "Reuters" and wire_credit(PLAIN) is None


# ------------------------------------------------------------------------ the corpus


def test_corpus_subset_has_no_false_merges():
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not present at {CORPUS}")
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import dedup_eval as ev
    finally:
        sys.path.remove(str(REPO / "bench"))
    bases = {"reuters.com.parasite", "theguardian.com.academics", "dw.com.colonial",
             "dw.com.uncork", "vice.com.amazon", "salon.com.emissions",
             "threatpost.com.android", "wikimediafoundation.org.turkey",
             "heise.de.lithium", "sueddeutsche.de.flixtrain"}
    pools = {"gregoryszorc.com.python3", "ndr.de.podcastcoronavirus140",
             "laviedesidees.fr.evaluation", "pluralsight.com.python"}
    pages = ev.load_pages(CORPUS, names=bases | pools)
    assert len(pages) == len(bases | pools)
    items, _ = ev.build_dataset(pages, seed=1)
    stories = cluster(((it.key, it.text) for it in items), S)
    pred = [stories[it.key] for it in items]
    scores = ev.pair_scores([it.cluster for it in items], pred)
    assert ev.false_merges(items, pred)["total"] == 0
    assert scores["f1"] >= 0.97, scores


# ------------------------------------------------------- credited excerpts (issue 16)

# An aggregator's post: its own commentary (more of it than the usual intro and outro),
# three quoted paragraphs, a credit line. Its containment in the wire story is below the
# copy threshold; the credit and the verbatim passage make it an excerpt.
COMMENTARY = INDEPENDENT.split("\n\n")[1:4]
CREDITED_EXCERPT = render("Rail chaos, day one", COMMENT_INTRO, *COMMENTARY[:2], *STORY[1:4], COMMENT_OUTRO,
                          COMMENTARY[2], "Via Reuters, NBC News & Sunday Times")


def test_a_credited_excerpt_below_the_copy_threshold_joins_on_its_quoted_passage():
    fp = fingerprint(CREDITED_EXCERPT, S)
    jaccard, containment = similarity(fp.shingles, fingerprint(WIRE, S).shingles)
    assert S.dedup_quote_containment <= containment < S.dedup_containment  # not a copy by overlap
    assert wire_credit(CREDITED_EXCERPT) == "Reuters"
    assert assign(fp, index_with(WIRE), S).story_id is None  # without its credit: apart
    result = assign(fp, index_with(WIRE), S, credit=dedup.quote_credit(CREDITED_EXCERPT))
    assert (result.story_id, result.relation, result.signal) == (1, "excerpt", "credited_quote")
    assert result.signal_value >= S.dedup_quote_run  # the evidence: the quoted run, in shingles
    assert (result.jaccard, result.containment) == pytest.approx((jaccard, containment))
    assert cluster([("1-wire", WIRE), ("2-post", CREDITED_EXCERPT)], S) == {"1-wire": 1, "2-post": 1}


def test_a_credited_follow_up_reusing_one_background_paragraph_stays_apart():
    credited = FOLLOW_UP.replace("BERLIN, March 8 - ", "BERLIN, March 8 (Reuters) - ")
    assert wire_credit(credited) == "Reuters"
    fp = fingerprint(credited, S)
    assert dedup.quoted_run(fp.sequence, set(fingerprint(WIRE, S).shingles)) >= 20  # it quotes one paragraph
    assert dedup.quote_credit(credited) == dedup.QuoteCredit("Reuters", (8, 12))  # its own byline, under the headline
    assert assign(fp, index_with(WIRE), S, credit=dedup.quote_credit(credited)).story_id is None
    assert cluster([("1-wire", WIRE), ("2-next-day", credited)], S) == {"1-wire": 1, "2-next-day": 2}


def test_a_dateline_credits_a_quotation_that_begins_at_it():
    # an aggregator pastes the wire's first paragraphs, dateline and all, under its own intro
    pasted = render("Rail chaos, day one", COMMENT_INTRO, *COMMENTARY[:2], DATELINE + STORY[0],
                    *STORY[1:3], COMMENT_OUTRO, COMMENTARY[2])
    quote = dedup.quote_credit(pasted)
    assert quote.name == "Reuters" and quote.anchor[0] > 50
    fp, wire = fingerprint(pasted, S), fingerprint(WIRE, S)
    assert S.dedup_quote_containment <= similarity(fp.shingles, wire.shingles)[1] < S.dedup_containment
    result = assign(fp, index_with(WIRE), S, credit=quote)
    assert (result.story_id, result.relation, result.signal) == (1, "excerpt", "credited_quote")


def test_scattered_overlap_is_not_a_quoted_passage():
    words = " ".join(STORY).split()
    scattered = " ".join(w + (f" x{i}" if i % 7 == 6 else "") for i, w in enumerate(words))  # a word every 7
    fp, wire = fingerprint(scattered, S), fingerprint(WIRE, S)
    _, containment = similarity(fp.shingles, wire.shingles)
    assert containment >= S.dedup_quote_containment  # plenty of overlap ...
    assert dedup.quoted_run(fp.sequence, set(wire.shingles)) < 5  # ... but no passage
    assert dedup.quoted_run(fingerprint(WIRE, S).sequence, set(wire.shingles)) == len(wire.sequence)


def test_copies_keep_the_threshold_that_decided_as_evidence():
    result = assign(fingerprint(VARIANTS["headline"][0], S), index_with(WIRE), S)
    assert (result.signal, result.signal_value) == ("containment", pytest.approx(result.containment))


def test_according_to_credits_a_known_agency_only():
    assert wire_credit("Talks failed on Friday, according to Reuters, after ten hours.") == "Reuters"
    assert wire_credit("Prices rose, according to an Associated Press tally of the figures.") == "AP"
    assert wire_credit("Prices rose, according to the city's own figures.") is None
    assert wire_credit("According to my neighbour, the trains were late.") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc XYZ äöüß é,.-_'\n\t 0123") + ["日", "本", "カ", "ナ", "한", "ﬁ", "Ⅻ"])))
def test_the_fast_tokenizer_path_gives_the_same_tokens(text):
    import unicodedata

    assert dedup.tokens(text) == dedup._TOKEN_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def test_a_via_line_naming_an_agency_in_its_own_lower_case_spelling_counts():
    assert wire_credit("Die Empfänger müssen warten.\n\nVia dpa") == "dpa"
    assert wire_credit("Die Empfänger müssen warten.\n\nvia email to the editors") is None
