"""Evaluate near-duplicate (syndication) detection on a labelled set built at run time.

    PYTHONPATH=plugins .venv/bin/python bench/dedup_eval.py [--seed N] [--no-sweep]

Source: the real web pages in ``../shared/corpus/pages`` (relative to the repository
root), bodies extracted with trafilatura as the pipeline does.  Nothing from the corpus
is written anywhere; the set is rebuilt, deterministically (seeded), on every run.

Roles of the pages (fixed rules, see ``build_dataset``):
* long-form pages (> 2,500 words) are text pools, cut into disjoint pieces: two
  pages give aggregator commentary, the others give "follow-up" host articles (and
  any host piece not used for a follow-up is a stand-alone negative);
* every other page with >= 150 words and >= 5 paragraph blocks is a *base*: its
  original plus one syndicated variant per transformation form one true cluster;
* the remaining pages with >= 150 words are stand-alone negatives.

Follow-ups (a host piece with ONE paragraph of a base inserted) and all negatives are
their own clusters, dressed in the same outlet boilerplate as the variants.  Hard
negatives: pages on the same site or topic (``TOPICS``) and pieces of the same pool
page.  Methods compared: this project (``newsflow.dedup.cluster``), trafilatura's
Simhash (Hamming <= 3, single link) and datasketch MinHashLSH at its default threshold
(0.9, 128 permutations, same 5-gram shingles, single link).
"""

from __future__ import annotations

import argparse
import glob
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))

from dedup_dataset import CORPUS, MIN_WORDS, Item, build_dataset, load_pages  # noqa: E402  (bench/)
from newsflow import credit, dedup  # noqa: E402
from newsflow.config import Settings  # noqa: E402

# ----------------------------------------------------------------------- metrics


def comb2(n: int) -> int:
    return n * (n - 1) // 2


def pair_scores(truth: list[str], pred: list) -> dict:
    """Pairwise precision/recall/F1 and the Adjusted Rand Index (contingency table)."""
    table = Counter(zip(truth, pred, strict=True))
    sum_ij = sum(comb2(v) for v in table.values())
    sum_a = sum(comb2(v) for v in Counter(truth).values())
    sum_b = sum(comb2(v) for v in Counter(pred).values())
    total = comb2(len(truth))
    expected = sum_a * sum_b / total if total else 0.0
    maximum = (sum_a + sum_b) / 2
    ari = (sum_ij - expected) / (maximum - expected) if maximum != expected else 1.0
    precision = sum_ij / sum_b if sum_b else 1.0
    recall = sum_ij / sum_a if sum_a else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "ari": ari,
            "tp": sum_ij, "pred_pairs": sum_b, "true_pairs": sum_a}


def false_merges(items: list[Item], pred: list) -> dict:
    """False-merge pairs (same predicted cluster, different true clusters) by category."""
    groups: dict = defaultdict(list)
    for item, p in zip(items, pred, strict=True):
        groups[p].append(item)
    counts = Counter()
    for members in groups.values():
        if len({m.cluster for m in members}) < 2:
            continue
        for a, b in combinations(members, 2):
            if a.cluster == b.cluster:
                continue
            counts["total"] += 1
            if a.kind == "followup" or b.kind == "followup":
                counts["followup"] += 1
                if "followup_credited" in (a.transform, b.transform):
                    counts["followup_credited"] += 1
            elif a.topic == b.topic:
                counts["same_topic"] += 1
    return counts


def recall_by_transform(items: list[Item], pred: list) -> dict[str, tuple[int, int]]:
    """Variants put in their original's predicted cluster, per transformation."""
    original = {it.cluster: p for it, p in zip(items, pred, strict=True) if it.kind == "original"}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for it, p in zip(items, pred, strict=True):
        if it.kind == "variant":
            out[it.transform][1] += 1
            out[it.transform][0] += int(p == original[it.cluster])
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def labels(self) -> list[int]:
        return [self.find(i) for i in range(len(self.parent))]


# ----------------------------------------------------------------------- methods


class CountingIndex(dedup.MemoryIndex):
    def __init__(self, passage_max_texts: int = Settings.dedup_passage_max_texts) -> None:
        super().__init__(passage_max_texts)
        self.candidate_counts: list[int] = []
        self.story_counts: list[int] = []
        self.last: list[dedup.Member] = []

    def candidates(self, bands, passages=()):
        found = super().candidates(bands, passages)
        self.candidate_counts.append(len(found))
        self.story_counts.append(len({m.story_id for m in found}))
        self.last = found
        return found


def run_project(items: list[Item], settings: Settings, order: list[int] | None = None,
                fingerprints: dict | None = None) -> tuple[list[int], dict]:
    """The production path (fingerprint + assign against an index), instrumented."""
    order = order if order is not None else sorted(range(len(items)), key=lambda i: items[i].key)
    index = CountingIndex(settings.dedup_passage_max_texts)
    labels = [0] * len(items)
    relations: dict[int, str] = {}
    next_story = 1
    item_of: dict[int, int] = {}  # index article id -> item
    indexed_per_cluster: Counter = Counter()
    foreign = possible = 0
    started = time.perf_counter()
    for n, i in enumerate(order, start=1):
        fp = fingerprints[i] if fingerprints else dedup.fingerprint(items[i].text, settings)
        # how the text credits what it quotes, as ingestion reads it (stories.add_article)
        assignment = dedup.assign(fp, index, settings, dedup.quote_credit(items[i].text))
        # candidates from other true clusters: pure LSH noise, each costs a verification
        cluster = items[i].cluster
        foreign += sum(items[item_of[m.article_id]].cluster != cluster for m in index.last)
        possible += (n - 1) - indexed_per_cluster[cluster]
        indexed_per_cluster[cluster] += 1
        item_of[n] = i
        story = assignment.story_id
        if story is None:
            story, next_story = next_story, next_story + 1
        index.add(n, story, fp)
        labels[i] = story
        relations[i] = assignment.relation
    elapsed = time.perf_counter() - started
    stats = {"seconds": elapsed, "rate": len(items) / elapsed if elapsed else 0.0,
             "candidates_mean": statistics.mean(index.candidate_counts),
             "candidates_p95": sorted(index.candidate_counts)[int(0.95 * len(items))],
             "stories_mean": statistics.mean(index.story_counts), "relations": relations,
             "foreign_rate": foreign / possible if possible else 0.0}
    return labels, stats


def run_shingle_rule(items: list[Item], k: int = 5) -> list[int]:
    """The simple rule of issue 16, over trafilatura's own output (defaults): word 5-gram
    containment >= 0.5 or Jaccard >= 0.3, exact (no LSH), each item against the first
    member of every story so far, in publication order; the best containment wins."""
    order = sorted(range(len(items)), key=lambda i: items[i].key)
    sets = [frozenset(dedup.shingle_hashes(it.plain if it.plain is not None else it.text, k)) for it in items]
    firsts: list[tuple[int, int]] = []  # (story, item)
    labels = [0] * len(items)
    for i in order:
        best = None
        for story, first in firsts:
            jaccard, containment = dedup.similarity(sets[i], sets[first])
            if (containment >= 0.5 or jaccard >= 0.3) and (best is None or containment > best[0]):
                best = (containment, story)
        if best is None:
            firsts.append((len(firsts) + 1, i))
            labels[i] = len(firsts)
        else:
            labels[i] = best[1]
    return labels


def run_simhash(items: list[Item], max_distance: int = 3) -> list[int]:
    from trafilatura.deduplication import Simhash

    hashes = [Simhash(it.text).hash for it in items]
    uf = UnionFind(len(items))
    for i in range(len(items)):
        hi = hashes[i]
        for j in range(i + 1, len(items)):
            if (hi ^ hashes[j]).bit_count() <= max_distance:
                uf.union(i, j)
    return uf.labels()


def string_shingles(text: str, k: int) -> list[bytes]:
    toks = dedup.tokens(text)
    if len(toks) < k:
        return [" ".join(toks).encode()] if toks else []
    return [" ".join(toks[i:i + k]).encode() for i in range(len(toks) - k + 1)]


def run_datasketch(items: list[Item], k: int, num_perm: int = 128) -> tuple[list[int], float]:
    import inspect

    from datasketch import MinHash, MinHashLSH

    threshold = inspect.signature(MinHashLSH).parameters["threshold"].default
    lsh = MinHashLSH(num_perm=num_perm)  # default threshold
    sketches = []
    for it in items:
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(set(string_shingles(it.text, k)))
        sketches.append(m)
        lsh.insert(it.item_id, m)
    uf = UnionFind(len(items))
    for it, m in zip(items, sketches, strict=True):
        for other in lsh.query(m):
            uf.union(it.item_id, other)
    return uf.labels(), threshold


# ----------------------------------------------------------------------- reports


def similarity_margins(items: list[Item], shingles: list[tuple[int, ...]]) -> dict:
    """Exact (Jaccard, containment) of every variant / follow-up against its original,
    and the largest values over all cross-cluster pairs (via an inverted index)."""
    original = {it.cluster: i for i, it in enumerate(items) if it.kind == "original"}
    per_transform: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for i, it in enumerate(items):
        if it.kind == "variant":
            per_transform[it.transform].append(
                dedup.similarity(shingles[i], shingles[original[it.cluster]]))
        elif it.kind == "followup":
            per_transform["(follow-up vs its base)"].append(
                dedup.similarity(shingles[i], shingles[original[it.base]]))
    postings: dict[int, list[int]] = defaultdict(list)
    for i, sh in enumerate(shingles):
        for h in sh:
            postings[h].append(i)
    shared: Counter = Counter()
    for ids in postings.values():
        if len(ids) < 2 or len({items[i].cluster for i in ids}) < 2:
            continue
        for a, b in combinations(ids, 2):
            if items[a].cluster != items[b].cluster:
                shared[(a, b)] += 1
    worst_c = worst_j = (0.0, None)
    for (a, b), inter in shared.items():
        na, nb = len(shingles[a]), len(shingles[b])
        if min(na, nb) == 0:
            continue
        c, j = inter / min(na, nb), inter / (na + nb - inter)
        if c > worst_c[0]:
            worst_c = (c, (a, b))
        if j > worst_j[0]:
            worst_j = (j, (a, b))
    return {"per_transform": per_transform, "max_cross_containment": worst_c,
            "max_cross_jaccard": worst_j}


def fmt_row(name: str, s: dict, fm: Counter, extra: str = "") -> str:
    return (f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | "
            f"{s['ari']:.4f} | {fm['total']} | {fm['same_topic']} | {fm['followup']} | "
            f"{fm['followup_credited']} |{extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20241120)
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help="skip the comparison of LSH layouts and thresholds")
    args = parser.parse_args()
    if not CORPUS.is_dir() or not glob.glob(str(CORPUS / "*.html")):
        print(f"corpus not found: {CORPUS} (expected ../shared/corpus/pages next to the "
              "repository; it is not part of the repository)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    settings = Settings()
    items, truth = dataset(args.seed, settings)
    preds, stats, timings, results = compare_methods(items, truth, settings)
    fps = {i: dedup.fingerprint(it.text, settings) for i, it in enumerate(items)}
    transform_report(items, preds, fps, stats)
    order_report(items, truth, settings, fps, args.seed)
    furniture_report(items)
    credit_report(items)
    timing_report(items, settings, timings)
    if args.sweep:
        sweep(items, truth, settings)
    print(f"\ntotal {time.perf_counter() - t_start:.1f}s")
    s, fm = results["newsflow.dedup (this project)"]
    rule = next(v for k, v in results.items() if k.startswith("shingle rule"))[0]
    recall = recall_by_transform(items, preds["project"])
    low = {t: round(h / n, 3) for t, (h, n) in recall.items() if h / n < 0.98}
    ok = s["f1"] >= 0.995 and fm["total"] == 0 and not low and s["f1"] > rule["f1"]
    print("targets (F1 >= 0.995, every kind's recall >= 0.98, no false merges, better F1 than the "
          f"shingle rule's {rule['f1']:.4f}): " + ("MET" if ok else f"NOT MET (below 0.98: {low or 'none'})"))
    return 0 if ok else 1


def dataset(seed: int, settings: Settings) -> tuple[list[Item], list[str]]:
    """The labelled items (see bench/dedup_dataset.py) and their true clusters."""
    t_start = time.perf_counter()
    pages = load_pages(CORPUS)
    t_extract = time.perf_counter() - t_start
    items, info = build_dataset(pages, seed)
    kinds = Counter(it.kind for it in items)
    truth = [it.cluster for it in items]
    print(f"corpus: {info['pages']} pages extracted in {t_extract:.1f}s, {info['usable']} with "
          f">= {MIN_WORDS} words; {info['bases']} bases, {info['host_pages']} host pool pages, "
          f"{info['singles']} short-structured negatives")
    print(f"items: {len(items)} ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
          f"{len(set(truth))} true clusters; seed {seed}")
    print(f"settings: shingle={settings.dedup_shingle_size} num_perm={settings.dedup_num_perm} "
          f"bands={settings.dedup_bands}x{settings.dedup_rows} containment>="
          f"{settings.dedup_containment} jaccard>={settings.dedup_jaccard} "
          f"min_shingles={settings.dedup_min_shingles}; passage sketch: runs >= {dedup.PASSAGE_RUN} "
          f"shingles, values held by <= {settings.dedup_passage_max_texts} texts")
    return items, truth


def compare_methods(items: list[Item], truth: list[str], settings: Settings):
    """This project, trafilatura's simhash and datasketch on the same items: the table."""
    pred, stats = run_project(items, settings)  # publication order
    # keys as cluster() sees them: check cluster() agrees with the loop
    by_key = dedup.cluster(((it.key, it.text) for it in items), settings)
    assert [by_key[it.key] for it in items] == pred, "cluster() and assign loop disagree"
    t0 = time.perf_counter()
    pred_sim = run_simhash(items)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred_ds, ds_threshold = run_datasketch(items, settings.dedup_shingle_size)
    t_ds = time.perf_counter() - t0
    pred_rule = run_shingle_rule(items)

    print()
    print("| method | precision | recall | F1 | ARI | false merges | same-topic | follow-up "
          "| credited follow-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = {}
    for name, p in [("newsflow.dedup (this project)", pred),
                    ("shingle rule: 5-gram containment >= 0.5 or Jaccard >= 0.3, exact, "
                     "trafilatura defaults' text", pred_rule),
                    ("trafilatura Simhash, Hamming <= 3, single link", pred_sim),
                    (f"datasketch MinHashLSH threshold={ds_threshold} (default), 128 perm, "
                     "single link", pred_ds)]:
        s, fm = pair_scores(truth, p), false_merges(items, p)
        results[name] = (s, fm)
        print(fmt_row(name, s, fm))
    print()
    print("false merges = item pairs put together that are different stories; same-topic ="
          " both items on the same site/topic; follow-up = one item is a follow-up")
    preds = {"project": pred, "shingle rule": pred_rule, "simhash": pred_sim, "datasketch": pred_ds}
    return preds, stats, {"simhash": t_sim, "datasketch": t_ds}, results


def transform_report(items: list[Item], preds: dict, fps: dict, stats: dict) -> None:
    """Recall per transformation (variant in its original's cluster), similarity margins,
    and the relations given."""
    rec = {name: recall_by_transform(items, p) for name, p in preds.items()}
    margins = similarity_margins(items, [fps[i].shingles for i in range(len(items))])
    print()
    print("| transformation | n | project | shingle rule | simhash | datasketch | min containment | "
          "min Jaccard | median Jaccard |")
    print("|---|---|---|---|---|---|---|---|---|")
    for transform, (hit, n) in rec["project"].items():
        sims = margins["per_transform"][transform]
        print(f"| {transform} | {n} | {hit / n:.3f} | {rec['shingle rule'][transform][0] / n:.3f} | "
              f"{rec['simhash'][transform][0] / n:.3f} | "
              f"{rec['datasketch'][transform][0] / n:.3f} | {min(c for j, c in sims):.3f} | "
              f"{min(j for j, c in sims):.3f} | {statistics.median(j for j, c in sims):.3f} |")
    fu = margins["per_transform"]["(follow-up vs its base)"]
    mc, (ca, cb) = margins["max_cross_containment"]
    mj, (ja, jb) = margins["max_cross_jaccard"]
    print()
    print(f"follow-ups vs their base: max containment {max(c for j, c in fu):.3f}, max "
          f"Jaccard {max(j for j, c in fu):.3f} (n={len(fu)})")
    print(f"all different-story pairs: max containment {mc:.3f} ({items[ca].cluster} / "
          f"{items[cb].cluster}), max Jaccard {mj:.3f} ({items[ja].cluster} / "
          f"{items[jb].cluster})")
    rel = Counter((items[i].transform or items[i].kind, r) for i, r in stats["relations"].items())
    print()
    print("relations given (transformation: relation count): " + "; ".join(
        f"{t}: " + ", ".join(f"{r} {rel[(t, r)]}" for r in ("original", "copy", "excerpt", "update")
                            if rel[(t, r)])
        for t in sorted({t for t, _ in rel})))


def order_report(items: list[Item], truth: list[str], settings: Settings, fps: dict, seed: int) -> None:
    """Order robustness: the representative is whichever copy comes first (shuffled keys)."""
    shuffled = list(range(len(items)))
    random.Random(seed + 1).shuffle(shuffled)
    pred_shuf, _ = run_project(items, settings, order=shuffled, fingerprints=fps)
    s, fm = pair_scores(truth, pred_shuf), false_merges(items, pred_shuf)
    print(f"random publication order (representative is a random copy): P={s['precision']:.4f} "
          f"R={s['recall']:.4f} F1={s['f1']:.4f} ARI={s['ari']:.4f} false merges={fm['total']}")


def furniture_report(items: list[Item]) -> None:
    """What the outlet templates put into bodies: template copies whose text holds any of
    the furniture's texts (a related headline, a newsletter line, a photo credit, a share
    label), as the pipeline stores them and as trafilatura's defaults extract them."""
    print()
    print("| template | n | bodies with furniture: pipeline | bodies with furniture: trafilatura defaults |")
    print("|---|---|---|---|")
    for template in sorted({it.transform for it in items if it.transform.startswith("template_")}):
        copies = [it for it in items if it.transform == template]
        ours = sum(any(f in it.text for f in it.furniture) for it in copies)
        theirs = sum(any(f in (it.plain or "") for f in it.furniture) for it in copies)
        print(f"| {template} | {len(copies)} | {ours} | {theirs} |")


def credit_report(items: list[Item]) -> None:
    """Wire credits found on the generated texts, against the ones the generator put."""
    found = {it.item_id: credit.wire_credit(it.text) for it in items
             if it.kind in ("original", "variant")}
    with_credit = [it for it in items if it.item_id in found and it.credit]
    without = [it for it in items if it.item_id in found and not it.credit]
    hits = sum(found[it.item_id] == it.credit for it in with_credit)
    own = sorted({(it.cluster, found[it.item_id]) for it in without
                  if found[it.item_id] and found[it.item_id] == it.page_credit})
    spurious = sorted({(it.cluster, found[it.item_id]) for it in without
                       if found[it.item_id] and found[it.item_id] != it.page_credit})
    print(f"wire_credit: {hits}/{len(with_credit)} generated credits found; on "
          f"{len(without)} texts without one: {len(spurious)} spurious"
          f"{(' ' + str(spurious)) if spurious else ''}, and the source pages' own credits "
          f"{', '.join(f'{c} ({n})' for n, c in own) or 'none'}")


def timing_report(items: list[Item], settings: Settings, timings: dict[str, float]) -> None:
    """The production path from text (fingerprint + assign), timed on one core."""
    _, stats = run_project(items, settings)
    words = sum(len(it.text.split()) for it in items)
    print()
    print(f"timing (this project, fingerprint + assign, 1 core): {stats['rate']:.0f} articles/s "
          f"({words / len(items):.0f} words/article); candidates per article: mean "
          f"{stats['candidates_mean']:.1f}, p95 {stats['candidates_p95']}, candidate stories "
          f"mean {stats['stories_mean']:.2f}; different-story candidates "
          f"{stats['foreign_rate'] * 1e4:.1f} per 10k indexed articles; simhash {timings['simhash']:.1f}s, "
          f"datasketch {timings['datasketch']:.1f}s")


def sweep(items: list[Item], truth: list[str], settings: Settings) -> None:
    """LSH layouts (recall of retrieval vs candidate volume) and threshold grid."""
    print()
    print("| shingle | num_perm | bands x rows | F1 | recall | aggregator recall | "
          "false merges | candidates/article mean | p95 | different-story candidates per "
          "10k indexed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cache: dict[tuple[int, int], dict[int, tuple]] = {}
    for k, num_perm, bands, rows in [(5, 128, 42, 3), (5, 128, 32, 4), (5, 128, 64, 2),
                                     (5, 128, 128, 1), (5, 256, 128, 2), (5, 256, 85, 3),
                                     (3, 128, 64, 2), (4, 128, 64, 2), (7, 128, 64, 2)]:
        cfg = settings.replace(dedup_shingle_size=k, dedup_num_perm=num_perm,
                               dedup_bands=bands, dedup_rows=rows)
        if (k, num_perm) not in cache:
            cache[k, num_perm] = {}
            for i, it in enumerate(items):
                seq = dedup.shingle_sequence(it.text, k)
                sh = tuple(np.unique(seq).tolist())
                cache[k, num_perm][i] = (sh, dedup.minhash(sh, num_perm), tuple(seq.tolist()))
        fps = {i: dedup.Fingerprint(sh, mh, dedup.band_hashes(mh, bands, rows), seq,
                                    dedup.passage_hashes(np.asarray(seq, dtype=np.int64), k))
               for i, (sh, mh, seq) in cache[k, num_perm].items()}
        pred, stats = run_project(items, cfg, fingerprints=fps)
        s, fm = pair_scores(truth, pred), false_merges(items, pred)
        agg = recall_by_transform(items, pred)["aggregator_excerpt"]
        print(f"| {k} | {num_perm} | {bands} x {rows} | {s['f1']:.4f} | {s['recall']:.4f} | "
              f"{agg[0] / agg[1]:.3f} | {fm['total']} | {stats['candidates_mean']:.1f} | "
              f"{stats['candidates_p95']} | {stats['foreign_rate'] * 1e4:.1f} |")
    print()
    print("| containment >= | jaccard >= | F1 | recall | false merges | follow-up merges |")
    print("|---|---|---|---|---|---|")
    fps = {i: dedup.fingerprint(it.text, settings) for i, it in enumerate(items)}
    for c in (0.3, 0.4, 0.5, 0.6, 0.7):
        for j in (0.2, 0.3, 0.4):
            cfg = settings.replace(dedup_containment=c, dedup_jaccard=j)
            pred, _ = run_project(items, cfg, fingerprints=fps)
            s, fm = pair_scores(truth, pred), false_merges(items, pred)
            print(f"| {c} | {j} | {s['f1']:.4f} | {s['recall']:.4f} | {fm['total']} | "
                  f"{fm['followup']} |")


if __name__ == "__main__":
    sys.exit(main())
