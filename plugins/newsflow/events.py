"""Events: every outlet's coverage of one happening, above stories.

A *story* (``newsflow.stories``) is one text and its copies; an *event* is one happening
(a statement, a vote, a crash, a match, a rate decision) reported independently by
several outlets: several stories. What counts as the same event, with examples:
docs/events.md. Precision first: a wrong merge is worse than a missed one.

Stages, top to bottom:

1. :func:`signature` (pure): from a story's representative article, its title + lede
   content words, its named entities (capitalised phrases) and its numbers;
2. :func:`compare` (pure): the signals of two signatures (lexical cosine, shared
   entities and numbers, how rare those are in the window, hours apart), their probability
   of one happening (a logistic model fitted on real articles), and :func:`same_event`,
   the rule;
3. :func:`assign` (in the write transaction): candidates within ±NEWSFLOW_EVENT_WINDOW_HOURS
   found through the GIN index on the stored entity/number keys (``storage.events``), the
   rarity of the story's names in the window, and :func:`joined_events`: the story joins
   the event of its best link, and merges in the events it matches almost surely (it
   bridges them); change-feed rows record every membership change;
4. :func:`rebuild`: every story again in publication order (``newsflow events rebuild``).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Mapping, Sequence

from . import citations, db
from .config import Settings
from .models import Interrupted
from .storage import events as event_store
from .storage.locks import take_write_locks

# --- 1. signatures -------------------------------------------------------------------------

_STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my no nor not now of off on once only or other our ours out over
own same she should so some such than that the their theirs them then there these they this
those through to too under until up very was we were what when where which while who whom why
will with would you your yours said says say saying told tells new year years week day days
monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow last first
one two three four five six seven eight nine ten since still least less many much amid
der die das und ist nicht mit von den dem des ein eine einer eines im zu auf für sich auch
als wie bei nach aus sie es hat sind war wird werden oder aber noch nur am um über vor
le la les un une des du de et est pas pour dans sur qui que au aux par avec ce cette son sa ses
il elle ils ont été sont plus
""".split())
# capitalised words that open sentences or name times, never entities on their own
_NOT_ENTITIES = frozenset("""
the a an this that these those it its he she they we i in on at for from by with as but and or
if when while after before since though although despite some many most more other another such
what which who whose where why how there here our their his her my your one two three
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
saturday sunday mr mrs ms dr colonel general read also update updated editing reporting
der die das ein eine im am es sie er wir ich le la les un une il elle nous
""".split())
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# a capitalised phrase: capitalised words, joined by a few lower-case particles
_CAP = r"(?:[A-Z][\w’'\-]*[\w]|[A-Z])"
_ENTITY_RE = re.compile(rf"{_CAP}(?:\s+(?:(?:of|de|del|la|le|von|van|der|al|el|bin|du)\s+)?{_CAP})*")
_NUMBER_RE = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.,])\d+(?:\.\d+)?(?![\w])")
# "BAGHDAD, Nov 20 (Reuters) -": not part of the happening
_DATELINE_RE = re.compile(r"^[A-Z][A-Za-z .,'/\-]{0,40}\d{0,2}\s*\([^()\n]{1,40}\)\s*[-\u2013\u2014]+\s*")


@dataclass(frozen=True)
class Signature:
    """What a story says about its happening (from its representative article)."""
    terms: frozenset[str]       # content words of title + lede (stemmed crudely)
    entities: frozenset[str]    # capitalised phrases (lower case) of title + first paragraphs
    numbers: frozenset[str]     # numbers of title + first paragraphs (years left out)
    language: str = ""
    published_at: datetime | None = None

    def plain_keys(self) -> list[str]:
        """Entities and numbers as look-up keys, without their day ("e:okafor", "n:950")."""
        return sorted({"e:" + e for e in self.entities} | {"n:" + n for n in self.numbers})

    def day(self) -> date | None:
        return self.published_at.astimezone(timezone.utc).date() if self.published_at else None

    def keys(self, days: Sequence[date] = (), plain: Sequence[str] | None = None) -> list[str]:
        """The look-up keys of the GIN index, each with a day ("e:okafor@2026-11-20"), so
        that a look-up reads only the posting lists of the days in the window, however
        common a name is over the years. ``days``: those days (a look-up); none: the
        story's own day (stored). ``plain``: only these of the keys."""
        days = days or [self.day()]
        return [f"{k}@{d.isoformat() if d else ''}" for d in days for k in (plain or self.plain_keys())]


def _stem(word: str) -> str:
    # crude, language-neutral: plural and possessive endings only (fighters ~ fighter)
    for suffix in ("’s", "'s", "ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms_of(text: str) -> frozenset[str]:
    words = (w.lower() for w in _WORD_RE.findall(unicodedata.normalize("NFC", text)))
    return frozenset(_stem(w) for w in words if len(w) >= 3 and w not in _STOPWORDS)


def entities_of(text: str) -> frozenset[str]:
    """Capitalised phrases ("Raymond Okafor", "Islamic State", "SDF"), lower case, without
    possessive endings. A single capitalised word that opens a sentence ("Fewer", "Speaking")
    counts only when it is an acronym; stopwords and date words never count. A person-like
    two-word phrase also gives its last word ("Raymond Okafor" -> "okafor"): later
    mentions and other outlets use the surname alone."""
    found: set[str] = set()
    for match in _ENTITY_RE.finditer(text):
        words = [re.sub(r"['’]s$", "", w) for w in match.group(0).split()]
        opens_sentence = _opens_sentence(text, match.start())
        while words and words[0].lower() in _NOT_ENTITIES:
            words, opens_sentence = words[1:], False  # "The Bank of Canada" -> "Bank of Canada"
        while words and words[-1].lower() in _NOT_ENTITIES:
            words = words[:-1]
        if not words or (len(words) == 1 and opens_sentence and not words[0].isupper()):
            continue
        phrase = " ".join(words).lower()
        if len(phrase) >= 2:
            found.add(phrase)
            last = words[-1].lower()
            if len(words) == 2 and last not in _GENERIC_HEADS and words[0].lower() not in _PARTICLES:
                found.add(last)
    return frozenset(found)


# heads of names that say little alone ("Islamic State" must not give "state")
_GENERIC_HEADS = frozenset("""
state states river forces force city party council office agency bank park labs news times
post group union court house ministry minister department university street square sea ocean
island islands airport station company corporation inc ltd league cup club army police news
""".split())
_PARTICLES = frozenset("of de del la le von van der al el bin du".split())


def _opens_sentence(text: str, start: int) -> bool:
    before = text[max(0, start - 3):start].rstrip(" \t\"“‘'(")
    return not before or before[-1] in ".!?:\n"


def numbers_of(text: str) -> frozenset[str]:
    """Numbers as values ("1,000" -> "1000", "2.0" -> "2"); bare years (1900-2099) and
    one-digit integers are background, not facts of one happening."""
    found: set[str] = set()
    for raw in _NUMBER_RE.findall(text):
        plain = raw.replace(",", "")
        value = float(plain)
        if "," not in raw and "." not in raw and len(raw) == 4 and 1900 <= value <= 2099:
            continue
        if value == int(value):
            if value < 10:
                continue
            found.add(str(int(value)))
        else:
            found.add(repr(value))
    return frozenset(found)


def lede(body: str, chars: int) -> str:
    """The opening of a body, dateline removed: the first paragraph, and more paragraphs
    up to ``chars`` characters."""
    text = _DATELINE_RE.sub("", body.lstrip(), count=1)
    out: list[str] = []
    for paragraph in text.split("\n"):
        if out and sum(len(p) for p in out) + len(paragraph) > chars:
            break
        out.append(paragraph)
    return "\n".join(out)[: max(chars, 1)]


def signature(title: str | None, body: str, *, language: str | None = None,
              published_at: datetime | None = None, lede_chars: int = 400,
              entity_chars: int = 1200) -> Signature:
    title = title or ""
    opening = lede(body, lede_chars)
    facts = title + "\n" + lede(body, entity_chars)
    return Signature(terms=terms_of(title + "\n" + opening), entities=entities_of(facts),
                     numbers=numbers_of(facts), language=base_language(language),
                     published_at=published_at)


def base_language(language: str | None) -> str:
    """'en-GB' -> 'en'; unknown -> '' (compared like any other language: never merged
    with a known one)."""
    return (language or "").replace("_", "-").split("-")[0].lower()


# --- 2. signals and the rule ---------------------------------------------------------------

@dataclass(frozen=True)
class Rarity:
    """How many stories of the window carry each look-up key ("e:okafor", "n:950"), and how
    many stories the window holds, both counting the story being placed. A name carried by
    few stories of the window says more than one carried by many ("Jamal Williams" against
    "San Diego"). From news.event_keys in production, from the evaluated set in the benches."""
    counts: Mapping[str, int]
    stories: int
    # computed values by key: compare() asks for the new story's keys once per candidate
    _known: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def of(self, key: str) -> float:
        """Inverse document frequency scaled to [0, 1] by the window's size (near 1: a name
        only a few stories of a big window carry; 0: every story does), so that the weights
        fitted on a set of 500 articles mean about the same in a window of 16,000 stories."""
        value = self._known.get(key)
        if value is None:
            n = max(self.stories, FITTED_WINDOW)
            df = min(max(self.counts.get(key, 1), 1), n)
            value = self._known[key] = math.log((n + 1) / (df + 1)) / math.log(n + 1)
        return value

    @classmethod
    def of_signatures(cls, sigs: Sequence[Signature]) -> "Rarity":
        """The rarity of keys among these signatures (every one in the window)."""
        return cls(Counter(key for sig in sigs for key in sig.plain_keys()), len(sigs))


@dataclass(frozen=True)
class Signals:
    lexical: float        # cosine of the content-word sets of title + lede
    entities: int         # shared capitalised phrases
    numbers: int          # shared numbers
    hours: float          # time between the two publications
    same_language: bool
    rare_names: float = 0.0     # summed rarity of the shared entities
    rarest_name: float = 0.0    # rarity of the rarest shared entity
    rare_numbers: float = 0.0   # summed rarity of the shared numbers
    coverage: float = 0.0       # share of the new story's entity rarity that the other carries

    def features(self) -> tuple[float, ...]:
        return (self.lexical, float(min(self.entities, 6)), float(min(self.numbers, 4)), self.rare_names,
                self.rarest_name, self.rare_numbers, self.coverage)

    def score(self) -> float:
        """The probability that the two stories report one happening: a logistic model of
        the signals, fitted on real articles (``WEIGHTS``; docs/events.md#the-rule)."""
        z = WEIGHTS[-1] + sum(w * x for w, x in zip(WEIGHTS[:-1], self.features(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))


# Rarity is measured against at least this many stories: about the number the weights were
# fitted on. A young database's window of a few dozen stories would make every shared name
# look common and keep all its happenings apart; with few stories, a name carried by three
# is taken to be as rare as three in a day of news.
FITTED_WINDOW = 500

# Weights of Signals.features() and the intercept: a logistic regression fitted by
# ``bench/events_ecb.py --fit`` on the odd topics of ECB+ (6,949 pairs of real articles
# sharing a name, two happenings of one kind per topic, no time signal); the even topics
# are the held-out measurement (docs/events.md#quality-on-real-article-texts-benchevents_ecbpy).
# The lexical cosine carries most of the weight; rare shared names and numbers and how
# much of the new story's names the other carries add to it; the raw counts come out
# slightly negative beside their rarity (they overlap).
WEIGHTS: tuple[float, ...] = (11.14, -1.67, -1.48, 3.08, 0.73, 4.92, 2.63, -4.05)


def compare(a: Signature, b: Signature, rarity: Rarity) -> Signals:
    """The signals of the new story ``a`` against a placed story ``b`` (``coverage`` is a's
    side: how much of a's names b carries)."""
    inter = len(a.terms & b.terms)
    denom = math.sqrt(len(a.terms) * len(b.terms)) or 1.0
    hours = (abs((a.published_at - b.published_at).total_seconds()) / 3600
             if a.published_at and b.published_at else 0.0)
    shared = a.entities & b.entities
    names = [rarity.of("e:" + e) for e in shared]
    own = sum(rarity.of("e:" + e) for e in a.entities)
    return Signals(lexical=inter / denom, entities=len(shared),
                   numbers=len(a.numbers & b.numbers), hours=hours,
                   same_language=a.language == b.language,
                   rare_names=sum(names), rarest_name=max(names, default=0.0),
                   rare_numbers=sum(rarity.of("n:" + k) for k in a.numbers & b.numbers),
                   coverage=sum(names) / own if own else 0.0)


def days_between(since: datetime, until: datetime) -> list[date]:
    """The UTC days a window touches."""
    first, last = since.astimezone(timezone.utc).date(), until.astimezone(timezone.utc).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def link_score(s: Signals, settings: Settings) -> float:
    """The text's probability, halved every NEWSFLOW_EVENT_HALF_LIFE_HOURS by which the two
    publications lie more than NEWSFLOW_EVENT_GRACE_HOURS apart: a happening's own coverage
    comes within a day or so; a story days later with words in common is more often a
    follow-up with new facts (kept apart: docs/events.md). Not fitted (the real set has no
    times): a prior; a half-life of 0 turns it off."""
    late = max(0.0, s.hours - settings.event_grace_hours)
    if settings.event_half_life_hours <= 0 or late == 0:
        return s.score()
    return s.score() * 0.5 ** (late / settings.event_half_life_hours)


def same_event(s: Signals, settings: Settings) -> bool:
    """The rule: same language (an unknown language is a language of its own), within the
    window, enough shared entities, some words of title and lede in common (shared names
    and numbers alone are coincidences as often), and a link score at or above the threshold."""
    return (s.same_language and s.hours <= settings.event_window_hours
            and s.entities >= settings.event_min_entities and s.lexical >= settings.event_min_lexical
            and link_score(s, settings) >= settings.event_threshold)


# --- 3. assignment (in the write transaction) --------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where a story went: its event, the events merged into it, the accepted links."""
    story_id: int
    event_id: int
    previous_event_id: int | None
    merged: tuple[int, ...] = ()
    links: tuple[tuple[int, float], ...] = field(default=())  # (candidate story, score)


def story_signature(row: dict, settings: Settings) -> Signature:
    return signature(row["title"], row["body"], language=row["language"],
                     published_at=row["published_at"], lede_chars=settings.event_lede_chars,
                     entity_chars=settings.event_entity_chars)


def _stored(row: dict) -> Signature:
    return Signature(terms=frozenset(row["terms"]), entities=frozenset(row["entities"]),
                     numbers=frozenset(row["numbers"]), language=row["language"],
                     published_at=row["published_at"])


def assign(conn, settings: Settings, story_id: int, reuse_event_id: int | None = None) -> Placement | None:
    """Put a story in its event: the event of its best link the rule accepts (merging in
    the events it matches at the merge threshold: the story bridges them), else a new
    event. A story
    already placed keeps its event (a copy joining a story changes nothing; re-clustering
    is :func:`rebuild`'s). ``reuse_event_id``: the id a new event takes if free (rebuild).
    None when the story does not exist (any more)."""
    row = event_store.story_text(conn, story_id)
    if row is None:
        return None
    if row["placed"] and not row["rebuild_pending"]:
        return Placement(story_id, row["event_id"], row["event_id"])
    sig = story_signature(row, settings)
    window = timedelta(hours=settings.event_window_hours)
    since, until = row["published_at"] - window, row["published_at"] + window
    days = days_between(since, until)
    plain = sig.plain_keys()
    # the window's counts of the story's keys, read once: which keys to look up by, and how rare
    counts = event_store.key_counts(conn, [*plain, STORIES_KEY], days[0], days[-1]) if plain else {}
    found = event_store.candidates(conn, story_id, usable_keys(plain, counts, settings.event_key_max_stories), days,
                                   sorted(sig.entities), settings.event_min_entities, sig.language, since, until,
                                   settings.event_candidates)
    links: list[tuple[int, int, float, float]] = []  # (event, story, link score, text probability)
    if found:
        rarity = window_rarity(counts)
        for cand in found:
            signals = compare(sig, _stored(cand), rarity)
            if same_event(signals, settings):
                links.append((cand["event_id"], cand["story_id"], link_score(signals, settings), signals.score()))
    previous = row["event_id"]
    events = joined_events(links, settings.event_merge_threshold)
    if events:
        target, merged = events[0], tuple(events[1:])
        _, linked, score, _ = best_link(links)
    else:
        merged, score, linked = (), None, None
        free = reuse_event_id if reuse_event_id is not None else previous
        if free is None and row["new_event_id"] is not None:
            target = row["new_event_id"]  # reserved by story_text: created with the writes below
        else:
            target = event_store.create_event(
                conn, free if free is not None and not event_store.event_in_use(conn, free) else None)
    with conn.pipeline():  # the writes need no answer before the next: sent together, one wait
        if not events and target == row["new_event_id"]:
            event_store.create_event(conn, target)
        event_store.count_keys(conn, story_id, [*plain, STORIES_KEY], sig.day(), row["placed"])
        event_store.place(conn, story_id, target, published_at=row["published_at"], language=sig.language,
                          terms=sig.terms, entities=sig.entities, numbers=sig.numbers,
                          keys=sig.keys(plain=[*plain, STORIES_KEY]), score=score, linked_story_id=linked)
        moved = event_store.move_stories(conn, merged, target) if merged else []
        _log(conn, story_id, target, previous, merged, moved, new_event=not events)
        event_store.refresh(conn, [target, *merged, *([previous] if previous else [])])
    return Placement(story_id, target, previous, merged, tuple((s, sc) for _, s, sc, _ in links))


# news.event_keys counts the window's stories under this key, beside the names and numbers
# (stored with its day in every placed story's keys, so a story placed again un-counts it
# like the others; never looked up: the candidates' look-up uses names and numbers only)
STORIES_KEY = "*"


def usable_keys(plain_keys: Sequence[str], counts: Mapping[str, int], max_stories: int) -> list[str]:
    """The keys to look candidates up by: those carried by at most ``max_stories`` placed
    stories of the window; when every key is commoner, the rarest one. A famous name would
    cost a scan of its thousands of stories and says little: its stories share little but it."""
    usable = [k for k in plain_keys if counts.get(k, 0) <= max_stories]
    if usable or not plain_keys:
        return usable
    return [min(plain_keys, key=lambda k: (counts.get(k, 0), k))]


def window_rarity(counts: Mapping[str, int]) -> Rarity:
    """The rarity of the new story's keys in its window, from their counts
    (:func:`event_store.key_counts`), the story itself counted (it is not counted there yet)."""
    return Rarity({k: n + 1 for k, n in counts.items() if k != STORIES_KEY}, counts.get(STORIES_KEY, 0) + 1)


def best_link(links: Sequence[tuple[int, int, float, float]]) -> tuple[int, int, float, float]:
    """The link a story follows: the highest link score, the oldest story on a tie."""
    return max(links, key=lambda link: (link[2], -link[1]))


def joined_events(links: Sequence[tuple[int, int, float, float]], merge_threshold: float) -> list[int]:
    """The events a story goes into, the surviving (oldest) first: the event of its
    :func:`best_link`, and every other event one of whose stories its text matches with a
    probability of at least ``merge_threshold`` (the story bridges them: they merge; the
    text's probability, not the link score, so that a bridge an hour later still merges).
    Joining only the best link's event keeps one loose match from chaining two happenings
    together (docs/events.md#the-rule). ``links``: (event, story, link score, probability)."""
    if not links:
        return []
    return sorted({best_link(links)[0]} | {link[0] for link in links if link[3] >= merge_threshold})


def place_again(conn, settings: Settings, story_ids: Sequence[int]) -> list[Placement]:
    """Place stories whose text may have changed under them, in publication order, in the
    caller's write transaction: after a corrected article text (``corrections.revise``) and
    after ``newsflow dedup rebuild``. A story without an event is placed like a new one; a
    placed story whose signature (its representative's title and lede, language, date) is
    unchanged keeps its event; one whose signature changed leaves the candidates and is placed
    again, keeping its event id when it still matches a story of that event or no other story
    holds it (as :func:`rebuild` does). Stories that joined its event through it stay where
    they are (their links are not re-checked here: ``newsflow events rebuild`` re-clusters all)."""
    rows = [r for r in (event_store.story_text(conn, s) for s in sorted(set(story_ids))) if r is not None]
    placed: list[Placement] = []
    for row in sorted(rows, key=lambda r: (r["published_at"], r["story_id"])):
        if row["placed"] and not row["rebuild_pending"]:
            if _unchanged(row, story_signature(row, settings)):
                continue
            event_store.mark_for_placing(conn, row["story_id"])
        placement = assign(conn, settings, row["story_id"], reuse_event_id=row["event_id"])
        if placement is not None:
            placed.append(placement)
    return placed


def _unchanged(row: dict, sig: Signature) -> bool:
    """Whether a placed story's stored signature is the one its text gives now."""
    return (frozenset(row["placed_terms"]) == sig.terms and frozenset(row["placed_entities"]) == sig.entities
            and frozenset(row["placed_numbers"]) == sig.numbers and row["placed_language"] == sig.language
            and row["placed_published_at"] == row["published_at"])


def _log(conn, story_id: int, target: int, previous: int | None, merged: Sequence[int],
         moved: Sequence[dict], new_event: bool) -> None:
    """Change-feed rows: the story's event (when it changed), the stories a merge moved,
    the merged events, and the event that grew (or was created)."""
    if previous != target:
        event_store.log_story_event(conn, story_id, target, previous)
    for m in moved:
        event_store.log_story_event(conn, m["story_id"], target, m["previous_event_id"])
    for event_id in merged:
        event_store.log_event(conn, event_id, "merged", into=target)
    if previous != target:
        event_store.log_event(conn, target, "created" if new_event and previous is None else "updated")


def after_load(conn, settings: Settings, article_id: int, body: str) -> None:
    """The ingest hook (one call per new article, in its savepoint of the write
    transaction): the article's citations, then its story's event."""
    citations.record(conn, article_id, body)
    story_id = event_store.story_of_article(conn, article_id)
    if story_id is not None:
        assign(conn, settings, story_id)


# --- 4. rebuild ------------------------------------------------------------------------------------

def rebuild(url: str, settings: Settings, since: datetime | None = None,
            progress: Callable[[int, int], None] | None = None,
            stop: threading.Event | None = None) -> dict[str, int]:
    """Place every story again (after a setting or signal change), in publication order,
    ``settings.event_rebuild_batch`` stories per transaction.

    Resumable: the first transaction marks the stories to place (``rebuild_pending``); each
    batch places some and commits; a rebuild run after an interruption continues with the
    stories still marked (``since`` is then ignored). Idempotent: a pending story is
    compared only with stories already placed, in publication order, which is how they
    would have arrived, and a story that founds an event takes back its old event's id
    when no placed story holds it — so unchanged settings give the same events, ids
    included, and write no change rows.

    Lock waits are bounded by NEWSFLOW_LOCK_TIMEOUT (then the busy lock is named, 55P03);
    a set ``stop`` ends a wait or stops between batches (``Interrupted``: the batches
    committed stay, the next rebuild continues).
    """
    with db.transaction(url, settings.lock_timeout) as conn:
        take_write_locks(conn, timeout=settings.lock_timeout, stop=stop)
        total = event_store.pending_count(conn) or event_store.mark_pending(conn, since)
    done = moved = merged = 0
    while True:
        if stop is not None and stop.is_set():
            raise Interrupted(f"stopped after placing {done} of {total} stories (the next rebuild continues)")
        with db.transaction(url, settings.lock_timeout) as conn:
            take_write_locks(conn, timeout=settings.lock_timeout, stop=stop)
            batch = event_store.next_pending(conn, max(1, settings.event_rebuild_batch))
            for row in batch:
                placed = assign(conn, settings, row["story_id"], reuse_event_id=row["event_id"])
                if placed is not None:
                    moved += placed.previous_event_id != placed.event_id
                    merged += len(placed.merged)
        if not batch:
            break
        done += len(batch)
        if progress:
            progress(done, total)
    with db.connect(url) as conn:
        events = event_store.count(conn)
    return {"stories": done, "moved": moved, "merged": merged, "events": events}


def overview_text(url: str, limit: int = 10) -> str:
    """Events with more than one story, biggest first, each with its stories, outlets and
    citations (``newsflow demo``)."""
    from .storage import citations as citation_store

    with db.connect(url) as conn:
        found = event_store.overview(conn, min_stories=2, limit=limit)
        lines = [f"Events (one happening, several stories): {len(found)}"]
        for e in found:
            lines.append(f"  event {e['id']}: {e['label']!r} - {e['story_count']} stories, "
                         f"{e['outlet_count']} outlets ({', '.join(e['outlets'])})")
            for s in e["stories"]:
                lines.append(f"    story {s['story_id']}: {s['title']!r} ({', '.join(s['outlets'])})")
            cited: dict[str, set[str]] = {}
            for c in citation_store.of_event(conn, e["id"]):
                if c["cited_publisher"] != c["citing_publisher"]:  # an agency's own dateline
                    cited.setdefault(c["citing_publisher"], set()).add(c["cited_publisher"] or c["cited_name"])
            for citing, names in sorted(cited.items()):
                lines.append(f"    {citing} cites {', '.join(sorted(names))}")
    return "\n".join(lines)
