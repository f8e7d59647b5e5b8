"""Event clustering on real labelled headlines: the UCI News Aggregator dataset
(Gasparetti, 2014/2016; real headlines, publishers and Google News STORY cluster ids),
newsflow's rule against the TF-IDF baseline in the same run (docs/events.md).

The dataset is not in the repository and never written into it. Get a copy and give its
path on the command line or in ``NEWSFLOW_UCI_NEWS``:

* the full set (422,419 headlines, March-August 2014): https://archive.ics.uci.edu/dataset/359
  (``newsCorpora.csv``, tab-separated, no header), or
* the 6,366-headline slice used in docs/events.md (the first rows, 10-12 March 2014, CSV with
  the header ID,TITLE,URL,PUBLISHER,CATEGORY,STORY,HOSTNAME,TIMESTAMP):
  ``uci-news-aggregator.csv`` of https://github.com/pratikaher88/IPythonNotebooks
  (sha256 a5e7e39c...b5d044a7).

    .venv/bin/python bench/events_uci.py /tmp/uci-news-aggregator.csv [--limit N]

What it measures, and what it cannot:

* **titles only**: the set has no article texts, so the lede and the entities and numbers of
  the first paragraphs — most of the rule's evidence — are absent; both methods see titles;
* the timestamps are the aggregator's crawl times (one cluster is crawled within seconds),
  not publication times: time cannot separate anything here and is left out (every pair is
  inside the window);
* Google News STORY clusters are looser than newsflow's "same happening": a cluster holds the
  happening, its reactions, analyses, follow-ups and same-topic pieces ("Titanfall" reviews
  and a Toys R Us offer for the game; China's yuan, copper prices and Hong Kong residency).
  A "wrong merge" against them may be the same happening split by Google, and a "miss" is
  often a different happening. The hand-checked strict subset (``STRICT`` below) is the
  fairer measurement; both are reported.

Identical titles (case-folded) are one story, as copies are for the dedup; pairwise and
B-cubed precision/recall/F1 over stories, single link (connected components of the
accepted pairs, as the online assignment makes them).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent))
from events_dataset import REPO  # noqa: E402,F401  (puts plugins/ on sys.path)
from events_eval import online, tfidf_vectors  # noqa: E402  (the same baseline and assignment as the main evaluation)

from newsflow import events  # noqa: E402
from newsflow.config import Settings  # noqa: E402

# Hand-checked strict subset: STORY clusters of the 6,366-row slice whose headlines were read
# one by one, with the IDs of those that are NOT reports of the cluster's one happening
# (reactions, analyses, other happenings). The rest of each cluster is one happening.
# 10 clusters, 116 headlines read, 107 kept. Only clusters that are one happening were taken
# (topic clusters such as medical marijuana, Herbalife/Ackman or Pimco were left out).
STRICT: dict[str, tuple[str, frozenset[int]]] = {
    "ddUyU0VZz0BRneMioxUPQVP6sIxvM": ("Fed's Plosser on tapering and the weather", frozenset({3})),  # market report
    "dB-tpHT6UcWshiMWbl2RE5KjRPsJM": ("SEC's amnesty offer to muni bond issuers", frozenset({944})),  # other rules
    "d1F7w-23076umeMGNNzHXLe0lzLzM": ("Honda makes Acura a stand-alone division", frozenset({1236})),  # analysis
    "djP4U3GpYletnEMmwOgVtt1u6VbBM": ("Jaguars to install the largest HD LED screens", frozenset({1279})),
    "dYRPyd6HqIPIS_MW7vO0rcnAOciKM": ("tree-ring study: wet climate helped Genghis Khan", frozenset({1130})),
    "dy8fgRqV5mIcW_Ml8X76fB-sGQstM": ("Bon-Ton's fourth quarter and CEO leaving (one release)", frozenset({4296})),
    "daD7c9KSNVtBGFMnxXoWeIeZAzx3M": ("SAC Capital renamed Point72", frozenset()),
    "drX6899CKARDAkMFL2AtHBdOsDeFM": ("Google launches add-ons for Docs and Sheets", frozenset({5820, 5821})),
    "ddMsNh_ZO_dFyUMVRJr3gBnMqYMjM": ("study: 'death stars' in Orion destroy protoplanets", frozenset()),
    "dEMAAHOiiULKoTMlQ5PeakjabUaYM": ("Metro-North worker killed by a train in East Harlem", frozenset()),
}


@dataclass(frozen=True)
class Headline:
    id: int
    title: str
    publisher: str
    story: str            # Google News cluster id: the label
    published_at: datetime
    body: str = ""        # absent in this set (titles only)


def load(path: str) -> list[Headline]:
    """The header CSV slice or the full tab-separated newsCorpora.csv."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        first = f.readline()
        f.seek(0)
        if first.startswith("ID,TITLE"):
            rows = ((r["ID"], r["TITLE"], r["PUBLISHER"], r["STORY"], r["TIMESTAMP"]) for r in csv.DictReader(f))
        else:
            rows = ((r[0], r[1], r[3], r[5], r[7]) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        for id_, title, publisher, story, ts in rows:
            if not (story and ts):  # the slice's last row is cut off
                continue
            out.append(Headline(int(id_), title, publisher or "", story,
                                datetime.fromtimestamp(int(ts) / 1000, tz=timezone.utc)))
    return out


def stories(rows: list[Headline]) -> list[Headline]:
    """Identical titles (case-folded) are one story: the earliest."""
    first: dict[str, Headline] = {}
    for h in sorted(rows, key=lambda h: (h.published_at, h.id)):
        first.setdefault(" ".join(h.title.lower().split()), h)
    return sorted(first.values(), key=lambda h: (h.published_at, h.id))


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Single link: the connected components of the accepted pairs (an (m, 2) array)."""
    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def scores(gold: list[str], got: np.ndarray) -> dict:
    """Pairwise and B-cubed P/R/F1 from the contingency table (no pair enumeration)."""
    cells, by_got, by_gold = Counter(zip(got.tolist(), gold, strict=True)), Counter(got.tolist()), Counter(gold)

    def pairs(c: int) -> int:
        return c * (c - 1) // 2

    tp = sum(pairs(c) for c in cells.values())
    said, true = sum(pairs(c) for c in by_got.values()), sum(pairs(c) for c in by_gold.values())
    p, r = (tp / said if said else 1.0), (tp / true if true else 1.0)
    n = len(gold)
    bp = sum(c * c / by_got[g] for (g, _), c in cells.items()) / n
    br = sum(c * c / by_gold[t] for (_, t), c in cells.items()) / n
    return {"p": p, "r": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "wrong": said - tp,
            "bp": bp, "br": br, "bf1": 2 * bp * br / (bp + br) if bp + br else 0.0,
            "events": len(by_got)}


def show(name: str, s: dict) -> None:
    print(f"{name:46} pairwise P {s['p']:.3f} R {s['r']:.3f} F1 {s['f1']:.3f} (wrong pairs {s['wrong']:6d}) | "
          f"B-cubed P {s['bp']:.3f} R {s['br']:.3f} F1 {s['bf1']:.3f} | {s['events']} events")


def signatures(items, settings: Settings) -> list[events.Signature]:
    """Each item's signature as production computes it (English: these sets are)."""
    return [events.signature(h.title, h.body, language="en", published_at=h.published_at,
                             lede_chars=settings.event_lede_chars, entity_chars=settings.event_entity_chars)
            for h in items]


def rule_pairs(items, settings: Settings,
               order: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair the rule could accept (it needs shared entities, so candidates come from an
    entity index: exact, no pair is skipped), as (earlier, later) in arrival ``order``
    (default: list order), with the rule's probability seen from the later story (the new
    one: its ``coverage`` side), and the text's probability (merges are judged on it); pairs
    failing the rule's other conditions get -1. The rarity of names is counted over all the
    items (every one inside the window here)."""
    sigs = signatures(items, settings)
    rarity = events.Rarity.of_signatures(sigs)
    rank = {i: r for r, i in enumerate(order if order is not None else range(len(items)))}
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sigs):
        for e in s.entities:
            index[e].append(i)
    shared: Counter = Counter()
    for members in index.values():
        shared.update(combinations(members, 2))
    pairs, values, probabilities = [], [], []
    for (i, j), k in shared.items():
        if k < settings.event_min_entities:
            continue
        first, later = (i, j) if rank[i] < rank[j] else (j, i)
        sig = events.compare(sigs[later], sigs[first], rarity)
        accepted = events.same_event(sig, settings)
        pairs.append((first, later))
        values.append(events.link_score(sig, settings) if accepted else -1.0)
        probabilities.append(sig.score() if accepted else -1.0)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(values), np.array(probabilities)


def tfidf_pairs(items: list[Headline], lede_chars: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs with TF-IDF cosine >= floor (block-wise sparse products)."""
    vectors = tfidf_vectors(items, lede_chars)
    vocab = {w: k for k, w in enumerate(sorted({w for v in vectors for w in v}))}
    rows, cols, vals = [], [], []
    for i, v in enumerate(vectors):
        for w, x in v.items():
            rows.append(i)
            cols.append(vocab[w])
            vals.append(x)
    m = csr_matrix((vals, (rows, cols)), shape=(len(vectors), len(vocab)))
    out_pairs, out_vals = [], []
    for start in range(0, m.shape[0], 1000):
        block = (m[start:start + 1000] @ m.T).tocoo()
        keep = (block.data >= floor) & (block.row + start < block.col)
        out_pairs.append(np.stack([block.row[keep] + start, block.col[keep]], axis=1))
        out_vals.append(block.data[keep])
    return np.concatenate(out_pairs), np.concatenate(out_vals)


def sweep(name: str, n: int, gold: list[str], pairs: np.ndarray, values: np.ndarray,
          thresholds: list[float], chosen: float | None = None) -> None:
    results = [(t, scores(gold, components(n, pairs[values >= t]))) for t in thresholds]
    best = max(results, key=lambda x: x[1]["f1"])
    if chosen is not None:
        show(f"{name} (t={chosen:.2f}, the setting)", scores(gold, components(n, pairs[values >= chosen])))
    show(f"{name} best F1 (t={best[0]:.2f})", best[1])
    clean = [x for x in results if x[1]["wrong"] == 0]
    if clean:
        show(f"{name} no wrong pair (t={clean[0][0]:.2f})", clean[0][1])
    for t, s in results:
        if chosen is None and t in (0.3, 0.5, 0.7):
            show(f"{name} t={t:.2f}", s)


def run(label: str, items: list[Headline], settings: Settings) -> None:
    gold = [h.story for h in items]
    n = len(items)
    positives = sum(c * (c - 1) // 2 for c in Counter(gold).values())
    print(f"\n== {label}: {n} stories (distinct titles), {len(set(gold))} clusters, {positives} same-cluster pairs")
    show("everything separate", scores(gold, np.arange(n)))
    pairs, values, probabilities = rule_pairs(items, settings)
    show(f"newsflow rule, titles (t={settings.event_threshold})",
         scores(gold, online(n, pairs, values, settings.event_threshold, settings.event_merge_threshold,
                             merge_values=probabilities)))
    sweep("rule's probability, single link, titles", n, gold, pairs, values, [x / 100 for x in range(30, 100, 5)])
    pairs, values = tfidf_pairs(items, settings.event_lede_chars, 0.1)
    sweep("TF-IDF title", n, gold, pairs, values, [x / 100 for x in range(10, 100, 5)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=os.environ.get("NEWSFLOW_UCI_NEWS"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N headlines")
    args = parser.parse_args()
    if not args.path:
        parser.error("give the dataset's path (or set NEWSFLOW_UCI_NEWS); see the module docstring")
    rows = load(args.path)
    if args.limit:
        rows = rows[: args.limit]
    settings = Settings.from_env()  # NEWSFLOW_EVENT_* settings apply: compare them here
    run("all clusters (Google News STORY labels)", stories(rows), settings)
    strict = [h for h in rows if h.story in STRICT and h.id not in STRICT[h.story][1]]
    if strict:
        run(f"hand-checked strict subset ({len(STRICT)} clusters)", stories(strict), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
