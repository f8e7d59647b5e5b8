"""Airflow plugin: the newsflow ops console inside the Airflow UI.

Registers newsflow's FastAPI app on the Airflow API server at ``/newsflow`` and a
"Newsflow" entry in the UI's navigation that shows it (an iframe: Feeds, Stories, Pipeline).
The app itself is ``newsflow.airflow.console.app``.

Every Airflow process that loads plugins imports this file (scheduler, dag-processor,
triggerer and every task process), so it stays light: the app, FastAPI and Airflow's
API-server security modules are imported by the small ASGI shim below on the first HTTP
request, in the API server only.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class _LazyConsole:
    """An ASGI app that imports the real one on first use."""

    _app = None

    async def __call__(self, scope, receive, send):
        if _LazyConsole._app is None:
            from newsflow.airflow.console.app import app

            _LazyConsole._app = app
        await _LazyConsole._app(scope, receive, send)


class NewsflowConsolePlugin(AirflowPlugin):
    name = "newsflow_console"
    # app.mount("/newsflow", ...) on the API server (reserved: /api/v2 /ui /execution /auth /pluginsv2)
    fastapi_apps = [{"app": _LazyConsole(), "url_prefix": "/newsflow", "name": "newsflow ops console"}]
    external_views = [{
        "name": "Newsflow",                 # nav label and iframe title
        "href": "newsflow/",                # relative: resolves against the UI's base URL
        "destination": "nav",
        "url_route": "newsflow",            # the UI route /plugin/newsflow shows the iframe
        "nav_top_level": True,              # its own button in the left navigation bar
        "icon": "newsflow/icon.svg",
    }]
