# safetrail — customer-safe debug timelines. `make help` lists the targets.
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test-deps chromium kafka-jars demo serve test lint typecheck bench soak kafka-up kafka-down kafka-cluster-up kafka-cluster-down clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install safetrail with its dev tools

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 ingest projectors query_api redaction_rules safetrail >/dev/null
	touch $@

chromium: ## install Debian's headless Chromium for the browser tests
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

kafka-jars: ## fetch the Apache Kafka broker jars from Maven Central
	bash deploy/local/kafka.sh fetch

test-deps: install chromium kafka-jars ## everything the tests need

demo: install ## run the embedded pipeline with synthetic traffic on 127.0.0.1:8000
	SAFETRAIL_DEMO=1 $(BIN)/safetrail demo

serve: install ## run the embedded pipeline (collector + processing + API)
	$(BIN)/safetrail serve

test: test-deps ## install what the tests need, start it, run the whole suite
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: install ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict
	$(BIN)/mypy safetrail ingest redaction_rules projectors query_api

bench: test-deps ## benchmarks; writes bench/results/latest.json and prints a table
	$(BIN)/python -m bench

soak: test-deps ## the long reliability runs that do not fit in make test
	$(BIN)/pytest -q -m soak --run-soak

kafka-up: kafka-jars ## start a local single-node Apache Kafka (KRaft) on 127.0.0.1:$SAFETRAIL_KAFKA_PORT
	bash deploy/local/kafka.sh up

kafka-down: ## stop the local broker started by kafka-up
	bash deploy/local/kafka.sh down

kafka-cluster-up: kafka-jars ## start a local 3-node Apache Kafka cluster (ports: SAFETRAIL_KAFKA_CLUSTER_PORTS)
	bash deploy/local/kafka.sh cluster-up

kafka-cluster-down: ## stop the local 3-node cluster started by kafka-cluster-up
	bash deploy/local/kafka.sh cluster-down

clean: ## remove local state (venv kept)
	rm -rf .safetrail deploy/local/.kafka tests/artifacts
