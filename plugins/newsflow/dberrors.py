"""What a database error means for newsflow: whose fault it is, whether to try again, and
one line for an operator. (No SQL and no connection here: imported by ``db``, ``storage``
and the stages alike, so it imports nothing of newsflow's but ``redaction``.)

Three kinds (docs/politeness.md, "Transient database errors"):

* **record faults** — a value the database refuses (DataError, IntegrityError, a program
  limit) or a Python error from a value we did not foresee: that feed's or entry's error,
  the batch goes on;
* **transient** — deadlock (40P01), serialization failure (40001), lock not available
  (55P03, ``lock_timeout``), statement cancelled (57014, ``statement_timeout``): the same
  transaction is tried again (``db_retries`` times, with jitter); if it still fails, the
  cause is recorded on that feed or entry and the pass goes on;
* **fatal** — anything else (connection lost or refused, server restarted, read-only,
  no privilege, disk full): the run ends with exit 2 and :func:`explain`'s line.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable, TypeVar

import psycopg
import psycopg.errors

from . import redaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# What one record (a feed item, an entry's result) may do to a write and still leave the
# batch standing: values the database refuses, and Python errors from a value we did not
# foresee.
RECORD_FAULTS = (psycopg.errors.DataError, psycopg.errors.IntegrityError,
                 psycopg.errors.ProgramLimitExceeded)

# SQLSTATE -> what happened, for the errors that pass if the transaction is tried again.
TRANSIENT = {
    "40P01": "deadlock",
    "40001": "serialization failure",
    "55P03": "lock not available (lock_timeout)",
    "57014": "statement cancelled (statement_timeout)",
}


def is_record_fault(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, RECORD_FAULTS)
    return isinstance(exc, Exception)


def is_transient(exc: BaseException) -> bool:
    """An error that trying the same transaction again may not meet (see TRANSIENT)."""
    return isinstance(exc, psycopg.Error) and getattr(exc, "sqlstate", None) in TRANSIENT


def describe(exc: BaseException) -> str:
    """A short, credential-free cause for a feed's or an entry's error column."""
    state = getattr(exc, "sqlstate", None) or ""
    what = TRANSIENT.get(state, type(exc).__name__)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return redaction.redact(f"database {what} [{state or '-'}]: {first}")


class RetriesExhausted(Exception):
    """A transient error that did not pass after ``tries`` attempts; ``cause`` is the last."""

    def __init__(self, cause: BaseException, tries: int):
        super().__init__(f"{describe(cause)} (tried {tries} times)")
        self.cause, self.tries = cause, tries


def retry(action: Callable[[], T], *, tries: int, delay: float, what: str,
          stop: threading.Event | None = None) -> T:
    """``action()`` (one whole transaction), again on a transient error: at most ``tries``
    times in all, ``delay`` × 2^n × jitter(0.5–1.5) apart, so two transactions that
    deadlocked do not meet again in the same millisecond. Raises RetriesExhausted when the
    last try fails transiently (or ``stop`` is set while waiting); any other error at once."""
    tries = max(1, tries)
    for n in range(tries):
        try:
            return action()
        except psycopg.Error as exc:
            if not is_transient(exc):
                raise
            if n + 1 >= tries:
                raise RetriesExhausted(exc, n + 1) from exc
            pause = delay * 2 ** n * random.uniform(0.5, 1.5)
            log.info("%s: %s; trying again in %.2fs", what, describe(exc), pause)
            if stop is not None and stop.wait(pause):
                raise RetriesExhausted(exc, n + 1) from exc
            if stop is None:
                time.sleep(pause)
    raise AssertionError("unreachable")


# (SQLSTATE class or code, what happened — what to check), most specific first
_ADVICE = [
    ("40P01", "deadlock: two transactions waited for each other; it did not pass after retrying "
              "(see NEWSFLOW_DB_RETRIES): run again, report it if it repeats"),
    ("40001", "serialization failure that did not pass after retrying: run again"),
    ("55P03", "timeout waiting for a lock (NEWSFLOW_LOCK_TIMEOUT): another session holds it; "
              "look at pg_stat_activity, then run again"),
    ("57014", "timeout: a statement was cancelled (statement_timeout, or an operator cancelled it): "
              "run again; raise the server's statement_timeout if it repeats"),
    ("25006", "read-only: the database is read-only (a standby, or default_transaction_read_only): "
              "point NEWSFLOW_DATABASE_URL at the primary"),
    ("42501", "no privilege: the database user lacks a privilege newsflow needs: grant it, or use the "
              "owner of the news schema"),
    ("53100", "disk full: the database server's disk is full: free space, then run again"),
    ("53", "out of resources: the database server is out of memory or connections: check its logs"),
    ("57P", "server restarted: the server was shut down or restarted, or this session was terminated: "
            "run again once it is up"),
    ("25P03", "idle timeout: the server ended an idle transaction (idle_in_transaction_session_timeout): "
              "run again; report it if it repeats"),
    ("08001", "connection refused: cannot connect; check that the server is up and reachable"),
    ("08", "connection lost: the connection to the database was lost: check that the server is up "
           "and reachable, then run again"),
]


def explain(exc: BaseException, where: str) -> str:
    """One line for an operator: which database, what happened, what to check."""
    if isinstance(exc, RetriesExhausted):
        exc = exc.cause
    state = getattr(exc, "sqlstate", None) or ""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    advice = next((text for prefix, text in _ADVICE if state.startswith(prefix)), None)
    if advice is None:
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not state:
            # no SQLSTATE: libpq could not reach the server, or lost it
            advice = ("connection refused or lost: check that the server is up and reachable, then run again"
                      if "connect" in first.lower() or "refused" in first.lower() else
                      "connection lost: check that the server is up, then run again")
        else:
            advice = "check the database's log; the run can be repeated safely"
    return " ".join(f"database error at {redaction.redact(where, keep_user=True)}: {type(exc).__name__}: "
                    f"{first} — {advice}".split())
