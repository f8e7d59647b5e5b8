"""Event clustering evaluation (docs/events.md): newsflow's rule against a TF-IDF
title + lede baseline, in the same run, on the same texts (bench/events_dataset.py):

* real pages of ../shared/corpus/pages, all at one hour, each its own happening (every pair
  is a hard negative; same-topic pairs are counted separately);
* the sample world (one event reported by the wire, three copies and an independent
  write-up; a follow-up two days later; a weekly round-up mentioning everything);
* hand-written same-day different happenings (two central banks, two earthquakes) and
  independent write-ups of one happening.

Clustering runs at story level, as in production: copies of one text are one story
(the dedup's job, not measured here), represented by their earliest member; stories are
taken in publication order and linked to every earlier story within the window that the
rule accepts (single link, the online assignment of newsflow.events); pairwise and
B-cubed precision/recall/F1 over stories.

    .venv/bin/python bench/events_eval.py
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter, defaultdict
from itertools import combinations

import numpy as np

from events_dataset import Item, corpus_items, handwritten_items, sample_items

from newsflow import events
from newsflow.config import Settings


def stories(items: list[Item]) -> list[Item]:
    """One item per story: its earliest member."""
    first: dict[str, Item] = {}
    for it in sorted(items, key=lambda i: (i.published_at, i.key)):
        first.setdefault(it.story, it)
    return list(first.values())


def cluster(items: list[Item], linked) -> dict[str, int]:
    """Online single link in publication order within the window (as newsflow.events)."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j in range(len(items)):
        for i in range(j):
            if abs((items[j].published_at - items[i].published_at).total_seconds()) <= 72 * 3600 and linked(i, j):
                parent[find(j)] = find(i)
    return {it.key: find(i) for i, it in enumerate(items)}


def online(n: int, pairs: np.ndarray, values: np.ndarray, threshold: float, merge_threshold: float,
           order: list[int] | None = None, merge_values: np.ndarray | None = None) -> np.ndarray:
    """The assignment as ``newsflow.events.assign`` makes it, stories arriving in ``order``
    (pairs as (earlier, later) in it): a story joins the event of its best link at or above
    ``threshold``, and merges in every other event it links to with a ``merge_values``
    (default: ``values``) at ``merge_threshold``."""
    merge_values = values if merge_values is None else merge_values
    links: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for (i, j), v, m in zip(pairs.tolist(), values.tolist(), merge_values.tolist(), strict=True):
        if v >= threshold:
            links[j].append((i, v, m))
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j in (order if order is not None else range(n)):
        found = [(find(i), i, v, m) for i, v, m in links.get(j, ())]
        if not found:
            continue
        best = max(found, key=lambda x: (x[2], -x[1]))[0]
        joined = {best} | {e for e, _, _, m in found if m >= merge_threshold}
        root = min(joined)
        for e in joined:
            parent[e] = root
        parent[j] = root
    return np.array([find(i) for i in range(n)])


def assign(items: list[Item], score, threshold: float, merge_threshold: float, merge_value) -> dict[str, int]:
    """Online in publication order within the window, as newsflow.events.assign (``online``):
    ``score(i, j)`` is the link score of the later story j to i (None: no link),
    ``merge_value(i, j)`` what a merge is judged on."""
    pairs, values, merges = [], [], []
    for j in range(len(items)):
        for i in range(j):
            if abs((items[j].published_at - items[i].published_at).total_seconds()) <= 72 * 3600:
                value = score(i, j)
                if value is not None:
                    pairs.append((i, j))
                    values.append(value)
                    merges.append(merge_value(i, j))
    got = online(len(items), np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(values), threshold,
                 merge_threshold, merge_values=np.array(merges))
    return {it.key: int(got[i]) for i, it in enumerate(items)}


def pairwise(items: list[Item], got: dict[str, int]) -> tuple[float, float, float, int]:
    tp = fp = fn = 0
    for a, b in combinations(items, 2):
        same, said = a.event == b.event, got[a.key] == got[b.key]
        tp += same and said
        fp += said and not same
        fn += same and not said
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), fp


def bcubed(items: list[Item], got: dict[str, int]) -> tuple[float, float, float]:
    by_got, by_gold = defaultdict(list), defaultdict(list)
    for it in items:
        by_got[got[it.key]].append(it)
        by_gold[it.event].append(it)
    p = sum(sum(o.event == it.event for o in by_got[got[it.key]]) / len(by_got[got[it.key]]) for it in items) / len(items)
    r = sum(sum(got[o.key] == got[it.key] for o in by_gold[it.event]) / len(by_gold[it.event]) for it in items) / len(items)
    return p, r, 2 * p * r / (p + r)


def hard_negatives(items: list[Item], got: dict[str, int]) -> tuple[int, int]:
    """Pairs of different events that share a topic (corpus groups), a day (hand-written),
    or a subject (the sample world's follow-up and round-up): (merged wrongly, total)."""
    wrong = total = 0
    for a, b in combinations(items, 2):
        if a.event == b.event:
            continue
        hard = (a.topic and a.topic == b.topic) or (a.source == b.source and a.source in ("hand", "sample"))
        if hard:
            total += 1
            wrong += got[a.key] == got[b.key]
    return wrong, total


# --- the baseline: TF-IDF cosine of title + lede --------------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tfidf_vectors(items: list[Item], lede_chars: int) -> list[dict[str, float]]:
    docs = [Counter(w.lower() for w in _TOKEN.findall(it.title + "\n" + events.lede(it.body, lede_chars))) for it in items]
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    out = []
    for d in docs:
        v = {w: (1 + math.log(c)) * math.log((1 + n) / (1 + df[w])) for w, c in d.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        out.append({w: x / norm for w, x in v.items()})
    return out


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(w, 0.0) for w, x in a.items())


def report(name: str, items: list[Item], got: dict[str, int]) -> dict:
    p, r, f, fp = pairwise(items, got)
    bp, br, bf = bcubed(items, got)
    wrong, hard = hard_negatives(items, got)
    print(f"{name:44} pairwise P {p:.3f} R {r:.3f} F1 {f:.3f} (wrong merges {fp:3d}) | "
          f"B-cubed P {bp:.3f} R {br:.3f} F1 {bf:.3f} | hard negatives merged {wrong}/{hard}")
    return {"f1": f, "fp": fp}


def main() -> int:
    settings = Settings.from_env()  # NEWSFLOW_EVENT_* settings apply: compare them here
    corpus = corpus_items()
    items = stories(sample_items() + handwritten_items() + corpus)
    items.sort(key=lambda i: (i.published_at, i.key))
    positives = sum(a.event == b.event for a, b in combinations(items, 2))
    print(f"{len(items)} stories ({len(corpus)} real pages{'' if corpus else ': corpus absent, skipped'}, "
          f"{sum(i.source == 'sample' for i in items)} sample-world, {sum(i.source == 'hand' for i in items)} "
          f"hand-written), {len(set(i.event for i in items))} events, {positives} same-event pairs\n")

    started = time.perf_counter()
    sigs = [events.signature(it.title, it.body, language=it.language, published_at=it.published_at,
                             lede_chars=settings.event_lede_chars, entity_chars=settings.event_entity_chars)
            for it in items]
    rarity = events.Rarity.of_signatures(sigs)  # every story counts as inside the window
    signals = {}

    def ours(i: int, j: int) -> float | None:
        signals[i, j] = events.compare(sigs[j], sigs[i], rarity)  # j is the new story
        return events.link_score(signals[i, j], settings) if events.same_event(signals[i, j], settings) else None

    got = assign(items, ours, settings.event_threshold, settings.event_merge_threshold,
                 lambda i, j: signals[i, j].score())
    elapsed = time.perf_counter() - started
    report(f"newsflow rule (threshold {settings.event_threshold})", items, got)

    vectors = tfidf_vectors(items, settings.event_lede_chars)
    sims = {(i, j): cosine(vectors[i], vectors[j]) for j in range(len(items)) for i in range(j)}
    best = None
    for t in [x / 100 for x in range(5, 100)]:
        res = cluster(items, lambda i, j, t=t: sims[i, j] >= t)
        p, r, f, fp = pairwise(items, res)
        if best is None or f > best[1]:
            best = (t, f)
    zero = min((t for t in [x / 100 for x in range(5, 100)]
                if pairwise(items, cluster(items, lambda i, j, t=t: sims[i, j] >= t))[3] == 0), default=0.99)
    report(f"TF-IDF title+lede, best F1 (t={best[0]:.2f})", items, cluster(items, lambda i, j: sims[i, j] >= best[0]))
    report(f"TF-IDF title+lede, no wrong merge (t={zero:.2f})", items, cluster(items, lambda i, j: sims[i, j] >= zero))

    # each signal alone, at its best threshold, for the record
    for label, value in (("lexical cosine alone", lambda s: s.lexical), ("shared entities alone", lambda s: s.entities),
                         ("shared numbers alone", lambda s: s.numbers)):
        best_signal = max(((t, pairwise(items, cluster(items, lambda i, j, t=t, value=value: value(signals[i, j]) >= t
                                                       if (i, j) in signals else False))[2])
                           for t in sorted({value(s) for s in signals.values()} - {0})), key=lambda x: x[1],
                          default=(None, 0.0))
        if best_signal[0] is not None:
            report(f"{label} (>= {best_signal[0]:.2f})", items,
                   cluster(items, lambda i, j, value=value, at=best_signal[0]: (i, j) in signals and value(signals[i, j]) >= at))
    gates = settings.replace(event_threshold=0.0)  # every condition of the rule but the threshold
    scored = [(events.link_score(sig, settings), items[i].event == items[j].event, items[i].key, items[j].key, sig)
              for (i, j), sig in signals.items() if events.same_event(sig, gates)]
    neg = max((x for x in scored if not x[1]), key=lambda x: x[0])
    pos = min((x for x in scored if x[1]), key=lambda x: x[0])
    print(f"\nmargin: lowest same-event score {pos[0]:.3f} ({pos[2][:40]} ~ {pos[3][:40]}); highest different-event "
          f"score {neg[0]:.3f} ({neg[2][:40]} ~ {neg[3][:40]}: lexical {neg[4].lexical:.2f}, "
          f"{neg[4].entities} entities, {neg[4].numbers} numbers)")
    print(f"\nsignatures + comparisons of the rule: {elapsed * 1000 / len(items):.2f} ms per story "
          f"({len(signals)} comparisons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
