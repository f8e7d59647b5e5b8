"""Feed health in words, for operators: why a feed is in its state and what brings it back
(the console, `newsflow feeds status`, the maintenance report, the stale-feed webhook), and
durations for people. The states themselves are decided in SQL (``storage.feeds.health``);
the record is ``models.FeedStatus``."""

from __future__ import annotations

from datetime import datetime

from .models import FeedStatus


def disabled_by(feed: FeedStatus) -> str:
    """Who disabled the feed, for people."""
    return {"file": "the feeds file", "operator": "an operator"}.get(feed.disabled_by or "", "newsflow")


def reason(feed: FeedStatus) -> str:
    """Why the feed is in its state, in words an operator acts on ('' when healthy)."""
    now = datetime.now(feed.next_poll_at.tzinfo)
    if feed.state == "disabled":
        if feed.disabled_by == "file":
            return (f"{feed.disabled_reason or 'disabled in the feeds file'}; "
                    "`enabled: true` there (or an operator) enables it again")
        if feed.disabled_by == "operator":
            return f"{feed.disabled_reason or 'disabled by an operator'}; re-enable in Feeds"
        return (f"{feed.disabled_reason or 'disabled after errors'}; stays disabled until an "
                "operator re-enables it (the feeds file cannot)")
    if feed.state == "failing":
        failures = ("1 failure" if feed.consecutive_errors == 1
                    else f"{feed.consecutive_errors} consecutive failures")
        return (f"{failures}; last: {feed.last_error}; "
                f"next try in {span((feed.next_poll_at - now).total_seconds())}")
    if feed.state == "stale":
        quiet = span((now - feed.last_arrival_at).total_seconds()) if feed.last_arrival_at else None
        usual = (f"usually every {span(feed.rhythm_seconds)}" if feed.rhythm_trusted
                 else "its rhythm is not known yet")
        return (f"answers, but no new entry for {quiet}; {usual}" if quiet else
                f"answers, but has never brought an entry in {span(feed.stale_after)}")
    if feed.state == "deferred":
        return (f"its host asked newsflow to wait (Retry-After); next poll in "
                f"{span((feed.next_poll_at - now).total_seconds())}")
    if feed.state == "new":
        due = (feed.next_poll_at - now).total_seconds()
        return ("not polled yet" if feed.last_polled_at is None else
                "errors cleared; not polled since " + (f"(due in {span(due)})" if due > 0 else "(due now)"))
    return feed.last_error or ""


def line(feed: FeedStatus) -> str:
    """One line: the maintenance report (command line and Airflow log)."""
    why = reason(feed)
    return f"{feed.state:8} {feed.label} <{feed.url}>" + (f": {why}" if why else "")


def plural(n: int, one: str, many: str) -> str:
    """``1 entry``, ``2 entries``."""
    return f"{n} {one if n == 1 else many}"


def span(seconds: float | int | None) -> str:
    """A duration for people: 45 s, 12 min, 5 h, 3 d 4 h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    if s < 86400 * 2:
        return f"{s / 3600:.1f} h".replace(".0 h", " h")
    days, hours = divmod(round(s / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
