"""Extraction quality against ground truth: the pipeline's body (newsflow.extract) against
trafilatura's defaults and its precision/recall settings.

--realworld: trafilatura's own real-world page assertions (tests/data/realworld_snippets.json)
plus newsflow's furniture annotations, over ../shared/corpus/pages: how many wanted
snippets each keeps and how many unwanted ones it leaves out.

Benchmark: Zyte/ScrapingHub's article-extraction-benchmark (181 news and blog pages with
a hand-checked articleBody each; github.com/scrapinghub/article-extraction-benchmark).
Its files are not in this repository; point --dir at a checkout (html/*.html.gz,
ground-truth.json, evaluate.py). Scores come from the benchmark's own evaluate.py
(token 4-gram shingle precision/recall/F1, micro-averaged over pages).

    PYTHONPATH=plugins .venv/bin/python bench/extraction_bench.py --dir /path/to/checkout
    PYTHONPATH=plugins .venv/bin/python bench/extraction_bench.py --realworld
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="article-extraction-benchmark checkout")
    parser.add_argument("--realworld", action="store_true", help="trafilatura's real-world page assertions")
    args = parser.parse_args()
    if args.realworld:
        return realworld()
    if args.dir is None:
        parser.error("--dir or --realworld")
    if not (args.dir / "ground-truth.json").is_file():
        sys.exit(f"{args.dir}: no ground-truth.json (a checkout of scrapinghub/article-extraction-benchmark)")
    spec = importlib.util.spec_from_file_location("aeb_evaluate", args.dir / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)

    import trafilatura

    from newsflow.config import Settings
    from newsflow.extract import extract_page
    from newsflow.models import ExtractJob

    truth = json.loads((args.dir / "ground-truth.json").read_text("utf-8"))
    pages = {key: gzip.decompress((args.dir / "html" / f"{key}.html.gz").read_bytes()) for key in truth}
    settings = Settings(min_body_chars=0)

    def pipeline(html: bytes, url: str) -> str:
        return extract_page(ExtractJob(html, url, search_date=False), settings).body or ""

    def trafilatura_with(**options):
        return lambda html, url: trafilatura.extract(html, url=url, **options) or ""

    def without_furniture_pass(html: bytes, url: str) -> str:
        from newsflow.extract import extract_html
        from newsflow.normalize import clean_text, drop_leading_title

        doc = extract_html(html, url, settings.max_extract_bytes, False, strip=False)
        return drop_leading_title(clean_text(doc.text or ""), [doc.title])

    methods = {
        "newsflow body (extract_page)": pipeline,
        "pipeline body without the furniture pass": without_furniture_pass,
        "trafilatura defaults": trafilatura_with(),
        "trafilatura favor_precision": trafilatura_with(favor_precision=True),
        "trafilatura favor_recall": trafilatura_with(favor_recall=True),
    }
    print("| method | precision | recall | F1 | accuracy |\n|---|---|---|---|---|")
    for name, extract in methods.items():
        scores, accuracy = [], []
        for key, html in pages.items():
            true = truth[key].get("articleBody", "")
            pred = extract(html, truth[key].get("url") or f"https://{key}.test/")
            scores.append(evaluate.string_shingle_matching(true=true, pred=pred))
            accuracy.append(evaluate.get_accuracy(true=true, pred=pred))
        m = evaluate.metrics_from_tp_fp_fns(scores)
        print(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
              f"{sum(accuracy) / len(accuracy):.3f} |", flush=True)


def realworld() -> None:
    import trafilatura
    from charset_normalizer import detect

    from newsflow.config import Settings
    from newsflow.extract import extract_html, extract_page
    from newsflow.models import ExtractJob
    from newsflow.normalize import clean_text

    repo = Path(__file__).resolve().parent.parent
    corpus = repo.parent / "shared" / "corpus" / "pages"
    if not corpus.is_dir():
        sys.exit(f"{corpus} absent")
    data = json.loads((repo / "tests" / "data" / "realworld_snippets.json").read_text("utf-8"))
    wanted = [a for a in data["assertions"] if a["wanted"]]
    unwanted = [a for a in data["assertions"] if not a["wanted"]]
    furniture = data["newsflow_unwanted"]
    settings = Settings(min_body_chars=0)

    def html(page: str):
        raw = (corpus / page).read_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            encoding = detect(raw)["encoding"]
            return raw.decode(encoding) if encoding else raw

    def trafilatura_with(**options):
        return lambda page: trafilatura.extract(html(page), record_id="0000", fast=False, **options) or ""

    methods = {
        "trafilatura defaults": trafilatura_with(),
        "trafilatura defaults, comments off": trafilatura_with(include_comments=False),
        "trafilatura favor_precision": trafilatura_with(favor_precision=True),
        "trafilatura favor_recall": trafilatura_with(favor_recall=True),
        "pipeline without the furniture pass": lambda page: clean_text(extract_html(
            (corpus / page).read_bytes(), f"https://{page}", settings.max_extract_bytes, False,
            strip=False).text or ""),
        "newsflow body (extract_page)": lambda page: extract_page(ExtractJob(
            (corpus / page).read_bytes(), f"https://{page}", search_date=False), settings).body or "",
    }
    pages = sorted({a["page"] for a in data["assertions"] + furniture})
    print(f"| method | wanted kept (of {len(wanted)}) | trafilatura's unwanted left out (of {len(unwanted)}) "
          f"| furniture left out (of {len(furniture)}) | boilerplate precision |\n|---|---|---|---|---|")
    for name, extract in methods.items():
        text = {page: extract(page) for page in pages}
        kept = sum(a["snippet"] in text[a["page"]] for a in wanted)
        out = sum(a["snippet"] not in text[a["page"]] for a in unwanted)
        gone = sum(a["snippet"] not in text[a["page"]] for a in furniture)
        print(f"| {name} | {kept} | {out} | {gone} | {(out + gone) / (len(unwanted) + len(furniture)):.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
