"""SQL for the near-duplicate index: news.dedup_signatures and news.dedup_bands.

Implements :class:`newsflow.dedup.StoryIndex` on PostgreSQL, so every process and every
Celery worker sees the same index. Band lookups use the (band, hash) primary key b-tree,
passage-sketch lookups the GIN index on the signatures' ``passages`` (migration 017);
candidates are limited to the dedup window around the article's date. Only each
candidate *story's representative* travels with its shingles: verification is against
representatives alone.

Two faces (measured in ``bench/dedup_index_bench.py``):

* :class:`BatchIndex`, what ingestion's write phase uses: the candidates of every new text
  of a batch in **one** query, the texts placed during the batch kept in memory (so copies
  that arrive together still find each other), and their rows written with one COPY and
  one INSERT at the end of the batch;
* :class:`PgIndex`, one text at a time, written at once (the rebuild, corrections).

Shingle arrays travel as binary: dumping ~600 bigints as text costs more than the insert.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Sequence

import psycopg

from ..config import Settings
from ..models import SIGNATURE_SCHEME, Fingerprint, Member

_MAX_TEXTS = Settings.dedup_passage_max_texts

# Candidate articles of each query (story ids only): those sharing a band (b-tree on the
# band rows) or a passage hash that at most max_texts indexed texts of the window share,
# in the query's window; and, once per candidate story, its representative with its
# shingles. The sketch is looked up with one GIN scan per text (&&: measured 4x faster
# than one scan per value), each value's texts counted among the rows found.
_CANDIDATES = """
    WITH q AS (SELECT * FROM unnest(%(qn)s::int[], %(band)s::smallint[], %(hash)s::bigint[]) AS q(n, band, hash)),
         w AS (SELECT * FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) WITH ORDINALITY AS w(lo, hi, n)),
         p AS (SELECT n, array_agg(hash) AS hashes
               FROM unnest(%(pn)s::int[], %(phash)s::bigint[]) AS p(n, hash) GROUP BY n),
         prows AS MATERIALIZED (
                  SELECT p.n, p.hashes, s.article_id, s.passages FROM p JOIN w ON w.n = p.n
                  JOIN news.dedup_signatures s ON s.passages && p.hashes
                  WHERE s.published_at BETWEEN w.lo AND w.hi),
         phits AS (SELECT n, article_id, count(*) OVER (PARTITION BY n, hash) AS texts
                   FROM (SELECT DISTINCT r.n, r.article_id, h.hash
                         FROM prows r, unnest(r.passages) AS h(hash) WHERE h.hash = ANY (r.hashes)) x),
         hits AS (SELECT q.n, b.article_id FROM q
                  JOIN news.dedup_bands b ON b.band = q.band AND b.hash = q.hash
                  JOIN w ON w.n = q.n
                  WHERE b.published_at BETWEEN w.lo AND w.hi
                  UNION
                  SELECT n, article_id FROM phits WHERE texts <= %(max_texts)s),
         c AS MATERIALIZED (SELECT hits.n, a.id, a.story_id FROM hits JOIN news.articles a ON a.id = hits.article_id
                            WHERE a.story_id IS NOT NULL)
    SELECT c.n, c.id, c.story_id, NULL::bigint[] AS shingles, false AS rep FROM c
    UNION ALL
    SELECT NULL, st.representative_id, st.id, rs.shingles, true
    FROM (SELECT DISTINCT story_id FROM c) cs
         JOIN news.stories st ON st.id = cs.story_id
         JOIN news.dedup_signatures rs ON rs.article_id = st.representative_id
"""


Query = tuple[Sequence[int], Sequence[int], datetime, datetime]  # bands, passages, lo, hi


def lookup(conn: psycopg.Connection, queries: Sequence[Query], passage_max_texts: int
           ) -> tuple[list[list[Member]], dict[int, Member]]:
    """For each (bands, passages, lo, hi): the indexed articles sharing a band or a passage
    hash (one that at most ``passage_max_texts`` of them share), dated in [lo, hi]
    (shingles not fetched); and every candidate story's representative. One round trip."""
    if not queries:
        return [], {}
    qn, band, hashes, pn, phash = [], [], [], [], []
    for n, (bands, passages, _, _) in enumerate(queries, start=1):
        qn += [n] * len(bands)
        band += range(len(bands))
        hashes += bands
        pn += [n] * len(passages)
        phash += passages
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(_CANDIDATES, {"qn": qn, "band": band, "hash": hashes, "pn": pn, "phash": phash,
                                         "max_texts": passage_max_texts,
                                         "lo": [q[2] for q in queries], "hi": [q[3] for q in queries]}).fetchall()
    found: list[list[Member]] = [[] for _ in queries]
    reps: dict[int, Member] = {}
    for r in rows:
        if r["rep"]:
            reps[r["story_id"]] = Member(article_id=r["id"], story_id=r["story_id"], shingles=tuple(r["shingles"]))
        else:
            found[r["n"] - 1].append(Member(article_id=r["id"], story_id=r["story_id"], shingles=()))
    for members in found:
        members.sort(key=lambda m: m.article_id)
    return found, reps


def _representative(conn: psycopg.Connection, story_id: int) -> Member | None:
    row = conn.execute("""
        SELECT a.id, a.story_id, s.shingles
        FROM news.stories st JOIN news.articles a ON a.id = st.representative_id
                             JOIN news.dedup_signatures s ON s.article_id = a.id
        WHERE st.id = %s""", (story_id,), binary=True).fetchone()
    return row and Member(article_id=row["id"], story_id=row["story_id"], shingles=tuple(row["shingles"]))


class _Index:
    """What both indexes share: representatives known from the last lookup (or asked
    for), ties broken by story id."""

    def __init__(self, conn: psycopg.Connection, passage_max_texts: int):
        self.conn = conn
        self.passage_max_texts = passage_max_texts  # settings.dedup_passage_max_texts
        self._reps: dict[int, Member] = {}  # story id -> its representative

    def representative(self, story_id: int) -> Member:
        rep = self._reps.get(story_id) or _representative(self.conn, story_id)
        if rep is None:
            raise KeyError(f"story {story_id} has no indexed representative")
        return rep

    def order(self, story_id: int) -> int:
        return story_id


class PgIndex(_Index):
    """The index for one text at a time, around one date; writes at once (``stage``)."""

    def __init__(self, conn: psycopg.Connection, around: datetime, window_days: int,
                 passage_max_texts: int = _MAX_TEXTS):
        super().__init__(conn, passage_max_texts)
        self.lo = around - timedelta(days=window_days)
        self.hi = around + timedelta(days=window_days)

    def candidates(self, bands: Sequence[int], passages: Sequence[int] = ()) -> list[Member]:
        """Indexed articles sharing a band or a passage hash, in the window. Their shingles
        are not fetched (empty): only each candidate story's representative is verified."""
        (found,), self._reps = lookup(self.conn, [(list(bands), list(passages), self.lo, self.hi)],
                                      self.passage_max_texts)
        return found

    def stage(self, article_id: int, story_id: int, fp: Fingerprint, when: datetime,
              representative: bool) -> None:
        # every caller placing a known article took it out of the index first
        # (recluster, corrections.revise), so there are no old rows to delete here
        add_many(self.conn, [(article_id, fp, when)])

    def staged_shingles(self) -> dict[int, tuple[int, ...]]:
        return {}  # written at once: the database has them

    def promoted(self, story_id: int, member: Member) -> None:
        self._reps[story_id] = member


class BatchIndex(_Index):
    """The index for one write batch (see the module docstring). ``texts``: the
    (fingerprint, date) of every text the batch may place, looked up at once."""

    def __init__(self, conn: psycopg.Connection, window_days: int,
                 texts: Sequence[tuple[Fingerprint, datetime]], passage_max_texts: int = _MAX_TEXTS):
        super().__init__(conn, passage_max_texts)
        self.window = timedelta(days=window_days)
        queries = [(list(fp.bands), list(fp.passages), when - self.window, when + self.window)
                   for fp, when in texts]
        found, self._reps = lookup(conn, queries, passage_max_texts)
        self._found = {fp.bands: members for (fp, _), members in zip(texts, found, strict=True)}
        self._when = {fp.bands: when for fp, when in texts}
        # texts placed during this batch, not yet written; every change is journalled so
        # that an entry whose savepoint rolls back takes its changes here back too
        self._buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        self._passages: dict[int, list[int]] = defaultdict(list)
        self._staged: dict[int, tuple[Member, datetime]] = {}
        self._pending: list[tuple[int, Fingerprint, datetime]] = []
        self._journal: list = []

    def candidates(self, bands: Sequence[int], passages: Sequence[int] = ()) -> list[Member]:
        key = tuple(bands)
        if key not in self._when:
            raise KeyError("text not announced to the batch index")
        when = self._when[key]
        if key not in self._found:  # not looked up with the batch: ask now
            (self._found[key],), reps = lookup(self.conn, [(list(bands), list(passages), when - self.window,
                                                            when + self.window)], self.passage_max_texts)
            self._reps.update(reps)
        staged = {article_id for band, h in enumerate(bands) for article_id in self._buckets.get((band, h), ())}
        # the cap on common passage hashes counts the batch's own texts apart
        staged.update(article_id for h in passages for article_id in self._passages.get(h, ())
                      if len(self._passages[h]) <= self.passage_max_texts)
        near = [self._staged[a][0] for a in sorted(staged) if abs(self._staged[a][1] - when) <= self.window]
        return self._found[key] + near

    def announce(self, fp: Fingerprint, when: datetime) -> None:
        """A text the batch did not know at the start (looked up on first use)."""
        self._when.setdefault(fp.bands, when)

    def stage(self, article_id: int, story_id: int, fp: Fingerprint, when: datetime,
              representative: bool) -> None:
        """A text placed in this batch: found by the batch's later texts, written by flush()."""
        member = Member(article_id=article_id, story_id=story_id, shingles=fp.shingles)
        self._journal.append(("stage", article_id, fp, story_id, self._reps.get(story_id)))
        self._staged[article_id] = (member, when)
        for band, h in enumerate(fp.bands):
            self._buckets[(band, h)].append(article_id)
        for h in fp.passages:
            self._passages[h].append(article_id)
        if representative:
            self._reps[story_id] = member
        self._pending.append((article_id, fp, when))

    def staged_shingles(self) -> dict[int, tuple[int, ...]]:
        return {article_id: member.shingles for article_id, (member, _) in self._staged.items()}

    def promoted(self, story_id: int, member: Member) -> None:
        self._journal.append(("promoted", story_id, self._reps.get(story_id)))
        self._reps[story_id] = member

    def mark(self) -> int:
        """A point to :meth:`rollback` to (taken with each entry's savepoint)."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Forget what was staged since ``mark`` (its savepoint was rolled back)."""
        while len(self._journal) > mark:
            change = self._journal.pop()
            if change[0] == "stage":
                _, article_id, fp, story_id, old_rep = change
                del self._staged[article_id]
                for band, h in enumerate(fp.bands):
                    self._buckets[(band, h)].remove(article_id)
                for h in fp.passages:
                    self._passages[h].remove(article_id)
                self._pending = [p for p in self._pending if p[0] != article_id]
                self._restore_rep(story_id, old_rep)
            else:
                _, story_id, old_rep = change
                self._restore_rep(story_id, old_rep)

    def _restore_rep(self, story_id: int, old: Member | None) -> None:
        if old is None:
            self._reps.pop(story_id, None)
        else:
            self._reps[story_id] = old

    def flush(self) -> None:
        """Write the staged texts: one COPY of signatures, one INSERT of band rows (at the
        end of the batch, after every entry's savepoint)."""
        if self._pending:
            add_many(self.conn, self._pending)
            self._pending = []
        self._journal = []


def add_many(conn: psycopg.Connection, rows: Sequence[tuple[int, Fingerprint, datetime]]) -> None:
    """Index new articles: signatures by binary COPY, band rows in one INSERT."""
    with conn.cursor() as cur:
        with cur.copy("COPY news.dedup_signatures (article_id, published_at, shingles, minhash, scheme, bands, "
                      "passages) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "timestamptz", "int8[]", "int8[]", "int2", "int8[]", "int8[]"])
            for article_id, fp, when in rows:
                copy.write_row((article_id, when, list(fp.shingles), list(fp.minhash), SIGNATURE_SCHEME,
                                list(fp.bands), list(fp.passages)))
    ids, whens, bands, hashes = [], [], [], []
    for article_id, fp, when in rows:
        ids += [article_id] * len(fp.bands)
        whens += [when] * len(fp.bands)
        bands += range(len(fp.bands))
        hashes += fp.bands
    conn.execute("""
        INSERT INTO news.dedup_bands (band, hash, article_id, published_at)
        SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bigint[], %s::timestamptz[])""",
        (bands, hashes, ids, whens), binary=True)


def remove(conn: psycopg.Connection, article_ids: Sequence[int]) -> None:
    """Take articles out of the index (their band rows go with their signatures)."""
    conn.execute("DELETE FROM news.dedup_signatures WHERE article_id = ANY(%s)", (list(article_ids),))


def purge(conn: psycopg.Connection, older_than: datetime) -> int:
    """Drop index rows outside the window; the articles themselves stay."""
    return conn.execute("DELETE FROM news.dedup_signatures WHERE published_at < %s",
                        (older_than,)).rowcount


def outdated(conn: psycopg.Connection, limit: int) -> list[dict]:
    """Signatures of an older scheme, with their articles' text (to compute them again);
    locked, skipping those another starting process is recomputing."""
    return conn.execute("""
        SELECT s.article_id, s.published_at, a.body FROM news.dedup_signatures s
        JOIN news.articles a ON a.id = s.article_id
        WHERE s.scheme < %s ORDER BY s.article_id LIMIT %s
        FOR UPDATE OF s SKIP LOCKED""", (SIGNATURE_SCHEME, limit)).fetchall()


def any_outdated(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM news.dedup_signatures WHERE scheme < %s) AS x",
                        (SIGNATURE_SCHEME,)).fetchone()["x"]
