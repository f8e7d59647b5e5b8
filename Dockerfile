# newsflow on the official Airflow 3 image: the DAGs' package and its pinned dependencies.
# Built by docker-compose.yml (the multi-machine path). The lock is used as constraints, so
# every library is the version CI tested, while Airflow itself stays the image's own.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

COPY --chown=airflow:root requirements.lock pyproject.toml README.md /opt/newsflow/
COPY --chown=airflow:root plugins/newsflow /opt/newsflow/plugins/newsflow
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        -c /opt/newsflow/requirements.lock /opt/newsflow
# Migrations and the sample world are package data: nothing else to copy.
