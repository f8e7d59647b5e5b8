"""Citation precision on a labelled sample (docs/events.md).

Runs ``newsflow.citations.extract`` over the real pages of ../shared/corpus/pages and
the sample world (bench/events_dataset.py), prints every citation found with its
context, and scores it against the labels below: for each (page, cited name, kind) the
verdict of a reader who checked the sentence (True: the text attributes information to
that outlet). A citation without a label is reported as unlabelled, never counted as
right. Also checks the expected citations (recall on the labelled positives).

    .venv/bin/python bench/citations_eval.py
"""

from __future__ import annotations

import sys

from events_dataset import SAMPLE_PUBLISHERS, corpus_items, sample_items

from newsflow.citations import extract

_W = "wire/world/middle-east/"
# Every attribution a reader finds in these texts, checked sentence by sentence in the
# 102 places where a trigger word occurs ("according to", "told", "reported", "via",
# "laut", "selon", "berichtet", "Quelle"): (page, cited name, kind). Misses are listed.
EXPECTED: set[tuple[str, str, str]] = {
    (_W + "coalition-says-fewer-than-1000-islamic-state-fighters-remain-2026-11-20.html", "Reuters", "dateline"),
    (_W + "coalition-jets-strike-islamic-state-hideouts-in-syrias-deir-el-zor-2026-11-22.html", "Reuters", "dateline"),
    ("wire/markets/bank-of-canada-cuts-key-rate-to-2-signals-end-of-easing-2026-11-18.html", "Reuters", "dateline"),
    ("nbc/world/isis-fewer-than-1000-fighters-iraq-syria-coalition-rcna184230.html", "Reuters", "credit"),
    ("nbc/business/economy/bank-canada-cuts-interest-rates-tariffs-exports-rcna183912.html", "Reuters", "credit"),
    ("times/article/islamic-state-reduced-to-a-few-hundred-fighters-k7w2q9dxn.html", "Reuters", "credit"),
    ("times/article/islamic-state-reduced-to-a-few-hundred-fighters-k7w2q9dxn.html", "Reuters", "dateline"),
    ("digest/posts/2026/11/caliphate-last-thousand.html", "Reuters", "via"),
    ("digest/posts/2026/11/caliphate-last-thousand.html", "NBC News", "via"),
    ("digest/posts/2026/11/caliphate-last-thousand.html", "Sunday Times", "via"),
    ("boingboing.net.millenials", "Geeks Are Sexy", "via"),        # "(via Geeks Are Sexy)": a blog, credited
    ("dw.com.colonial", "DW", "told"),                             # "Tahir Della told DW"
    ("heise.de.lithium", "Technology Review", "reports"),          # "Das berichtet das Magazin Technology Review"
    ("reuters.com.parasite", "Reuters", "dateline"),
    ("rnz.de.witzel", "dpa", "dateline"),                          # "Frankfurt/Main (dpa) -"
    ("vice.com.amazon", "Euro News", "reports"),                   # "reported Euro News"
    ("faz.net.streaming", "F.A.S", "reports"),                     # "hatte gerade die F.A.S. berichtet"
    ("kulu-media.com.meta-outage", "MySA", "according_to"),        # "According to reports cited by MySA"
}
# (page, cited name as extracted, kind) -> the text does attribute to that outlet
LABELS: dict[tuple[str, str, str], bool] = {key: True for key in EXPECTED}
LABELS.update({
    ("landwirt.com.sensortechnik", "BCS", "dateline"): False,     # "Body Condition Score (BCS)- ..." (a list item)
})


def main() -> int:
    items = sample_items() + corpus_items()
    found = []
    for item in items:
        for c in extract(item.body, SAMPLE_PUBLISHERS):
            context = item.body[max(0, c.position - 60): c.position + 60].replace("\n", " | ")
            found.append(((item.key, c.name, c.kind), c.publisher, context))
    right = wrong = unlabelled = 0
    for key, publisher, context in found:
        verdict = LABELS.get(key)
        mark = {True: "ok", False: "WRONG", None: "unlabelled"}[verdict]
        right += verdict is True
        wrong += verdict is False
        unlabelled += verdict is None
        print(f"{mark:10} {key[0][:48]:48} {key[1]!r:24} {key[2]:12} -> {publisher!s:18} …{context}…")
    keys = {k for k, _, _ in found}
    missed = sorted(EXPECTED - keys)
    labelled = right + wrong
    print(f"\n{len(items)} texts, {len(found)} citations: {right} right, {wrong} wrong, {unlabelled} unlabelled; "
          f"precision {right / labelled if labelled else float('nan'):.3f} on the labelled ones; "
          f"expected citations found {len(EXPECTED) - len(missed)}/{len(EXPECTED)}")
    for m in missed:
        print("missed:", m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
