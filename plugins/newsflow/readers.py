"""The consumers' reader role (migration 010): a login given read access to news_api
(`newsflow db grant-reader`), and what an operator should know when the role is missing."""

from __future__ import annotations

import psycopg

from . import db
from .storage import consumer


def reader_role_note(url: str) -> str | None:
    """What an operator should know about the role newsflow_reader, or None when all is well."""
    with db.connect(url) as conn:
        if consumer.contract(conn) is None or consumer.reader_role_exists(conn):
            return None
    return (f"the role {consumer.READER_ROLE} does not exist (this user may not create roles): an administrator "
            f"runs `CREATE ROLE {consumer.READER_ROLE} NOLOGIN`, then `newsflow db grant-reader ROLE` gives a "
            "login read access to news_api")


def grant_reader(url: str, role: str) -> str:
    """Make ``role`` (an existing login) a reader of news_api: the reader role is created
    if missing (needs CREATEROLE), its grants applied (as the owner of news_api), and
    ``role`` made a member of it."""
    with db.transaction(url) as conn:
        if not consumer.role_exists(conn, role):
            raise db.DatabaseError(f"role {role!r} does not exist: create the login first "
                                f"(CREATE ROLE {role} LOGIN PASSWORD '...')")
        if not consumer.reader_role_exists(conn):
            try:
                consumer.create_reader_role(conn)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise db.DatabaseError(f"this user may not create the role {consumer.READER_ROLE}: an administrator "
                                    f"runs `CREATE ROLE {consumer.READER_ROLE} NOLOGIN`, then this command "
                                    "again") from exc
        try:
            consumer.grant_reader_privileges(conn)
            consumer.grant_reader_to(conn, role)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise db.DatabaseError(f"granting read access failed ({str(exc).strip()}): run this command as the "
                                f"owner of the news_api schema (the user that runs `newsflow db upgrade`) with the "
                                f"right to grant {consumer.READER_ROLE}") from exc
    return (f"{role} can now read news_api (member of {consumer.READER_ROLE}: SELECT on its views, EXECUTE on "
            "its functions, also for objects later migrations add; LISTEN news_changes, whose payloads are hints: "
            "re-read the change feed). It cannot write, see schema news, or take newsflow's coordination locks "
            "(rows of news.locks), so it cannot stall ingestion or purges (docs/consumers.md)")
