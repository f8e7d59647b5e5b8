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
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))

from newsflow import dedup  # noqa: E402
from newsflow.config import Settings  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "pages"
MIN_WORDS = 150
MIN_BLOCKS = 5
BLOCK_WORDS = 25  # short lines (headings, list items) are merged into blocks of >= this
POOL_WORDS = 2500  # pages longer than this are text pools, not bases
COMMENTARY_POOLS = ("laviedesidees.fr.evaluation.html", "pluralsight.com.python.html")

# Same site or same topic: pairs inside a group are the "hard" negatives.
TOPICS = {
    "creative-commons": ["creativecommons.at.faircoin", "creativecommons.org",
                         "de.creativecommons.org.endlich", "fairkom.eu.about"],
    "chip.de": ["chip.de.beef", "chip.de.tests"],
    "dw.com": ["dw.com.colonial", "dw.com.uncork"],
    "software": ["blog.python.org", "caktusgroup.com.django", "gregoryszorc.com.python3",
                 "pluralsight.com.python", "stackoverflow.com.rust", "lemire.me.json",
                 "github.blog.spiceland", "en.wikipedia.org.tsne"],
    "law": ["internet-law.de.pseudonymen", "rechtambild.de.kochbuch",
            "telemedicus.info.rezension", "moritz-meyer.net.vreni",
            "netzpolitik.org.abmahnungen", "bmjv.de.konsum", "cnet.de.schutz",
            "viehbacher.com.steuerrecht"],
    "universities": ["psl.eu.luniversite", "sauvonsluniversite.com.spip",
                     "soundofscience.fr.1927", "laviedesidees.fr.evaluation",
                     "theguardian.com.academics", "franceculture.fr.idees"],
    "fashion-beauty": ["franziska-elea.de.vuitton", "majkaswelt.com.fashion",
                       "otto.de.twoforfashion", "iloveponysmag.com.barbour",
                       "lady50plus.de.sekre", "buchperlen.wordpress.com", "crazy-julia.de.tipps",
                       "incurvy.de.wellness", "modepilot.de.duschkopf", "gofeminin.de.abnehmen",
                       "brigitte.de.ikigai", "jolie.de.adele", "plentylife.blogspot.pamela-reif",
                       "novalanalove.com.ear-candy", "befifty.montauk"],
    "climate-nature": ["salon.com.emissions", "vancouversun.com.microsoft", "vice.com.amazon",
                       "theplanetarypress.com.forestlands", "nationalgeographic.co.uk.goats",
                       "simplyscience.ch.erdoel", "demokratiewebstatt.at.luft",
                       "heise.de.lithium", "nature.com.telescope", "phys.org.tool"],
    "transport": ["zeit.de.zugverkehr", "sueddeutsche.de.flixtrain", "futurezone.at.lyft",
                  "austria.info.radfahren", "adac.de.kindersitze"],
    "tech-media": ["meedia.de.freenet", "faz.net.streaming", "computerbase.de.htc",
                   "theverge.com.ios13", "threatpost.com.android", "kulu-media.com.meta-outage",
                   "basicthinking.de.tweets", "mixed.de.vrodo", "knowtechie.com.rally",
                   "pcgamer.com.skyrim", "spreeblick.com.habeck"],
    "german-politics": ["piratenpartei-mv.de.grundeinkommen", "die-partei.net.luebeck",
                        "cdu-fraktion-erfurt.de.waldorfschule", "gruen-digital.de.jahrestagung",
                        "correctiv.org.zusage", "brandenburg.de.homo-brandenburgensis",
                        "spiegel.de.albtraum"],
}
TOPIC_OF = {page: topic for topic, pages in TOPICS.items() for page in pages}

OUTLETS = [
    ("The Morning Ledger",
     "The Morning Ledger | World | Business | Markets | Opinion | Subscribe | Sign in",
     "© 2024 The Morning Ledger. All rights reserved. Sign up for our daily briefing and "
     "get the top stories delivered to your inbox every morning. Follow us on Facebook, "
     "X and Instagram."),
    ("Rheinblick Online",
     "Rheinblick Online – Nachrichten aus der Region | Politik | Wirtschaft | Sport | Kultur",
     "Alle Rechte vorbehalten. Vervielfältigung nur mit Genehmigung der Rheinblick Medien "
     "GmbH. Jetzt den Newsletter abonnieren und keine Nachricht mehr verpassen. Kommentare "
     "sind für diesen Artikel geschlossen."),
    ("Metro Wire Daily",
     "METRO WIRE DAILY — Breaking news, local coverage and analysis — Advertisement",
     "Metro Wire Daily may earn a commission from links on this page. Copyright Metro "
     "Wire Daily Media Group 2024. Read our privacy policy and terms of use. Got a news "
     "tip? Email the newsroom."),
    ("Le Courrier du Matin",
     "Le Courrier du Matin · Actualités · International · Économie · Abonnez-vous",
     "Tous droits de reproduction réservés. Le Courrier du Matin utilise des cookies pour "
     "améliorer votre expérience. Recevez chaque matin notre lettre d'information gratuite."),
    ("Pacific Herald",
     "Pacific Herald — News you can trust since 1887 — Home > News > World",
     "Related stories: see more from our world desk. Share this article on Facebook, "
     "Twitter, LinkedIn or by email. The Pacific Herald is a member of the Independent "
     "News Alliance and follows its code of practice."),
    ("Northside Gazette",
     "Northside Gazette | Local | National | Tech | Lifestyle | Podcasts | Newsletters",
     "This story was produced by the Northside Gazette newsroom. Support independent local "
     "journalism: become a member today for less than a coffee a week. Comments are "
     "moderated and may take a few minutes to appear."),
]
AGENCIES = [("Reuters", "-"), ("AP", "\u2014"), ("AFP", "-"), ("dpa", "-")]
CITIES = ["BERLIN", "LONDON", "WASHINGTON", "PARIS", "BRUSSELS", "VIENNA", "NEW YORK",
          "TOKYO", "MADRID", "ROME"]
MONTHS = ["Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct",
          "Nov", "Dec"]
VIA_NAMES = ["Reuters", "NBC News", "Sunday Times", "AP", "BBC", "The Guardian", "AFP",
             "Bloomberg", "Der Spiegel", "Le Monde"]
HEADLINE_FORMS = ["{} – what we know so far", "Report: {}", "{} (UPDATED)", "Why {} matters",
                  "{}: the key points", "In brief: {}", "{} | Analysis"]
INTRO_NOTES = [
    "Editor's note: This article was first published by {agency} and is republished "
    "here as part of our content partnership. It has been lightly edited for style.",
    "Editor's note: This story is republished with permission from {agency}. Some "
    "details may have changed since it was first published.",
]
OUTRO_NOTES = [
    "Editor's note: An earlier version of this story misstated a detail in one of the "
    "paragraphs above. This version has been corrected. We regret the error.",
    "Correction appended: this article has been updated with additional information "
    "after publication. {agency} contributed to this report.",
]
TRANSFORMS = ["boilerplate", "headline", "dateline", "tail_trimmed", "paragraph_dropped",
              "paragraphs_swapped", "editor_note_intro", "editor_note_outro",
              "aggregator_excerpt", "combined"]


# ----------------------------------------------------------------------- dataset


@dataclass
class Page:
    name: str  # file name without .html
    title: str
    blocks: list[str]  # paragraph blocks (each >= BLOCK_WORDS words, or a short tail)

    @property
    def words(self) -> int:
        return sum(len(b.split()) for b in self.blocks)

    @property
    def topic(self) -> str:
        return TOPIC_OF.get(self.name, self.name)


@dataclass
class Item:
    item_id: int
    key: str  # sorts by publication time
    text: str
    cluster: str  # true cluster label
    kind: str  # original | variant | followup | negative
    transform: str  # which transformation (variants), else ""
    topic: str  # for hard-negative accounting
    base: str | None = None  # base page of a follow-up
    credit: str | None = None  # expected wire_credit where the generator put one
    page_credit: str | None = None  # credit the source page itself carries


def to_blocks(text: str) -> list[str]:
    """trafilatura lines -> paragraph blocks: short lines join the following lines."""
    blocks: list[str] = []
    pending: list[str] = []
    for line in (ln.strip() for ln in text.split("\n")):
        if not line:
            continue
        pending.append(line)
        if sum(len(p.split()) for p in pending) >= BLOCK_WORDS:
            blocks.append("\n".join(pending))
            pending = []
    if pending:
        if blocks:
            blocks[-1] = blocks[-1] + "\n" + "\n".join(pending)
        else:
            blocks.append("\n".join(pending))
    return blocks


def load_pages(corpus: Path, names: set[str] | None = None) -> list[Page]:
    """Extract every page (or only those whose file name without .html is in names)."""
    import trafilatura

    pages = []
    for path in sorted(glob.glob(str(corpus / "*.html"))):
        if names is not None and os.path.basename(path)[: -len(".html")] not in names:
            continue
        with open(path, "rb") as handle:
            html = handle.read()
        doc = trafilatura.bare_extraction(  # the pipeline's own settings (extract.py)
            html, with_metadata=True, include_comments=False, include_tables=False,
            favor_precision=False, deduplicate=False)
        if doc is None or not doc.text:
            continue
        name = os.path.basename(path)[: -len(".html")]
        pages.append(Page(name=name, title=(doc.title or "").strip(), blocks=to_blocks(doc.text)))
    return pages


def render(title: str | None, blocks: list[str], header: str | None = None,
           footer: str | None = None) -> str:
    parts = ([header] if header else []) + ([title] if title else []) + blocks + (
        [footer] if footer else [])
    return "\n\n".join(parts)


def dateline(rng: random.Random) -> tuple[str, str]:
    agency, dash = rng.choice(AGENCIES)
    place = f"{rng.choice(CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 28)}"
    return f"{place} ({agency}) {dash} ", agency


def rewrite_headline(rng: random.Random, title: str, blocks: list[str]) -> str:
    words = (title or blocks[0]).split()
    if len(words) > 4:
        start = rng.randint(0, max(0, len(words) - 4))
        words = words[start:start + rng.randint(3, 6)]
    return rng.choice(HEADLINE_FORMS).format(" ".join(words))


def trim_tail(rng: random.Random, blocks: list[str]) -> list[str]:
    total = sum(len(b.split()) for b in blocks)
    keep = round(total * (1 - rng.uniform(0.20, 0.30)))
    out, seen = [], 0
    for block in blocks:
        words = block.split()
        if seen + len(words) <= keep:
            out.append(block)
            seen += len(words)
            continue
        if keep - seen > 0:
            out.append(" ".join(words[: keep - seen]))
        break
    return out


class TextPool:
    """Disjoint word spans taken in order from a few pages (commentary)."""

    def __init__(self, pages: list[Page]):
        self.words = [w for p in pages for b in p.blocks for w in b.split()]
        self.pos = 0

    def take(self, n: int) -> str:
        if self.pos + n > len(self.words):
            raise RuntimeError("commentary pool exhausted")
        span = self.words[self.pos:self.pos + n]
        self.pos += n
        return " ".join(span)


def make_variant(rng: random.Random, transform: str, page: Page, has_dateline: bool,
                 line: str, agency: str, pool: TextPool,
                 page_credit: str | None) -> tuple[str, str, str | None]:
    """(text, transform name, expected wire credit) of one syndicated copy.

    Editor's notes credit the page's own agency when it has one (a Reuters story is
    not suddenly credited to AP), else the dateline's, else a random one."""
    title, blocks = page.title or None, list(page.blocks)
    first_plain = blocks[0]
    with_dl = [line + first_plain] + blocks[1:]
    body = with_dl if has_dateline else blocks
    credit = agency if has_dateline else None
    outlet, header, footer = rng.choice(OUTLETS)
    if transform == "boilerplate":
        return render(title, body, header, footer), transform, credit
    if transform == "headline":
        return render(rewrite_headline(rng, page.title, blocks), body), transform, credit
    if transform == "dateline":
        if has_dateline:
            return render(title, blocks), "dateline_removed", None
        line2, agency2 = dateline(rng)
        return render(title, [line2 + first_plain] + blocks[1:]), "dateline_added", agency2
    if transform == "tail_trimmed":
        return render(title, trim_tail(rng, body)), transform, credit
    if transform == "paragraph_dropped":
        drop = rng.randrange(len(body))
        return render(title, body[:drop] + body[drop + 1:]), transform, (
            credit if drop else None)
    if transform == "paragraphs_swapped":
        i, j = sorted(rng.sample(range(len(body)), 2))
        swapped = list(body)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        return render(title, swapped), transform, credit
    if transform == "editor_note_intro":  # the note credits the agency too
        note_agency = credit or page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(INTRO_NOTES).format(agency=note_agency)
        return render(title, [note] + body), transform, note_agency
    if transform == "editor_note_outro":
        note_agency = credit or page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(OUTRO_NOTES)
        return (render(title, body + [note.format(agency=note_agency)]), transform,
                note_agency if (credit or "{agency}" in note) else None)
    if transform == "aggregator_excerpt":
        k = rng.randint(3, min(5, len(blocks) - 1))
        start = rng.randrange(len(blocks) - k + 1)
        quoted = blocks[start:start + k]
        quoted_words = sum(len(b.split()) for b in quoted)
        n_comment = max(20, round(quoted_words * rng.uniform(0.25, 0.60)))
        comment = pool.take(n_comment).split()
        cut = round(len(comment) * 0.6)
        intro, outro = " ".join(comment[:cut]), " ".join(comment[cut:])
        names = rng.sample(VIA_NAMES, 3)
        via = f"Via {names[0]}, {names[1]} & {names[2]}"
        text = render(rewrite_headline(rng, page.title, blocks), [intro] + quoted + [outro, via])
        return text, transform, dedup.normalise_agency(names[0])
    if transform == "combined":  # a typical outlet copy: several edits at once
        blocks2 = trim_tail(rng, blocks)
        if has_dateline:
            blocks2[0] = blocks2[0].removeprefix(line)
            credit = None
        else:
            line2, credit = dateline(rng)
            blocks2[0] = line2 + blocks2[0]
        if credit is None:
            credit = page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(INTRO_NOTES).format(agency=credit)
        text = render(rewrite_headline(rng, page.title, blocks), [note] + blocks2, header, footer)
        return text, transform, credit
    raise ValueError(transform)


def host_pieces(rng: random.Random, pages: list[Page]) -> list[tuple[Page, list[str]]]:
    """Cut pool pages into disjoint host articles of 200-400 words (whole blocks)."""
    pieces = []
    for page in pages:
        current: list[str] = []
        target = rng.randint(200, 400)
        for block in page.blocks:
            current.append(block)
            if sum(len(b.split()) for b in current) >= target:
                pieces.append((page, current))
                current, target = [], rng.randint(200, 400)
    return pieces


def build_dataset(pages: list[Page], seed: int) -> tuple[list[Item], dict]:
    usable = [p for p in pages if p.words >= MIN_WORDS]
    pools = [p for p in usable if p.words > POOL_WORDS]
    commentary_pages = [p for p in pools if p.name + ".html" in COMMENTARY_POOLS]
    host_pages = [p for p in pools if p.name + ".html" not in COMMENTARY_POOLS]
    bases = [p for p in usable if p.words <= POOL_WORDS and len(p.blocks) >= MIN_BLOCKS]
    singles = [p for p in usable if p.words <= POOL_WORDS and len(p.blocks) < MIN_BLOCKS]
    pool = TextPool(commentary_pages)
    hosts = host_pieces(random.Random(f"{seed}:hosts"), host_pages)
    random.Random(f"{seed}:order").shuffle(hosts)

    items: list[Item] = []
    week = 7 * 24 * 3600

    def add(t: int, **kw) -> None:
        item_id = len(items)
        items.append(Item(item_id=item_id, key=f"{t:09d}:{item_id:05d}", **kw))

    for page in bases:
        prng = random.Random(f"{seed}:{page.name}")
        t0 = prng.randrange(week)
        has_dl = prng.random() < 0.5
        line, agency = dateline(prng)
        page_credit = dedup.wire_credit(render(page.title or None, page.blocks))
        body = ([line + page.blocks[0]] + page.blocks[1:]) if has_dl else page.blocks
        add(t0, text=render(page.title or None, body), cluster=page.name, kind="original",
            transform="", topic=page.topic, credit=agency if has_dl else None,
            page_credit=page_credit)
        for transform in TRANSFORMS:
            text, name, credit = make_variant(prng, transform, page, has_dl, line, agency, pool,
                                              page_credit)
            add(t0 + prng.randint(60, 36000), text=text, cluster=page.name, kind="variant",
                transform=name, topic=page.topic, credit=credit, page_credit=page_credit)
        # follow-up: a different article reusing ONE background paragraph of this base
        limit = min(150, 0.3 * page.words)
        reusable = [b for b in page.blocks if BLOCK_WORDS <= len(b.split()) <= limit]
        if hosts and reusable:
            host_page, host_blocks = hosts.pop()
            reused = prng.choice(reusable)
            at = prng.randint(1, len(host_blocks))
            outlet, header, footer = prng.choice(OUTLETS)
            text = render(None, host_blocks[:at] + [reused] + host_blocks[at:], header, footer)
            add(t0 + prng.randint(3600, 3 * 86400), text=text,
                cluster=f"followup:{page.name}", kind="followup", transform="",
                topic=host_page.topic, base=page.name)
    # stand-alone negatives: unused host pieces and short-structured pages, dressed too
    nrng = random.Random(f"{seed}:negatives")
    for n, (host_page, host_blocks) in enumerate(hosts):
        outlet, header, footer = nrng.choice(OUTLETS)
        add(nrng.randrange(week), text=render(None, host_blocks, header, footer),
            cluster=f"piece:{host_page.name}:{n}", kind="negative", transform="",
            topic=host_page.topic)
    for page in singles:
        outlet, header, footer = nrng.choice(OUTLETS)
        add(nrng.randrange(week), text=render(page.title or None, page.blocks, header, footer),
            cluster=page.name, kind="negative", transform="", topic=page.topic)
    info = {"pages": len(pages), "usable": len(usable), "bases": len(bases),
            "host_pages": len(host_pages), "commentary_words_used": pool.pos,
            "singles": len(singles)}
    return items, info


# ----------------------------------------------------------------------- metrics


def comb2(n: int) -> int:
    return n * (n - 1) // 2


def pair_scores(truth: list[str], pred: list) -> dict:
    """Pairwise precision/recall/F1 and the Adjusted Rand Index (contingency table)."""
    table = Counter(zip(truth, pred))
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
    for item, p in zip(items, pred):
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
            elif a.topic == b.topic:
                counts["same_topic"] += 1
    return counts


def recall_by_transform(items: list[Item], pred: list) -> dict[str, tuple[int, int]]:
    """Variants put in their original's predicted cluster, per transformation."""
    original = {it.cluster: p for it, p in zip(items, pred) if it.kind == "original"}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for it, p in zip(items, pred):
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
    def __init__(self) -> None:
        super().__init__()
        self.candidate_counts: list[int] = []
        self.story_counts: list[int] = []
        self.last: list[dedup.Member] = []

    def candidates(self, bands):
        found = super().candidates(bands)
        self.candidate_counts.append(len(found))
        self.story_counts.append(len({m.story_id for m in found}))
        self.last = found
        return found


def run_project(items: list[Item], settings: Settings, order: list[int] | None = None,
                fingerprints: dict | None = None) -> tuple[list[int], dict]:
    """The production path (fingerprint + assign against an index), instrumented."""
    order = order if order is not None else sorted(range(len(items)), key=lambda i: items[i].key)
    index = CountingIndex()
    labels = [0] * len(items)
    relations: dict[int, str] = {}
    next_story = 1
    item_of: dict[int, int] = {}  # index article id -> item
    indexed_per_cluster: Counter = Counter()
    foreign = possible = 0
    started = time.perf_counter()
    for n, i in enumerate(order, start=1):
        fp = fingerprints[i] if fingerprints else dedup.fingerprint(items[i].text, settings)
        assignment = dedup.assign(fp, index, settings)
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
    for it, m in zip(items, sketches):
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
            f"{s['ari']:.4f} | {fm['total']} | {fm['same_topic']} | {fm['followup']} |{extra}")


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
    pages = load_pages(CORPUS)
    t_extract = time.perf_counter() - t_start
    items, info = build_dataset(pages, args.seed)
    kinds = Counter(it.kind for it in items)
    truth = [it.cluster for it in items]
    print(f"corpus: {info['pages']} pages extracted in {t_extract:.1f}s, {info['usable']} with "
          f">= {MIN_WORDS} words; {info['bases']} bases, {info['host_pages']} host pool pages, "
          f"{info['singles']} short-structured negatives")
    print(f"items: {len(items)} ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}); "
          f"{len(set(truth))} true clusters; seed {args.seed}")
    print(f"settings: shingle={settings.dedup_shingle_size} num_perm={settings.dedup_num_perm} "
          f"bands={settings.dedup_bands}x{settings.dedup_rows} containment>="
          f"{settings.dedup_containment} jaccard>={settings.dedup_jaccard} "
          f"min_shingles={settings.dedup_min_shingles}")

    # (1) this project, publication order; then a timing-only repeat
    pred, stats = run_project(items, settings)
    # (1b) same, but keys as cluster() sees them: check cluster() agrees with the loop
    by_key = dedup.cluster(((it.key, it.text) for it in items), settings)
    assert [by_key[it.key] for it in items] == pred, "cluster() and assign loop disagree"
    # (2) trafilatura simhash, (3) datasketch
    t0 = time.perf_counter()
    pred_sim = run_simhash(items)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred_ds, ds_threshold = run_datasketch(items, settings.dedup_shingle_size)
    t_ds = time.perf_counter() - t0

    print()
    print("| method | precision | recall | F1 | ARI | false merges | same-topic | follow-up |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for name, p in [("newsflow.dedup (this project)", pred),
                    ("trafilatura Simhash, Hamming <= 3, single link", pred_sim),
                    (f"datasketch MinHashLSH threshold={ds_threshold} (default), 128 perm, "
                     "single link", pred_ds)]:
        s, fm = pair_scores(truth, p), false_merges(items, p)
        results[name] = (s, fm)
        print(fmt_row(name, s, fm))
    print()
    print("false merges = item pairs put together that are different stories; same-topic ="
          " both items on the same site/topic; follow-up = one item is a follow-up")

    # recall per transformation (variant in its original's cluster)
    rec = {name: recall_by_transform(items, p) for name, p in
           [("project", pred), ("simhash", pred_sim), ("datasketch", pred_ds)]}
    fps = {i: dedup.fingerprint(it.text, settings) for i, it in enumerate(items)}
    margins = similarity_margins(items, [fps[i].shingles for i in range(len(items))])
    print()
    print("| transformation | n | project | simhash | datasketch | min containment | "
          "min Jaccard | median Jaccard |")
    print("|---|---|---|---|---|---|---|---|")
    for transform, (hit, n) in rec["project"].items():
        sims = margins["per_transform"][transform]
        print(f"| {transform} | {n} | {hit / n:.3f} | {rec['simhash'][transform][0] / n:.3f} | "
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

    # order robustness: representative = whichever copy comes first (shuffled keys)
    shuffled = list(range(len(items)))
    random.Random(args.seed + 1).shuffle(shuffled)
    pred_shuf, _ = run_project(items, settings, order=shuffled, fingerprints=fps)
    s, fm = pair_scores(truth, pred_shuf), false_merges(items, pred_shuf)
    print(f"random publication order (representative is a random copy): P={s['precision']:.4f} "
          f"R={s['recall']:.4f} F1={s['f1']:.4f} ARI={s['ari']:.4f} false merges={fm['total']}")

    # wire credit on the generated texts
    found = {it.item_id: dedup.wire_credit(it.text) for it in items
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

    # timing: the production path from text (fingerprint + assign)
    _, stats2 = run_project(items, settings)
    words = sum(len(it.text.split()) for it in items)
    print()
    print(f"timing (this project, fingerprint + assign, 1 core): {stats2['rate']:.0f} articles/s "
          f"({words / len(items):.0f} words/article); candidates per article: mean "
          f"{stats2['candidates_mean']:.1f}, p95 {stats2['candidates_p95']}, candidate stories "
          f"mean {stats2['stories_mean']:.2f}; different-story candidates "
          f"{stats2['foreign_rate'] * 1e4:.1f} per 10k indexed articles; simhash {t_sim:.1f}s, "
          f"datasketch {t_ds:.1f}s")

    if args.sweep:
        sweep(items, truth, settings)
    print(f"\ntotal {time.perf_counter() - t_start:.1f}s")
    s, fm = results["newsflow.dedup (this project)"]
    ok = s["f1"] >= 0.97 and fm["same_topic"] == 0 and fm["followup"] == 0 and fm["total"] == 0
    print("targets (F1 >= 0.97, no false merges): " + ("MET" if ok else "NOT MET"))
    return 0 if ok else 1


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
                sh = dedup.shingle_hashes(it.text, k)
                cache[k, num_perm][i] = (sh, dedup.minhash(sh, num_perm))
        fps = {i: dedup.Fingerprint(sh, mh, dedup.band_hashes(mh, bands, rows))
               for i, (sh, mh) in cache[k, num_perm].items()}
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
