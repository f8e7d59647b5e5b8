"""Extraction quality on a public benchmark with ground-truth texts: the pipeline's body
(newsflow.extract) against trafilatura's defaults and its precision/recall settings.

Benchmark: Zyte/ScrapingHub's article-extraction-benchmark (181 news and blog pages with
a hand-checked articleBody each; github.com/scrapinghub/article-extraction-benchmark).
Its files are not in this repository; point --dir at a checkout (html/*.html.gz,
ground-truth.json, evaluate.py). Scores come from the benchmark's own evaluate.py
(token 4-gram shingle precision/recall/F1, micro-averaged over pages).

    PYTHONPATH=plugins .venv/bin/python bench/extraction_bench.py --dir /path/to/checkout
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
    parser.add_argument("--dir", type=Path, required=True, help="article-extraction-benchmark checkout")
    args = parser.parse_args()
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

    methods = {
        "newsflow body (extract_page)": pipeline,
        "trafilatura defaults": trafilatura_with(),
        "trafilatura favor_precision": trafilatura_with(favor_precision=True),
        "trafilatura favor_recall": trafilatura_with(favor_recall=True),
    }
    print(f"| method | precision | recall | F1 | accuracy |\n|---|---|---|---|---|")
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


if __name__ == "__main__":
    main()
