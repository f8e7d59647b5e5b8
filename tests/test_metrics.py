"""Metrics go through Airflow's own metrics setup: here OpenTelemetry (installed with
Airflow), exported over OTLP/HTTP to a receiver in this test, from the real task functions
polling a fault server and ingesting its pages. Without any [metrics] backend the same
tasks run with no metrics (the dag.test() runs in test_airflow_e2e.py)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import fetch_all
from faultserver import FaultServer, article_html, rss
from newsflow.models import FeedSpec
from newsflow.pipeline import sync_feeds

sys.path.insert(0, str(Path(__file__).parent))
import airflow_harness as harness  # noqa: E402

pytestmark = pytest.mark.airflow


class Receiver:
    """An OTLP/HTTP metrics endpoint: {metric name: summed value} of what it received."""

    def __init__(self):
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def metrics(self) -> dict[str, float]:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        out: dict[str, float] = {}
        for body in self.bodies:
            request = ExportMetricsServiceRequest()
            request.ParseFromString(body)
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        points = (m.sum.data_points or m.gauge.data_points or m.histogram.data_points
                                  or m.exponential_histogram.data_points)
                        value = sum(getattr(p, "as_int", 0) or getattr(p, "as_double", 0)
                                    or getattr(p, "count", 0) for p in points)
                        out[m.name.removeprefix("airflow.")] = out.get(m.name.removeprefix("airflow."), 0) + value
        return out


def test_task_metrics_reach_airflows_opentelemetry_exporter(tmp_path, database_url):
    receiver = Receiver()
    with FaultServer() as fs:
        items = [{"title": f"Story {i}", "link": fs.url(f"/a{i}"), "guid": f"urn:{i}", "description": "x"}
                 for i in range(3)]
        for i in range(3):
            fs.add(f"/a{i}", article_html(f"Story {i}", seed=str(i)))
        sync_feeds(database_url, [FeedSpec(url=fs.add("/ok.xml", rss(items), content_type="application/rss+xml"),
                                           publisher="Fine"),
                                  FeedSpec(url=fs.add("/broken.xml", "boom", status=500), publisher="Broken")])
        ids = [r["id"] for r in fetch_all(database_url, "SELECT id FROM news.feeds ORDER BY id")]
        env = harness.airflow_env(
            tmp_path / "home", database_url, NEWSFLOW_ALLOW_PRIVATE_NETWORKS="1", NEWSFLOW_PER_HOST_DELAY="0",
            NEWSFLOW_OBEY_ROBOTS="0", NEWSFLOW_EXTRACT_WORKERS="1",
            AIRFLOW__METRICS__OTEL_ON="True", AIRFLOW__METRICS__OTEL_HOST="127.0.0.1",
            AIRFLOW__METRICS__OTEL_PORT=str(receiver.server.server_address[1]),
            AIRFLOW__METRICS__OTEL_INTERVAL_MILLISECONDS="600000")
        polled = harness.run(env, "metrics", "poll_shard", json.dumps({"feed_ids": ids}))
        assert polled["result"]["new_entries"] == 3
        ingested = harness.run(env, "metrics", "ingest", "{}")
        assert ingested["result"]["loaded"] == 3
    receiver.server.shutdown()
    got = receiver.metrics()
    assert got["newsflow.feeds.polled"] == 2 and got["newsflow.feeds.failed"] == 1
    assert got["newsflow.entries.new"] == 3
    assert got["newsflow.fetch_errors.feed.http"] == 1
    assert got["newsflow.articles.loaded"] == 3
    assert got["newsflow.entries.pending"] == 0  # gauge after the ingest worker
    assert got["newsflow.stage.poll"] == 1 and got["newsflow.stage.ingest"] == 1  # one timing each
