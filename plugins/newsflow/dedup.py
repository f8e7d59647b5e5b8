"""Near-duplicate (syndication) detection: which articles are the same story.

"Same story" means the same *text* republished: a wire story run by several outlets
with their own boilerplate, a rewritten headline, a dateline added or removed, the tail
trimmed, a paragraph dropped or moved, an editor's note, or an aggregator quoting a few
paragraphs with its own commentary.  Independent write-ups of the same event, and
follow-ups that reuse one background paragraph, are *different* stories.

Method (details, thresholds and measured figures in ``docs/dedup.md``):

1. ``fingerprint``: normalise (NFKC, casefold), tokenise (unicode ``\\w+`` runs, CJK
   ideographs one token each), hash word ``k``-gram shingles with xxhash64 to signed
   int64; MinHash them (universal hashing ``(a*x + b) mod (2**61 - 1)``, vectorised with
   numpy in preallocated blocks, coefficients derived from xxhash of a fixed seed so
   signatures are identical in every process, version and machine); LSH band hashes =
   xxhash64 of each band's ``rows`` MinHash values, as signed int64; and the passage
   sketch (``passage_hashes``: winnowed passage grams, shared by any two texts with a
   verbatim run of ``PASSAGE_RUN`` shingles in common, however different as a whole).
2. ``assign``: the index returns articles sharing at least one (band, hash) pair or
   one passage-sketch value (a quoted passage of a long article); the
   candidate *stories* are verified exactly on the stored shingle sets **against each
   story's representative** (its first member), never merely against some member, so
   stories do not chain (A~B, B~C does not put C with A).
3. ``same_story``: containment ``|A∩B|/min(|A|,|B|) >= dedup_containment`` or Jaccard
   ``>= dedup_jaccard``; when either text has fewer than ``dedup_min_shingles``
   shingles, only Jaccard ``>= 0.9`` counts (tiny texts would be "contained" in anything).

Everything here is pure and deterministic; ``MemoryIndex`` is the in-memory
``StoryIndex`` used by tests and the evaluation, the PostgreSQL one lives in
``newsflow.storage.dedup_index``. Over 450 lines on purpose: fingerprint, candidate
look-up and verification are one method whose parts share their constants and must change
together (a change here is a scheme change, docs/dedup.md); the quote-credit rule is part of
the verification.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Protocol, Sequence

import numpy as np
import xxhash

from .config import Settings
from .credit import credits
from .models import SIGNATURE_SCHEME, Fingerprint, Member  # noqa: F401 (re-exported)

__all__ = [
    "Fingerprint", "Member", "Assignment", "StoryIndex", "MemoryIndex",
    "fingerprint", "tokens", "shingle_hashes", "minhash", "band_hashes",
    "similarity", "same_story", "relation", "assign", "cluster", "quoted_run", "shingle_sequence", "quote_credit", "QuoteCredit",
    "passage_hashes", "SMALL_TEXT_JACCARD", "COPY_JACCARD", "PASSAGE_RUN",
]


@dataclass(frozen=True)
class Assignment:
    """Which story a new text joins (``story_id`` None: a new story) and how."""
    story_id: int | None
    relation: str  # 'original' | 'copy' | 'excerpt' | 'update'
    matched_article_id: int | None  # the story's representative it was verified against
    jaccard: float
    containment: float
    # the evidence that decided: 'containment', 'jaccard', 'small_text_jaccard' or
    # 'credited_quote' (value: the quoted run in shingles); None for a new story
    signal: str | None = None
    signal_value: float | None = None


MERSENNE_PRIME = (1 << 61) - 1
EMPTY_MINHASH = MERSENNE_PRIME  # MinHash value of an empty shingle set (never a real one)
SMALL_TEXT_JACCARD = 0.9  # texts below dedup_min_shingles match only this similar
COPY_JACCARD = 0.6  # relation 'copy' at or above this Jaccard against the representative
_SEED = b"newsflow-minhash-v1"  # changing it changes every stored signature (bump models.SIGNATURE_SCHEME)
_ANCHOR_SLACK = 3  # shingles between a dateline and the start of the quotation it credits
# The passage sketch (``passage_hashes``) guarantees retrieval of a passage quoted verbatim
# over at least this many consecutive shingles: the default NEWSFLOW_DEDUP_QUOTE_RUN, the
# run the verification asks of a credited excerpt. Part of the signature scheme (changing
# it changes every stored sketch: bump models.SIGNATURE_SCHEME).
PASSAGE_RUN = 40
_PASSAGE_GRAMS = 3  # a passage gram: 3 disjoint shingles (15 words at k=5)
_PASSAGE_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_CHUNK = 256  # shingles per MinHash block: the work areas stay in cache (measured fastest)

_U64 = np.uint64
_MASK61 = _U64(MERSENNE_PRIME)
_MASK31 = _U64((1 << 31) - 1)
_MASK30 = _U64((1 << 30) - 1)

# CJK scripts are written without spaces: one token per ideograph/kana instead of a
# whole sentence as one "word".  Everything else: maximal runs of unicode \w.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w)+")
_CJK_RE = re.compile(rf"[{_CJK}]")
_WORD_RE = re.compile(r"\w+")


# --------------------------------------------------------------------------- types


class StoryIndex(Protocol):
    def candidates(self, bands: Sequence[int], passages: Sequence[int] = ()) -> list[Member]:
        """Indexed articles sharing >= 1 (band index, band hash) pair, or >= 1 passage
        hash (``Fingerprint.passages``) that at most ``dedup_passage_max_texts`` indexed
        articles share, inside the window."""
        ...

    def representative(self, story_id: int) -> Member:
        """The story's first member; raises LookupError (e.g. KeyError) when it is no
        longer available, and the story is then not joined."""
        ...

    def order(self, story_id: int) -> int:
        """Tie-break between equally similar stories: the lower wins. The story id,
        unless the index knows a better order (the rebuild's content order)."""
        ...


# --------------------------------------------------------------------- fingerprint


def tokens(text: str) -> list[str]:
    """Normalised tokens: NFKC, casefolded, unicode word runs (CJK: per character)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    # without CJK the per-character rule never applies, and plain \w+ (the same tokens)
    # is twice as fast as the pattern with its look-ahead
    return _TOKEN_RE.findall(text) if _CJK_RE.search(text) else _WORD_RE.findall(text)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def shingle_sequence(text: str, k: int) -> np.ndarray:
    """Signed-int64 xxhash64 of the word ``k``-grams of ``text``, in text order.

    A text with fewer than ``k`` tokens (but at least one) is one shingle of all of
    them; a text without any token has no shingle.
    """
    if k < 1:
        raise ValueError("shingle size must be >= 1")
    toks = tokens(text)
    if not toks:
        return np.empty(0, dtype=np.int64)
    # tokens encoded once and joined as bytes: the same values as encoding each
    # " ".join(gram), in half the time
    encoded = [t.encode("utf-8") for t in toks]
    join = b" ".join
    if len(encoded) < k:
        grams = [join(encoded)]
    else:
        grams = [join(encoded[i:i + k]) for i in range(len(encoded) - k + 1)]
    return np.fromiter(map(xxhash.xxh64_intdigest, grams), dtype=_U64, count=len(grams)).view(np.int64)


def shingle_hashes(text: str, k: int) -> tuple[int, ...]:
    """Sorted unique signed-int64 xxhash64 of the word ``k``-grams of ``text``."""
    return tuple(np.unique(shingle_sequence(text, k)).tolist())


@lru_cache(maxsize=8)
def _coefficients(num_perm: int) -> tuple[np.ndarray, ...]:
    """``a`` in [1, p-1] and ``b`` in [0, p-1] per permutation, from xxhash of a fixed
    seed: no dependence on numpy's random streams, so stable across versions. Returned
    as columns: (a, a_hi, 2*a_hi, a_lo, b) with a = a_hi*2**31 + a_lo (see ``minhash``)."""
    p = MERSENNE_PRIME
    a = [xxhash.xxh64_intdigest(_SEED + b":a:%d" % i) % (p - 1) + 1 for i in range(num_perm)]
    b = [xxhash.xxh64_intdigest(_SEED + b":b:%d" % i) % p for i in range(num_perm)]
    a_col = np.array(a, dtype=_U64)[:, None]
    a_hi = a_col >> _U64(31)
    return a_col, a_hi, a_hi << _U64(1), a_col & _MASK31, np.array(b, dtype=_U64)[:, None]


def _mod_p(x: np.ndarray) -> np.ndarray:
    """x mod (2**61 - 1) for uint64 x < 2**64 (one fold + one conditional subtraction)."""
    x = (x & _MASK61) + (x >> _U64(61))
    return np.where(x >= _MASK61, x - _MASK61, x)


_scratch = threading.local()  # per-thread work areas of (num_perm, _CHUNK): no temporaries


def _work_areas(num_perm: int) -> list[np.ndarray]:
    areas = getattr(_scratch, "areas", None)
    if areas is None or areas[0].shape[0] != num_perm:
        areas = _scratch.areas = [np.empty((num_perm, _CHUNK), dtype=_U64) for _ in range(3)]
    return areas


def minhash(shingles: Sequence[int], num_perm: int) -> tuple[int, ...]:
    """MinHash signature of a shingle-hash set: ``num_perm`` values in [0, 2**61-1].

    Each permutation is ``(a*x + b) mod (2**61 - 1)``, computed exactly in uint64: the
    122-bit product is split into 31-bit limbs (a = ah*2**31 + al, x = xh*2**31 + xl,
    ah, xh < 2**30), with 2**61 = 1 and so 2**62 = 2 (mod p):
    a*x = ah*xh*2**62 + (ah*xl + al*xh)*2**31 + al*xl, where 2*ah*xh < 2**61 and
    al*xl < 2**62 need no reduction, and only the middle term is split (at 2**30), so the
    sum stays below 2**64 until one final fold. Limbs of 31 bits rather than 32 take 5
    of 22 array passes per block away (the values are the same; measured in
    docs/dedup.md). The arithmetic runs in place in three preallocated blocks that stay in
    cache."""
    if not len(shingles):
        return (EMPTY_MINHASH,) * num_perm
    _, a_hi, a_hi2, a_lo, b = _coefficients(num_perm)
    x_all = _mod_p(np.asarray(shingles, dtype=np.int64).view(_U64))
    mid_area, total_area, tmp_area = _work_areas(num_perm)
    result = np.full(num_perm, _MASK61, dtype=_U64)
    for start in range(0, len(x_all), _CHUNK):
        x = x_all[start:start + _CHUNK]
        width = len(x)
        x_hi, x_lo = (x >> _U64(31))[None, :], (x & _MASK31)[None, :]
        mid, total, tmp = mid_area[:, :width], total_area[:, :width], tmp_area[:, :width]
        np.multiply(a_hi, x_lo, out=mid)  # mid = ah*xl + al*xh < 2**62 (weight 2**31)
        np.multiply(a_lo, x_hi, out=tmp)
        mid += tmp
        np.right_shift(mid, _U64(30), out=total)  # mid*2**31 = (mid>>30)*2**61 + (mid&M30)*2**31
        mid &= _MASK30
        mid <<= _U64(31)
        total += mid
        np.multiply(a_lo, x_lo, out=mid)  # al*xl < 2**62 (weight 1)
        total += mid
        np.multiply(a_hi2, x_hi, out=tmp)  # 2*ah*xh < 2**61 (weight 2**62 = 2)
        total += tmp
        total += b  # total < 2**63.6: no overflow
        np.right_shift(total, _U64(61), out=tmp)  # fold: now < 2**61 + 12
        total &= _MASK61
        total += tmp
        if total.max() >= _MASK61:  # the final subtraction, needed about once in 2**50
            total[total >= _MASK61] -= _MASK61
        np.minimum(result, total.min(axis=1), out=result)
    return tuple(result.astype(np.int64).tolist())


def band_hashes(signature: Sequence[int], bands: int, rows: int) -> tuple[int, ...]:
    """One signed int64 per band: xxhash64 of the band's ``rows`` values (int64 LE)."""
    if bands < 1 or rows < 1 or bands * rows > len(signature):
        raise ValueError(f"bands*rows ({bands}*{rows}) must be in 1..num_perm ({len(signature)})")
    raw = np.asarray(signature, dtype="<i8").tobytes()
    width = 8 * rows
    return tuple(_signed(xxhash.xxh64_intdigest(raw[i * width:(i + 1) * width]))
                 for i in range(bands))


def passage_hashes(sequence: np.ndarray, k: int) -> tuple[int, ...]:
    """The passage sketch of a text: sorted unique signed int64 hashes such that two texts
    sharing a run of >= ``PASSAGE_RUN`` consecutive shingles (a quoted passage) share at
    least one, however little else they share; the LSH bands only find texts that are
    similar as a whole, and miss a few quoted paragraphs inside long commentary.

    Winnowing (Schleimer et al. 2003): hash each passage gram (``_PASSAGE_GRAMS`` disjoint
    ``k``-shingles, so a single stock phrase is never one on its own), and keep the
    minimum of every window of ``w`` consecutive grams, ``w`` chosen so that a run of
    ``PASSAGE_RUN`` shingles holds a whole window: both texts then keep that window's
    minimum. About 2/(w+1) of the grams are kept (~45 for 700 words). A text too short
    for one window keeps its smallest gram; one too short for a gram has no sketch (the
    bands find short texts)."""
    span = (_PASSAGE_GRAMS - 1) * k  # shingles between a gram's first and last shingle
    n_grams = len(sequence) - span
    if n_grams < 1:
        return ()
    s = sequence.view(_U64)
    with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
        grams = s[:n_grams] * _PASSAGE_MIX[0]
        for i in range(1, _PASSAGE_GRAMS):
            grams ^= s[i * k:i * k + n_grams] * _PASSAGE_MIX[i]
        grams ^= grams >> _U64(31)  # splitmix64's finaliser: every input bit moves the minimum
        grams *= _PASSAGE_MIX[1]
        grams ^= grams >> _U64(29)
    window = PASSAGE_RUN - span
    if n_grams <= window:
        kept = grams.min(keepdims=True)
    else:
        kept = np.lib.stride_tricks.sliding_window_view(grams, window).min(axis=1)
    return tuple(np.unique(kept.view(np.int64)).tolist())


def fingerprint(text: str, settings: Settings) -> Fingerprint:
    sequence = shingle_sequence(text, settings.dedup_shingle_size)
    shingles = tuple(np.unique(sequence).tolist())
    signature = minhash(shingles, settings.dedup_num_perm)
    bands = band_hashes(signature, settings.dedup_bands, settings.dedup_rows)
    return Fingerprint(shingles=shingles, minhash=signature, bands=bands, sequence=tuple(sequence.tolist()),
                       passages=passage_hashes(sequence, settings.dedup_shingle_size))


# ---------------------------------------------------------------------- similarity


def similarity(a: Sequence[int], b: Sequence[int]) -> tuple[float, float]:
    """(Jaccard, containment) of two shingle-hash sets; containment = |A∩B|/min(|A|,|B|).

    Empty sets are similar to nothing: (0.0, 0.0)."""
    sa, sb = (a if isinstance(a, (set, frozenset)) else set(a),
              b if isinstance(b, (set, frozenset)) else set(b))
    if not sa or not sb:
        return 0.0, 0.0
    inter = len(sa & sb) if len(sa) <= len(sb) else len(sb & sa)
    union = len(sa) + len(sb) - inter
    return inter / union, inter / min(len(sa), len(sb))


def _decide(jaccard: float, containment: float, smaller: int, settings: Settings) -> bool:
    if smaller == 0:
        return False
    if smaller < settings.dedup_min_shingles:
        return jaccard >= SMALL_TEXT_JACCARD
    return containment >= settings.dedup_containment or jaccard >= settings.dedup_jaccard


def same_story(a: Sequence[int], b: Sequence[int], settings: Settings) -> tuple[bool, float, float]:
    """(same story?, Jaccard, containment) for two shingle-hash sets."""
    sa, sb = set(a), set(b)
    jaccard, containment = similarity(sa, sb)
    return _decide(jaccard, containment, min(len(sa), len(sb)), settings), jaccard, containment


# ---------------------------------------------------------------------- assignment


def relation(member: Sequence[int], representative: Sequence[int]) -> tuple[str, float, float]:
    """(relation, jaccard, containment) of a story member to the story's representative."""
    jaccard, containment = similarity(member, representative)
    return _relation(jaccard, len(set(member)), len(set(representative))), jaccard, containment


def _relation(jaccard: float, new_size: int, rep_size: int) -> str:
    if jaccard >= COPY_JACCARD:
        return "copy"
    return "excerpt" if new_size <= rep_size else "update"


def quoted_run(sequence: Sequence[int], other: set[int] | frozenset[int],
               near: tuple[int, int] | None = None) -> int:
    """The longest run of consecutive shingles of a text (in text order) that are all in
    ``other``: a passage quoted verbatim, as opposed to overlap scattered over the text
    (shared names, figures, stock phrases). ``near``: only a run that starts within a
    few shingles of these token positions counts (a quotation that begins at a
    dateline: at its place name when the source has the same dateline, after it when not)."""
    best = run = 0
    for position, shingle in enumerate(sequence):
        if shingle in other:
            run += 1
            begun = position - run + 1
            if near is None or near[0] - _ANCHOR_SLACK <= begun <= near[1] + _ANCHOR_SLACK:
                best = max(best, run)
        else:
            run = 0
    return best


@dataclass(frozen=True)
class QuoteCredit:
    """The source a text credits for what it quotes (see ``quote_credit``)."""
    name: str
    # the token positions of a dateline (its line's start, its end): the quotation must
    # begin there; None for an attribution
    anchor: tuple[int, int] | None


def quote_credit(text: str) -> QuoteCredit | None:
    """How a text credits quoted material, if it does.

    An attribution ("Via Reuters", "Source: AFP", "according to AP", "first published
    by dpa") vouches for a quotation anywhere in the text. A dateline ("BERLIN (Reuters)
    -") is also an agency's own byline: an agency's next-day story carries it too, with
    one background paragraph of its earlier story somewhere below. So a dateline counts
    only for a quotation that begins right at it, as when an aggregator pastes the
    wire's lede, dateline and all, under its own introduction."""
    found = credits(text)
    if not found:
        return None
    attribution = [c for c in found if c.kind != "dateline"]
    if attribution:
        return QuoteCredit(attribution[0].name, None)
    dateline = found[0]
    line_start = text.rfind("\n", 0, dateline.start) + 1
    return QuoteCredit(dateline.name, (len(tokens(text[:line_start])), len(tokens(text[:dateline.end]))))


def _signal(jaccard: float, containment: float, smaller: int, settings: Settings) -> str:
    """Which threshold a verified pair passed (the evidence kept on the article row)."""
    if smaller < settings.dedup_min_shingles:
        return "small_text_jaccard"
    return "containment" if containment >= settings.dedup_containment else "jaccard"


def assign(fp: Fingerprint, index: StoryIndex, settings: Settings,
           credit: QuoteCredit | None = None) -> Assignment:
    """Story for a new article, or None for a new story.

    Every story with a candidate member is verified against its *representative*
    (no chaining through other members).  Among passing stories the best is the one
    with the highest containment, then Jaccard, then the lowest ``index.order``.  The
    returned scores and ``matched_article_id`` are those of that representative; a new
    story gets relation 'original' and scores 0.0.

    ``credit``: how the text credits what it quotes (``quote_credit``). An aggregator
    that quotes a story and credits it ("Via Reuters", "according to AP") adds its own
    commentary, so its containment can fall below the copy threshold, as low as a
    follow-up's that reuses one background paragraph. A credited text therefore also
    joins as an ``excerpt`` when it quotes one passage of the representative verbatim
    (``quoted_run`` >= ``dedup_quote_run`` shingles, beginning at the dateline when the
    credit is one) and containment is at least ``dedup_quote_containment``; a follow-up
    without an attribution never does.
    """
    new_set = set(fp.shingles)
    if not new_set:
        return Assignment(None, "original", None, 0.0, 0.0)
    story_ids = sorted({m.story_id for m in index.candidates(fp.bands, fp.passages)})
    best = None
    for story_id in story_ids:
        try:
            rep = index.representative(story_id)
        except LookupError:  # representative no longer available (left the window)
            continue
        rep_set = set(rep.shingles)
        jaccard, containment = similarity(new_set, rep_set)
        smaller = min(len(new_set), len(rep_set))
        if _decide(jaccard, containment, smaller, settings):
            signal, value, rank = _signal(jaccard, containment, smaller, settings), containment, 0
        elif (credit and fp.sequence and smaller >= settings.dedup_min_shingles
              and containment >= settings.dedup_quote_containment):
            run = quoted_run(fp.sequence, rep_set, credit.anchor)
            if run < settings.dedup_quote_run:
                continue
            signal, value, rank = "credited_quote", float(run), 1
        else:
            continue
        key = (rank, -containment, -jaccard, index.order(story_id))
        if best is None or key < best[0]:
            best = (key, rep, jaccard, containment, signal, value)
    if best is None:
        return Assignment(None, "original", None, 0.0, 0.0)
    _, rep, jaccard, containment, signal, value = best
    relation = "excerpt" if signal == "credited_quote" else _relation(jaccard, len(new_set), len(set(rep.shingles)))
    return Assignment(story_id=rep.story_id, relation=relation, matched_article_id=rep.article_id,
                      jaccard=jaccard, containment=containment, signal=signal, signal_value=value)


class MemoryIndex:
    """In-memory StoryIndex (no time window): for the evaluation and tests.
    ``passage_max_texts``: settings.dedup_passage_max_texts."""

    def __init__(self, passage_max_texts: int = Settings.dedup_passage_max_texts) -> None:
        self.passage_max_texts = passage_max_texts
        self._buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        self._passages: dict[int, list[int]] = defaultdict(list)
        self._members: dict[int, Member] = {}
        self._representatives: dict[int, Member] = {}

    def add(self, article_id: int, story_id: int, fp: Fingerprint) -> None:
        """Index an article; the first article added to a story is its representative."""
        if article_id in self._members:
            raise ValueError(f"article {article_id} is already indexed")
        member = Member(article_id=article_id, story_id=story_id, shingles=fp.shingles)
        self._members[article_id] = member
        self._representatives.setdefault(story_id, member)
        for band, value in enumerate(fp.bands):
            self._buckets[(band, value)].append(article_id)
        for value in fp.passages:
            self._passages[value].append(article_id)

    def candidates(self, bands: Sequence[int], passages: Sequence[int] = ()) -> list[Member]:
        found: set[int] = set()
        for band, value in enumerate(bands):
            found.update(self._buckets.get((band, value), ()))
        for value in passages:
            posting = self._passages.get(value, ())
            if len(posting) <= self.passage_max_texts:
                found.update(posting)
        return [self._members[article_id] for article_id in sorted(found)]

    def representative(self, story_id: int) -> Member:
        return self._representatives[story_id]

    def order(self, story_id: int) -> int:
        return story_id

    def __len__(self) -> int:
        return len(self._members)


def cluster(docs: Iterable[tuple[str, str]], settings: Settings) -> dict[str, int]:
    """doc_key -> story id for (doc_key, text) pairs.

    Documents are processed in key order (callers use keys that sort by publication
    time), so the result does not depend on the input order; story ids are 1..n in
    creation order.  Duplicate keys are an error (their order would be arbitrary).
    """
    items = sorted(docs, key=lambda item: item[0])
    index = MemoryIndex(settings.dedup_passage_max_texts)
    result: dict[str, int] = {}
    next_story = 1
    for article_id, (key, text) in enumerate(items, start=1):
        if key in result:
            raise ValueError(f"duplicate document key: {key!r}")
        fp = fingerprint(text, settings)
        story_id = assign(fp, index, settings, quote_credit(text)).story_id
        if story_id is None:
            story_id, next_story = next_story, next_story + 1
        index.add(article_id, story_id, fp)
        result[key] = story_id
    return result
