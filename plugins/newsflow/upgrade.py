"""The database made ready for this version of the code: its migrations (``db.upgrade``),
then what an upgrade does to the data already stored (near-duplicate signatures of an older
fingerprint scheme computed again from the articles' text, once). What every writing
command calls first."""

from __future__ import annotations

import logging

from . import db
from .config import Settings
from .storage import dedup_index

log = logging.getLogger(__name__)


def ready(settings: Settings) -> str:
    """The database URL of ``settings``, migrated to this version of the code (idempotent;
    an advisory lock serialises concurrent workers). What every writing command uses.
    Near-duplicate signatures of an older fingerprint scheme are computed again here,
    once, after an upgrade that changed the scheme."""
    url = db.resolve_url(settings)
    db.upgrade(url)
    with db.connect(url) as conn:
        outdated = dedup_index.any_outdated(conn)
    if outdated:
        log.warning("recomputing near-duplicate signatures of an older scheme (once, after an upgrade)")
        log.warning("recomputed %d signatures", reindex_signatures(url, settings))
    return url


def reindex_signatures(url: str, settings: Settings, batch: int = 500) -> int:
    """Compute again, from the articles' text, the near-duplicate signatures an older
    fingerprint scheme stored (after an upgrade that changed it); returns how many."""
    from . import dedup

    done = 0
    while True:
        with db.transaction(url) as conn:
            rows = dedup_index.outdated(conn, batch)
            if rows:
                dedup_index.remove(conn, [r["article_id"] for r in rows])
                dedup_index.add_many(conn, [(r["article_id"], dedup.fingerprint(r["body"], settings),
                                             r["published_at"]) for r in rows])
        done += len(rows)
        if len(rows) < batch:
            return done
