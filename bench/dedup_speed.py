"""Micro-benchmark of the dedup hot path (no corpus needed).

    PYTHONPATH=plugins .venv/bin/python bench/dedup_speed.py

Synthetic texts (seeded pseudo-words) of typical article lengths; prints the time of
each step of ``fingerprint`` and of one exact verification (``similarity``). When the
``rensa`` package is installed (it is not a dependency: see docs/dedup.md, "MinHash from
a library"), the time of its RMinHash and CMinHash over the same shingle hashes too.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

from newsflow import dedup  # noqa: E402
from newsflow.config import Settings  # noqa: E402


def text_of(words: int, rng: random.Random) -> str:
    syllables = ["ka", "lo", "mi", "ner", "tu", "sa", "vel", "dor", "pi", "an", "reth", "ul"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(5000)]
    return " ".join(rng.choice(vocab) for _ in range(words))


def per_call(fn, repeat: int, rounds: int = 5) -> float:
    """ms per call: the best of ``rounds`` rounds (on a shared machine the others measure
    the neighbours' load)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / repeat * 1e3


def main() -> None:
    settings = Settings()
    rng = random.Random(1)
    print(f"num_perm={settings.dedup_num_perm} bands={settings.dedup_bands}x{settings.dedup_rows}")
    try:
        import numpy as np
        import rensa
    except ImportError:
        rensa = None
    print("| words | shingle hashing ms | minhash ms | bands ms | passage sketch ms | fingerprint ms | "
          "similarity ms | fingerprints/s | rensa RMinHash ms | rensa CMinHash ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for words in (300, 700, 2000, 8000):
        text = text_of(words, rng)
        other = text_of(words, rng)
        sh = dedup.shingle_hashes(text, settings.dedup_shingle_size)
        sh2 = dedup.shingle_hashes(other, settings.dedup_shingle_size)
        mh = dedup.minhash(sh, settings.dedup_num_perm)
        repeat = max(20, 20000 // words)
        t_sh = per_call(lambda text=text: dedup.shingle_hashes(text, settings.dedup_shingle_size), repeat)
        t_mh = per_call(lambda sh=sh: dedup.minhash(sh, settings.dedup_num_perm), repeat)
        t_b = per_call(lambda mh=mh: dedup.band_hashes(mh, settings.dedup_bands, settings.dedup_rows),
                       repeat)
        seq = dedup.shingle_sequence(text, settings.dedup_shingle_size)
        t_p = per_call(lambda seq=seq: dedup.passage_hashes(seq, settings.dedup_shingle_size), repeat)
        t_fp = per_call(lambda text=text: dedup.fingerprint(text, settings), repeat)
        t_sim = per_call(lambda sh=sh, sh2=sh2: dedup.similarity(sh, sh2), repeat)
        t_r = t_c = float("nan")
        if rensa is not None:
            flat = np.asarray(sh, dtype=np.int64).view(np.uint64)
            rows = np.array([0, len(flat)], dtype=np.uint64)
            n = settings.dedup_num_perm
            t_r = per_call(lambda flat=flat, rows=rows, n=n: rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                flat, rows, n, 1).to_rows(), repeat)
            t_c = per_call(lambda flat=flat, n=n: rensa.CMinHash.digests64_from_token_hash_sets([flat.tolist()], n, 1), repeat)
        print(f"| {words} | {t_sh:.2f} | {t_mh:.2f} | {t_b:.3f} | {t_p:.3f} | {t_fp:.2f} | {t_sim:.3f} | "
              f"{1e3 / t_fp:.0f} | {t_r:.3f} | {t_c:.3f} |")


if __name__ == "__main__":
    main()
