"""SQL for news.article_citations (migration 015): attributions in article texts."""

from __future__ import annotations

from typing import Sequence

import psycopg


def publishers(conn: psycopg.Connection) -> list[str]:
    """Every feed's publisher (cited names are matched against them)."""
    return [r["publisher"] for r in conn.execute("SELECT DISTINCT publisher FROM news.feeds ORDER BY 1")]


def replace(conn: psycopg.Connection, article_id: int, citations: Sequence) -> None:
    conn.execute("DELETE FROM news.article_citations WHERE article_id = %s", (article_id,))
    if citations:
        with conn.cursor() as cur:
            cur.executemany("""INSERT INTO news.article_citations (article_id, position, cited_name, publisher, kind)
                               VALUES (%s, %s, %s, %s, %s)""",
                            [(article_id, c.position, c.name, c.publisher, c.kind) for c in citations])


def of_event(conn: psycopg.Connection, event_id: int) -> list[dict]:
    """Who cited whom within an event (news_api.citations rows of its articles)."""
    return conn.execute("""SELECT article_id, story_id, citing_publisher, cited_name, cited_publisher, kind,
                                  cited_story_ids
                           FROM news_api.citations WHERE event_id = %s ORDER BY sort_at, article_id, position""",
                        (event_id,)).fetchall()
