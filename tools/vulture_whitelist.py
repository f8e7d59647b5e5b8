"""Names vulture (the dead-code check in `make lint`) cannot see being used: each one is
called or read by a framework, a library or a template, never by our own Python. Add a
name here only with the reason it is a false positive; dead code is deleted instead."""
# ruff: noqa: F821, B018
# vulture reads this file as code that "uses" the names; it is never imported.

# http.server calls these on the handler and server classes (sample world, bench publishers).
protocol_version
server_version
_.log_message
_.do_GET
_.daemon_threads

# FastAPI calls the console's route functions and its exception handler through the
# decorators that register them (plugins/newsflow/airflow/console/app.py).
_http_error
_frame_only_in_airflow  # its middleware, registered by @app.middleware("http")
feeds_page
feeds_api
feed_page
feed_api
stories_page
stories_api
story_page
story_api
pipeline_page
pipeline_api
stylesheet
icon
whoami
events_page  # events_pages.py, registered on the same app
events_api
event_page
event_api

# Airflow's plugin manager finds the plugin class and reads its attributes.
NewsflowConsolePlugin
fastapi_apps
external_views

# Read by the console's Jinja templates (templates/*.html), not by Python.
y  # charts.Bar.y (macros.html)
height  # charts.Chart.height (macros.html)
rhythm_samples  # FeedStatus (feed.html)
last_success_at  # FeedStatus (feeds.html, feed.html)
entries_24h
entries_7d
loaded_24h
loaded_7d
first_published_at  # StoryView (stories.html, story.html)

# Settings read by the libraries they are assigned to.
_.isolation_level  # psycopg connection (export.py)
_.read_only  # psycopg connection (export.py)
_.itersize  # psycopg server-side cursor (storage/consumer.py)
_._network_backend  # httpcore's connection pool (httpclient.py)
_.RESOLVE_RELATIVE_URIS  # feedparser module setting (parse.py)
_.SANITIZE_HTML  # feedparser module setting (parse.py)

# Fields of public records, filled from the database: part of what the record says even
# where no code of ours reads them.
matched_article_id  # dedup Assignment: the representative a text was verified against (tests assert it)
story_title  # SearchHit: a column of news_api.search(), for library callers
