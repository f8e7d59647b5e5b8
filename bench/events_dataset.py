"""Texts for ``bench/events_eval.py`` and ``bench/citations_eval.py``, loaded at run time
(nothing from the corpus is written anywhere), each extracted with the pipeline's own
extraction (``newsflow.extract.extract_html``):

* the real pages of ``../shared/corpus/pages`` (skipped when absent): 111 real articles and
  posts, every one a different happening. Placed at one and the same hour, every pair is
  a candidate, and the pairs inside one topic group of ``bench/dedup_dataset.TOPICS``
  (two transport stories, two climate stories, ...) are the same-topic hard negatives;
* the sample world (plugins/newsflow/sampleworld; invented texts written like wire copy):
  the coalition's ISIS count reported by the wire, copied by three outlets and written up
  independently by the Herald (one event), the wire's follow-up two days later (another
  event), a weekly round-up that mentions every story (another), the rest one each.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO / "bench"))

CORPUS = REPO.parent / "shared" / "corpus" / "pages"
SAMPLE_SITE = REPO / "plugins" / "newsflow" / "sampleworld" / "site"


@dataclass(frozen=True)
class Item:
    key: str              # file name (corpus) or site path (sample world)
    source: str           # corpus | sample
    publisher: str
    title: str
    body: str
    language: str | None
    published_at: datetime
    event: str            # the label: items with one label report one happening
    story: str            # copies of one text share it (the sample world's story key)
    topic: str | None = None  # same-topic group (hard negatives)


# the sample world: path -> (publisher, published UTC, story key, event label)
SAMPLE = {
    "wire/world/middle-east/coalition-says-fewer-than-1000-islamic-state-fighters-remain-2026-11-20.html":
        ("Reuters Wire", "2026-11-20T09:14", "isis-count", "isis-count"),
    "wire/world/middle-east/coalition-jets-strike-islamic-state-hideouts-in-syrias-deir-el-zor-2026-11-22.html":
        ("Reuters Wire", "2026-11-22T13:47", "deir-el-zor", "deir-el-zor"),
    "wire/markets/bank-of-canada-cuts-key-rate-to-2-signals-end-of-easing-2026-11-18.html":
        ("Reuters Wire", "2026-11-18T15:05", "boc-rate", "boc-rate"),
    "nbc/world/isis-fewer-than-1000-fighters-iraq-syria-coalition-rcna184230.html":
        ("NBC News", "2026-11-20T12:02", "isis-count", "isis-count"),
    "nbc/business/economy/bank-canada-cuts-interest-rates-tariffs-exports-rcna183912.html":
        ("NBC News", "2026-11-18T16:20", "boc-rate", "boc-rate"),
    "nbc/tech/gadgets/lumen-labs-halo-smart-glasses-translate-conversations-rcna183770.html":
        ("NBC News", "2026-11-19T16:30", "lumen-halo", "lumen-halo"),
    "times/article/islamic-state-reduced-to-a-few-hundred-fighters-k7w2q9dxn.html":
        ("The Sunday Times", "2026-11-21T22:30", "isis-count", "isis-count"),
    "times/article/kingsbridge-rovers-2-hallam-city-1-okonkwo-double-sends-rovers-top-p3x8m1zrt.html":
        ("The Sunday Times", "2026-11-21T17:25", "rovers-hallam", "rovers-hallam"),
    "herald/news/2026/11/20/coalition-islamic-state-strength-below-1000.html":
        ("The Daily Herald", "2026-11-20T18:20", "herald-isis", "isis-count"),
    "herald/weather/2026/11/21/storm-isolde-power-cuts-flood-warnings.html":
        ("The Daily Herald", "2026-11-21T06:45", "storm-isolde", "storm-isolde"),
    "digest/posts/2026/11/caliphate-last-thousand.html":
        ("NewsDigest", "2026-11-21T22:40", "isis-count", "isis-count"),
    "digest/posts/2026/11/week-in-five-stories-47.html":
        ("NewsDigest", "2026-11-22T18:00", "digest-week-47", "digest-week-47"),
}
SAMPLE_PUBLISHERS = sorted({p for p, *_ in SAMPLE.values()})


def _extract(html: bytes, url: str | None):
    from newsflow.config import Settings
    from newsflow.extract import extract_html

    return extract_html(html, url, Settings().max_extract_bytes, search_date=False)


def sample_items() -> list[Item]:
    items = []
    for path, (publisher, when, story, event) in SAMPLE.items():
        html = (SAMPLE_SITE / path).read_text(encoding="utf-8").replace("{{BASE}}", "http://127.0.0.1:1")
        doc = _extract(html.encode(), "http://127.0.0.1:1/" + path)
        items.append(Item(path, "sample", publisher, doc.title or "", doc.body or doc.text or "", doc.language or "en",
                          datetime.fromisoformat(when).replace(tzinfo=timezone.utc), event, story))
    return items


def corpus_items(hour: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)) -> list[Item]:
    """The real pages, all at one hour (every pair is in the window); [] when absent."""
    if not CORPUS.is_dir():
        return []
    from dedup_dataset import TOPICS

    topic_of = {name: topic for topic, names in TOPICS.items() for name in names}
    items = []
    for path in sorted(glob.glob(str(CORPUS / "*.html"))):
        name = os.path.basename(path)[: -len(".html")]
        doc = _extract(Path(path).read_bytes(), None)
        body = doc.body or doc.text or ""
        if len(body.split()) < 50:
            continue
        items.append(Item(name, "corpus", name.split(".")[0], (doc.title or "").strip(), body, doc.language,
                          hour, "corpus:" + name, "corpus:" + name, topic_of.get(name)))
    return items


# Hand-written texts (invented, like the sample world): same-day different happenings of one
# kind (two central banks, two earthquakes) and independent write-ups of one happening (the
# ECB decision twice; a fire told three ways, the third bridging the other two). Also used
# by tests/test_events.py.
ECB = ("ECB holds rates at 2.25% as Lagarde warns on euro strength",
       "The European Central Bank kept its deposit rate at 2.25% on Thursday, President Christine Lagarde said "
       "in Frankfurt, adding that a stronger euro was weighing on exporters in Germany and Italy.\n"
       "The Governing Council voted unanimously, and markets now price a 35% chance of a cut in June.")
BOE = ("Bank of England holds rates at 4% as Bailey flags sticky inflation",
       "The Bank of England kept Bank Rate at 4% on Thursday, Governor Andrew Bailey said in London, "
       "warning that services inflation in Britain remained stubborn at 5.1%.\n"
       "The Monetary Policy Committee split 7-2, with two members voting for a cut to 3.75%.")
QUAKE_1 = ("Magnitude 6.1 earthquake strikes off Hokkaido, no tsunami warning",
           "A magnitude 6.1 earthquake struck off the coast of Hokkaido in northern Japan on Thursday, the "
           "Japan Meteorological Agency said, shaking buildings in Kushiro but causing no major damage.\n"
           "No tsunami warning was issued; the quake hit at a depth of 48 km.")
QUAKE_2 = ("Magnitude 5.8 earthquake shakes central Chile, buildings evacuated",
           "A magnitude 5.8 earthquake shook central Chile on Thursday, the National Seismological Center "
           "said, prompting the evacuation of offices in Santiago and Valparaiso.\n"
           "There were no immediate reports of casualties; the quake struck at a depth of 96 km.")
ECB_AGAIN = ("Lagarde's ECB leaves deposit rate at 2.25%, eyes euro",
             "Christine Lagarde's European Central Bank left borrowing costs unchanged, with the deposit "
             "rate at 2.25%, after a meeting in Frankfurt on Thursday.\nTraders see a 35% chance of a "
             "June cut; exporters in Germany and Italy complain about the euro.")
FIRE_A = ("Harbour fire destroys 14 Port Alder warehouses",
          "A fire at Port Alder destroyed 14 warehouses on Tuesday, Mayor Ines Calloway said. Firefighters from "
          "Kestrel County fought the blaze for 11 hours before it was brought under control.")
FIRE_C = ("Kestrel County evacuates 350 homes as smoke spreads from Alder Basin",
          "Officials in Kestrel County ordered 350 households to leave on Tuesday as smoke spread across the "
          "basin, Fire Chief Tomas Reyna said. The evacuation covers 62 streets east of the river.")
FIRE_B = ("Port Alder warehouse fire forces 350 evacuations in Kestrel County",
          "Mayor Ines Calloway said 14 warehouses burned at Port Alder on Tuesday, and Fire Chief Tomas Reyna "
          "said 350 households in Kestrel County were told to leave; the evacuation covers 62 streets. "
          "Firefighters fought the blaze for 11 hours.")

HANDWRITTEN_DAY = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)
# (text, event label, hours after HANDWRITTEN_DAY)
HANDWRITTEN = [(ECB, "ecb", 0), (BOE, "boe", 1), (QUAKE_1, "quake-japan", 2), (QUAKE_2, "quake-chile", 3),
               (ECB_AGAIN, "ecb", 5), (FIRE_A, "fire", 0), (FIRE_C, "fire", 2), (FIRE_B, "fire", 3)]


def handwritten_items() -> list[Item]:
    return [Item(f"hand:{i}", "hand", f"Outlet {i}", title, body, "en",
                 HANDWRITTEN_DAY + timedelta(hours=hours), event, f"hand:{i}")
            for i, ((title, body), event, hours) in enumerate(HANDWRITTEN)]
