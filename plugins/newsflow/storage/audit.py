"""SQL for news.operator_actions: who did what to which feed or entry, and when (the audit
trail of the console, the CLI, the feeds file and manual Airflow runs)."""

from __future__ import annotations

import psycopg

from ..models import OperatorAction, feed_label


def record(conn: psycopg.Connection, action: OperatorAction) -> OperatorAction:
    row = conn.execute("""
        INSERT INTO news.operator_actions (actor, source, action, feed_id, entry_id, detail, dag_id, dag_run_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, at""",
        (action.actor[:200], action.source, action.action, action.feed_id, action.entry_id,
         action.detail[:2000], action.dag_id, action.dag_run_id)).fetchone()
    action.id, action.at = row["id"], row["at"]
    return action


_SELECT = """
    SELECT a.id, a.at, a.actor, a.source, a.action, a.feed_id, a.entry_id, a.detail, a.dag_id, a.dag_run_id,
           f.publisher, f.name
    FROM news.operator_actions a LEFT JOIN news.feeds f ON f.id = a.feed_id"""


def recent(conn: psycopg.Connection, *, feed_id: int | None = None, limit: int = 50) -> list[OperatorAction]:
    """The latest actions, newest first (of one feed, or of all)."""
    rows = conn.execute(_SELECT + """
        WHERE %(feed)s::bigint IS NULL OR a.feed_id = %(feed)s
        ORDER BY a.at DESC, a.id DESC LIMIT %(limit)s""", {"feed": feed_id, "limit": limit}).fetchall()
    return [_action(r) for r in rows]


def last_run_started(conn: psycopg.Connection, feed_id: int, action: str) -> OperatorAction | None:
    """The feed's latest ``action`` that started an Airflow run (the console follows it)."""
    row = conn.execute(_SELECT + """
        WHERE a.feed_id = %s AND a.action = %s AND a.dag_run_id IS NOT NULL
        ORDER BY a.at DESC, a.id DESC LIMIT 1""", (feed_id, action)).fetchone()
    return _action(row) if row else None


def get(conn: psycopg.Connection, action_id: int) -> OperatorAction | None:
    row = conn.execute(_SELECT + " WHERE a.id = %s", (action_id,)).fetchone()
    return _action(row) if row else None


def _action(r: dict) -> OperatorAction:
    return OperatorAction(id=r["id"], at=r["at"], actor=r["actor"], source=r["source"], action=r["action"],
                          feed_id=r["feed_id"], entry_id=r["entry_id"], detail=r["detail"],
                          dag_id=r["dag_id"], dag_run_id=r["dag_run_id"],
                          feed=feed_label(r["feed_id"], r["publisher"], r["name"]) if r["feed_id"] else None)
