# newsflow — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.9

.PHONY: setup demo test test-fast lint airflow celery-check bench bench-dedup lock clean db-stop

setup: $(STAMP)

# Pinned install from requirements.lock (our own lock: Airflow's constraint files are
# not reachable from every network). uv does the install; pip only bootstraps uv.
# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (CI does), every process would
# otherwise compile Airflow and friends from source at each import.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

demo: setup
	$(BIN)/newsflow demo

test: setup
	$(BIN)/python -m pytest

# ruff (pyflakes + bugbear) and vulture (dead code); settings in pyproject.toml.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/vulture

test-fast: setup
	$(BIN)/python -m pytest -m "not airflow and not slow"

# Airflow 3 on this machine: embedded PostgreSQL (news data + metadata database `airflow`),
# AIRFLOW_HOME=airflow_home/, the sample world on loopback; prints the UI URL and login.
airflow: setup
	$(BIN)/python tools/airflow_standalone.py

# The same DAGs under CeleryExecutor: scheduler, api-server, dag-processor, triggerer and one
# Celery worker against the real Redis and PostgreSQL (127.0.0.1), ingesting the sample world
# from scratch; then everything stops. Override with CELERY_CHECK_DB / CELERY_CHECK_BROKER.
CELERY_CHECK_DB     ?= postgresql://postgres@127.0.0.1:5432/postgres
CELERY_CHECK_BROKER ?= redis://127.0.0.1:6379/5
celery-check: setup
	$(BIN)/python tools/airflow_standalone.py --executor celery --check --fresh --port 18080 \
		--home $(CURDIR)/airflow_home/celery-check \
		--database-url "$(CELERY_CHECK_DB)" --broker "$(CELERY_CHECK_BROKER)"

# Throughput, in one run (needs ../shared/corpus): end to end with politeness lifted (ratio to
# raw trafilatura, where the time goes, extraction F1), the polite pass against its politeness
# bound, polling at scale, the dedup write path at 100k indexed, the fingerprint's cost per
# text length. Figures in README.
bench: setup
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/frontier_bench.py
	$(BIN)/python bench/polling_bench.py
	$(BIN)/python bench/dedup_index_bench.py --big 0
	$(BIN)/python bench/dedup_speed.py

bench-dedup: setup
	$(BIN)/python bench/dedup_eval.py
	$(BIN)/python bench/dedup_speed.py

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/uv pip compile -q --python $(BIN)/python pyproject.toml --extra airflow --extra test -o requirements.lock

db-stop:
	-$(BIN)/newsflow db stop

clean: db-stop
	rm -rf $(VENV) .newsflow airflow_home
