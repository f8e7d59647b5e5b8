"""Task callbacks and notices.

Every failed attempt is logged and recorded in ``news.task_failures`` with its try number:
``on_retry_callback`` for the attempts Airflow retries, ``on_failure_callback`` for the
last one (``final``). The last one, and each new stale-feed episode the maintenance run
finds, are also posted to the webhook named by the Variable or env var
``NEWSFLOW_FAILURE_WEBHOOK`` (a small JSON notice with a Slack/Teams-style ``text`` field).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from .context import _variable, database_url

log = logging.getLogger(__name__)

WEBHOOK_NAME = "NEWSFLOW_FAILURE_WEBHOOK"  # Variable or env var; unset = no notification


def _ti_attr(ti, name: str, default=None):
    return getattr(ti, name, default) if ti is not None else default


def failure_record(context: dict) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    dag_run = context.get("dag_run")
    logical = context.get("logical_date") or _ti_attr(dag_run, "logical_date")
    return {
        "dag_id": _ti_attr(ti, "dag_id") or _ti_attr(context.get("dag"), "dag_id") or "?",
        "task_id": _ti_attr(ti, "task_id") or "?",
        "run_id": _ti_attr(ti, "run_id") or context.get("run_id"),
        "map_index": _ti_attr(ti, "map_index", -1) if _ti_attr(ti, "map_index", -1) is not None else -1,
        "try_number": _ti_attr(ti, "try_number"),
        "logical_date": logical,
        "exception": (f"{type(exc).__name__}: {exc}" if exc is not None else "unknown")[:4000],
        "log_url": _ti_attr(ti, "log_url"),
    }


def record_failure(context: dict, *, final: bool = True) -> None:
    """on_failure_callback (``final``) and on_retry_callback: log, record in
    news.task_failures, and post the last failure to the webhook.

    Never raises: a broken callback must not hide the task's own error.
    """
    record = failure_record(context)
    if final:
        log.error("newsflow task failed: %(dag_id)s.%(task_id)s run %(run_id)s map %(map_index)s "
                  "try %(try_number)s: %(exception)s", record)
    else:
        log.warning("newsflow task attempt failed, Airflow retries it: %(dag_id)s.%(task_id)s run "
                    "%(run_id)s map %(map_index)s try %(try_number)s: %(exception)s", record)
    notified = False
    webhook = webhook_url() if final else None  # a Variable lookup: only when it is used
    if webhook:
        notified = notify(webhook, f"newsflow: {record['dag_id']}.{record['task_id']} failed "
                                   f"(run {record['run_id']}, try {record['try_number']}): "
                                   f"{record['exception'][:500]}", record)
    try:
        from .. import db
        from ..storage import task_failures

        with db.transaction(database_url()) as conn:
            task_failures.record(conn, record, notified=notified, final=final)
    except Exception:
        log.exception("could not record the failure in news.task_failures")


def webhook_url() -> str | None:
    return _variable(WEBHOOK_NAME) or os.environ.get(WEBHOOK_NAME) or None


def notify(webhook: str, text: str, fields: Mapping[str, Any]) -> bool:
    """POST a JSON notice (Slack/Teams-style ``text`` plus the fields); True when accepted."""
    import httpx

    payload = {"text": text, **{k: (str(v) if v is not None else None) for k, v in fields.items()}}
    try:
        response = httpx.post(webhook, json=payload, timeout=10.0)
        response.raise_for_status()
        return True
    except Exception as exc:
        log.warning("failure webhook %s did not accept the notice: %s", webhook.split("?")[0], exc)
        return False
