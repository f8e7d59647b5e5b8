"""newsflow: news feeds → article text → syndication-aware stories in PostgreSQL.

The package is the whole pipeline; the Airflow DAGs in ``dags/`` and the ``newsflow``
command both call it. Modules are named after the stage they implement:
config, db, registry, poll (with parse and httpclient), fetch, extract, normalize,
dedup, ingest (load), recluster, maintenance, pipeline, cli; SQL lives in storage/.
"""

__version__ = "0.1.0"
