"""The console's charts: small inline SVGs drawn by the templates from the geometry
computed here (no JavaScript library, nothing fetched from elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    kind: str  # css class: ok, error, mixed, quiet, none, new, joined
    title: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)  # x, text (time axis)
    peak: int = 0  # the value of a full-height bar
    empty: bool = True


def feed_history(buckets: Sequence[dict], since: datetime, bucket: timedelta, n: int) -> Chart:
    """A feed's polls over time: a status strip (green: answered, red: failed, amber:
    both, grey: not polled) above bars of new entries per bucket. A feed that silently
    stopped shows a green strip with no bars."""
    slot, strip, top, base = 10, 10, 16, 92
    chart = Chart(width=n * slot, height=base + 16)
    by_start = {b["at"]: b for b in buckets}
    chart.peak = max((b["new_entries"] for b in buckets), default=0)
    for i in range(n):
        start = since + bucket * i
        b = by_start.get(start)
        x = i * slot
        when = f"{start:%a %d %b %H:%M}"
        if b is None:
            chart.bars.append(Bar(x, 0, slot - 1, strip, "none", f"{when}: not polled"))
            continue
        chart.empty = False
        kind = "error" if b["errors"] == b["polls"] else "mixed" if b["errors"] else "ok"
        detail = (f"{when}: {b['polls']} poll(s), {b['errors']} failed, {b['not_modified']} not modified, "
                  f"{b['new_entries']} new entries; last status {b['last_status'] or 'no answer'}"
                  + (f" ({b['last_error']})" if b["last_error"] else ""))
        chart.bars.append(Bar(x, 0, slot - 1, strip, kind, detail))
        if b["new_entries"]:
            h = max(2.0, (base - top) * b["new_entries"] / chart.peak)
            chart.bars.append(Bar(x + 1, base - h, slot - 3, h, "new", detail))
    day = (since + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    step = max(1, n * bucket.total_seconds() // 86400 // 7)  # at most ~8 labels
    k = 0
    while day < since + bucket * n:
        if k % step == 0:
            chart.labels.append(((day - since) / bucket * slot, f"{day:%d %b}"))
        day += timedelta(days=1)
        k += 1
    return chart


def per_hour(hours: Sequence[dict]) -> Chart:
    """Articles loaded per hour: new stories (blue) and articles that joined a story (teal)."""
    slot, top, base = 16, 10, 120
    chart = Chart(width=len(hours) * slot, height=base + 16)
    chart.peak = max((h["articles"] for h in hours), default=0)
    for i, h in enumerate(hours):
        x = i * slot
        if h["articles"]:
            chart.empty = False
            full = (base - top) * h["articles"] / chart.peak
            joined = full * h["joined"] / h["articles"]
            title = f"{h['at']:%a %d %b %H:00}: {h['articles']} articles, {h['joined']} joined an existing story"
            chart.bars.append(Bar(x + 1, base - full, slot - 3, full - joined, "new", title))
            if joined:
                chart.bars.append(Bar(x + 1, base - joined, slot - 3, joined, "joined", title))
        if h["at"].hour % 6 == 0:
            chart.labels.append((x, f"{h['at']:%H:00}" if h["at"].hour else f"{h['at']:%d %b}"))
    return chart
