"""`newsflow export`: the change feed with each entity's state, streamed to a file.

One row per change with ``since_seq < seq <= until_seq`` (``until_seq`` defaults to the
last change visible when the export starts), in seq order, with the article's, story's
or tombstone's columns as they are at export time (``storage.consumer.EXPORT_COLUMNS``).
Rows stream through a server-side cursor in a read-only REPEATABLE READ transaction, so
memory stays constant and the state is one snapshot. Resumable: the next export starts
at ``--since-seq`` = this one's ``until_seq``.

Formats: ``jsonl`` (each line a JSON object made by PostgreSQL's row_to_json: valid JSON
whatever the text holds), ``csv`` (header row; arrays and objects as JSON text), and
``parquet`` (needs pyarrow, the optional extra ``newsflow[parquet]``).

CSV tells NULL from an empty string the way PostgreSQL's ``COPY ... (FORMAT csv)`` does:
every value is quoted, NULL is an empty *unquoted* field (``,,``) and an empty string is
``""``. ``COPY t FROM 'file' (FORMAT csv, HEADER)`` reads it back with NULLs intact;
Python's csv module reads both as ``''`` (use jsonl or parquet there).

Long exports report progress on standard error every ``NEWSFLOW_EXPORT_PROGRESS_ROWS`` rows
(the count of change rows in the range is taken first, in the same snapshot).
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Callable, Iterator

import psycopg

from . import db
from .config import Settings
from .storage import changes, consumer

FORMATS = ("jsonl", "csv", "parquet")


@dataclass
class ExportResult:
    """What `newsflow export` wrote: rows and the range of change numbers it covered."""
    rows: int = 0
    since_seq: int = 0
    until_seq: int = 0

    def summary(self) -> str:
        return (f"exported {self.rows} change rows, seq {self.since_seq} < seq <= {self.until_seq}; "
                f"next: --since-seq {self.until_seq}")


# (rows written, rows in the range)
Progress = Callable[[int, int], None]


def export(url: str, settings: Settings, *, since_seq: int, until_seq: int | None, fmt: str,
           output: str, progress: Progress | None = None) -> ExportResult:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    writer = _parquet_writer() if fmt == "parquet" else None  # fails early without pyarrow
    result = ExportResult(since_seq=since_seq)
    with db.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for the whole export
        conn.read_only = True
        with conn.transaction():
            result.until_seq = until_seq if until_seq is not None else changes.latest_seq(conn)
            total = changes.count_between(conn, since_seq, result.until_seq) if progress else 0
            rows = consumer.export_rows(conn, since_seq, result.until_seq, as_json=fmt == "jsonl",
                                        batch_size=settings.export_batch_size)
            if progress is not None and total > settings.export_progress_rows:
                rows = _reporting(rows, total, settings.export_progress_rows, progress)
            with _open(output, binary=fmt == "parquet") as out:
                if fmt == "jsonl":
                    for (line,) in rows:
                        out.write(line)
                        out.write("\n")
                        result.rows += 1
                elif fmt == "csv":
                    result.rows = _write_csv(rows, out)
                else:
                    result.rows = writer(rows, out, settings.export_batch_size)
    return result


def _reporting(rows: Iterator[tuple], total: int, every: int, progress: Progress) -> Iterator[tuple]:
    n = 0
    for row in rows:
        yield row
        n += 1
        if n % every == 0:
            progress(n, total)
    progress(n, total)


@contextmanager
def _open(output: str, *, binary: bool) -> Iterator[IO]:
    if output == "-":
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    path = Path(output)
    with (path.open("wb") if binary else path.open("w", encoding="utf-8", newline="")) as f:
        yield f


def _csv_field(value) -> str:
    """NULL: an empty unquoted field; anything else quoted (RFC 4180: a quote is doubled),
    so an empty string is "" (Python 3.11's csv writer cannot quote all but NULL)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return '"' + str(value).replace('"', '""') + '"'


def _write_csv(rows, out: IO) -> int:
    csv.writer(out).writerow(consumer.EXPORT_COLUMNS)
    n = 0
    for row in rows:
        out.write(",".join(_csv_field(v) for v in row))
        out.write("\r\n")
        n += 1
    return n


def _parquet_writer():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("--format parquet needs pyarrow, which is not installed: "
                         "pip install 'newsflow[parquet]' (or pyarrow), or export jsonl/csv") from None
    ts = pa.timestamp("us", tz="UTC")
    types = {"seq": pa.int64(), "entity_id": pa.int64(), "story_id": pa.int64(), "previous_story_id": pa.int64(),
             "fields": pa.list_(pa.string()), "authors": pa.list_(pa.string()), "word_count": pa.int32(),
             "revision": pa.int32(), "article_count": pa.int32(), "outlet_count": pa.int32(),
             **{c: ts for c in ("changed_at", "published_at", "sort_at", "created_at", "updated_at", "deleted_at")}}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in consumer.EXPORT_COLUMNS])

    def write(rows, out, batch_size: int) -> int:
        n = 0
        with pq.ParquetWriter(out, schema) as writer:
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= batch_size:
                    n += _flush(pa, writer, schema, batch)
            n += _flush(pa, writer, schema, batch)
        return n

    return write


def _flush(pa, writer, schema, batch: list[tuple]) -> int:
    if not batch:
        return 0
    columns = list(zip(*batch, strict=True))
    arrays = []
    for name, values in zip(schema.names, columns, strict=True):
        if name == "outlets":
            values = [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values]
        arrays.append(pa.array(values, type=schema.field(name).type))
    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    n = len(batch)
    batch.clear()
    return n
