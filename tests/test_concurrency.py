"""Two ingestion runs started together on the same pending entries (two OS processes,
`python -m newsflow ingest` twice) process every entry exactly once: claims use
FOR UPDATE SKIP LOCKED, so neither waits for nor repeats the other's batch."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import fetch_all
from newsflow import db
from newsflow.pipeline import sync_feeds
from newsflow.poll import poll_feeds, select_feeds
from newsflow.registry import parse_file


def test_two_ingest_processes_process_each_entry_once(settings, database_url, sample_feeds):
    sync_feeds(database_url, parse_file(sample_feeds).specs)
    with db.connect(database_url) as conn:
        feeds = select_feeds(conn, force=True)
    assert sum(o.new_entries for o in poll_feeds(database_url, settings, feeds)) == 14

    env = {**os.environ, "NEWSFLOW_DATABASE_URL": database_url, "NEWSFLOW_DATA_DIR": settings.data_dir,
           "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "1", "NEWSFLOW_PER_HOST_DELAY": "0",
           "NEWSFLOW_PER_HOST_CONCURRENCY": "4", "NEWSFLOW_EXTRACT_WORKERS": "1",
           # small batches, so the two runs interleave over the queue
           "NEWSFLOW_BATCH_SIZE": "2"}
    cmd = [sys.executable, "-m", "newsflow", "ingest"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    claimed = [int(re.search(r"(\d+) entries ->", out).group(1)) for out, _ in outputs]
    assert sum(claimed) == 14, (claimed, outputs)
    print("entries claimed per process:", claimed)

    entries = fetch_all(database_url, "SELECT id, status, attempts, article_id FROM news.entries")
    assert len(entries) == 14
    assert all(e["status"] == "loaded" and e["attempts"] == 1 and e["article_id"] for e in entries), entries
    assert fetch_all(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 13
    pages = fetch_all(database_url, """SELECT entry_id, count(*) AS n FROM news.fetch_log
                                       WHERE kind = 'page' GROUP BY entry_id""")
    assert sorted(p["entry_id"] for p in pages) == sorted(e["id"] for e in entries)
    assert all(p["n"] == 1 for p in pages), pages
    # one story per piece of content: syndicated copies joined one story, never two
    dup = fetch_all(database_url, """SELECT content_hash, count(*) AS n FROM news.articles
                                     GROUP BY content_hash HAVING count(*) > 1""")
    assert dup == []
    isis = fetch_all(database_url, """
        SELECT count(DISTINCT a.publisher) AS outlets FROM news.stories s JOIN news.articles a
        ON a.story_id = s.id WHERE s.title ILIKE '%%islamic state%%' OR s.title ILIKE '%%isis%%'
        GROUP BY s.id ORDER BY 1 DESC""")
    assert isis[0]["outlets"] == 4, isis
