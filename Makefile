# Batch recommendation pipeline: `make setup` once, then `make run`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RECO := $(BIN)/reco
DATASET ?=
FORMAT ?= auto
TOP_N ?= 10
PYTEST_ARGS ?=
RUN_ARGS ?=
# Test sessions side by side (pytest-xdist), each with its own PostgreSQL, Airflow home
# and Spark driver under var/test/gwN.
TEST_WORKERS ?= 2

.PHONY: help setup check-java check-browser test-setup run test test-durations test-deploy test-fast lint format psql airflow db-stop clean bench bench-scaling bench-accuracy bench-grid bench-publish bench-concurrency bench-retention

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

check-java:  ## fail clearly unless Java 17+ is installed (Spark 4 needs it)
	@v=$$(java -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1/'); \
	if ! command -v java >/dev/null 2>&1; then \
	  echo "ERROR: Java not found. Spark 4 needs Java 17 or 21: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"; exit 1; \
	elif [ "$$v" -lt 17 ] 2>/dev/null; then \
	  echo "ERROR: Java $$v found; Spark 4 needs Java 17 or 21: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"; exit 1; \
	else echo "java $$v: ok"; fi

check-browser:  ## Chromium for the browser tests of the Airflow UI: installed from Debian when missing (as root)
	@if command -v chromium >/dev/null 2>&1; then echo "$$(chromium --version 2>/dev/null | head -1): ok"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Chromium not found: installing the Debian package (apt-get install chromium)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  && chromium --version; \
	else echo "ERROR: Chromium not found, and the browser tests of the Airflow UI need it. Ask an administrator for it (sudo apt-get install chromium on Debian/Ubuntu) or put a chromium on PATH; the pipeline itself (make run) does not need it."; exit 1; fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: check-java $(BIN)/python  ## create .venv, install the pinned runtime, prepare Airflow + warehouse (no root, no browser)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e .
	$(BIN)/python -c "import pyspark, sys; v = pyspark.__version__; sys.exit(0 if v == '4.2.0' else 'pyspark/pyspark-client mismatch: ' + v)"
	$(RECO) init

# The test tools (pytest, Playwright, ...): installed by the first `make test`, apart from
# the runtime, so a deployment installs none of them.
$(VENV)/.test-tools: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --progress-bar off -e '.[dev]'
	touch $@

test-setup: $(VENV)/.test-tools check-browser  ## the test tools and Chromium (the browser tests); make test runs it

run:  ## run the whole pipeline (DATASET=path FORMAT=auto TOP_N=10 RUN_ARGS='--any reco run flag'); non-zero exit if the run failed
	$(RECO) run $(if $(DATASET),--dataset "$(DATASET)") --format $(FORMAT) --top-n $(TOP_N) $(RUN_ARGS)

test: test-setup  ## run the whole test suite (unit, integration, DAG, end-to-end) on TEST_WORKERS workers
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not deploy" $(PYTEST_ARGS)

test-durations:  ## run the suite and keep each test file's seconds in tests/durations.json (the workers' queue order)
	$(MAKE) test PYTEST_ARGS="--record-durations $(PYTEST_ARGS)"

test-deploy: $(VENV)/.test-tools  ## start docker-compose.yml in Docker and run ML-100K through it (installs/starts the engine as root)
	bash docker/engine.sh
	$(BIN)/pytest tests/deploy -m deploy -s $(PYTEST_ARGS); status=$$?; bash docker/engine.sh --stop; exit $$status

test-fast: $(VENV)/.test-tools  ## unit tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.test-tools  ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test-tools
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-scaling bench-publish  ## scaling (1M/5M/20M, default CV on 1M) + publish throughput (not a test; ~2 h)

bench-scaling:  ## the whole pipeline on synthetic 1M/5M/20M ratings + default CV on 1M (not a test)
	$(BIN)/python -m bench.scaling

bench-accuracy:  ## accuracy benchmark on the shared MovieLens datasets (not a test; ~10 min)
	$(BIN)/python -m bench.accuracy

bench-grid:  ## how the default ranking grid was chosen: CV vs test on the shared MovieLens data (not a test; ~70 min)
	$(BIN)/python -m bench.grid_search

bench-publish:  ## publish throughput vs psql \copy, pandas.to_sql, Spark JDBC (not a test; ~2 min)
	$(BIN)/python -m bench.publish

bench-concurrency:  ## whole ML-100K publishes under readers of every path, and a 60 s open transaction (not a test; ~4 min)
	$(BIN)/python -m bench.publish_concurrency

bench-retention:  ## disk use over 30 simulated daily runs of ML-100K, with retention and without (not a test; ~1 min)
	$(BIN)/python -m bench.retention

psql:  ## open psql on the warehouse
	psql "$$($(RECO) warehouse-url)"

airflow:  ## start the Airflow UI (airflow standalone) with the DAGs loaded; prints the login
	$(RECO) airflow-ui

db-stop:  ## stop the embedded PostgreSQL
	$(RECO) db stop

clean:  ## remove local state (lake, reports, embedded PostgreSQL data, Airflow home)
	-$(RECO) db stop
	rm -rf var
