"""The ops console: newsflow's own pages inside the Airflow UI (Feeds, a feed's page,
Stories, Pipeline) and their JSON API, served by the Airflow API server.

``plugins/newsflow_console.py`` registers it with Airflow (``fastapi_apps`` mounted at
``/newsflow``, an ``external_views`` entry in the navigation) and imports :mod:`.app` only
on the first request, in the API server only.

* :mod:`.app`: the FastAPI app, its routes and templates (Jinja2, autoescape);
* :mod:`.security`: Airflow's own authentication and DAG permissions, CSRF for form posts;
* :mod:`.backend`: settings, the news database (a small connection pool), Airflow's REST API;
* :mod:`.charts`: the inline SVG charts.

All SQL is in ``newsflow.storage``; all actions are ``newsflow.operations``.
"""
