# Auralis: `make run` starts the whole system locally, `make test` runs the test suite.
PORT ?= 8000
METRICS_PORT ?= 8080
# Serve's own HTTP door (HAProxy); listeners use $(PORT), the replicas' shared port
SERVE_PORT ?= $(shell echo $$(($(PORT) + 1)))
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Ray's GCS on a non-default port, so a `make run` and a test run can coexist
RAY_PORT ?= 6390
SERVE_CONFIG ?= configs/serve.yaml
# `make run` is `auralis run` (auralis_ray/serve/launcher.py): it starts Ray, hands Serve the config
# (`serve run --non-blocking`) with the system environment in auralis_ray/serve/local.py
# (`system_env`), keeps Ray's token and the run's record in build/, and stops everything on Ctrl-C or
# SIGTERM. Listeners come in through the replicas' shared port only; a variable given on the command
# line or in the environment wins, e.g. Serve's own door (HAProxy on $(SERVE_PORT)) beside it:
# make run RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_ENABLE_DIRECT_INGRESS=1
DASHBOARD_PORT ?= 8265
RAY_CLIENT_PORT ?= 10001
RUN_STATE_DIR ?= build
RUN_ARGS = --port $(PORT) --serve-port $(SERVE_PORT) --metrics-port $(METRICS_PORT) --ray-port $(RAY_PORT) \
	--dashboard-port $(DASHBOARD_PORT) --ray-client-port $(RAY_CLIENT_PORT) --config $(SERVE_CONFIG) --state-dir $(RUN_STATE_DIR)

.PHONY: run monitor test bench stop install test-tools clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e '.[dev,tools]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	exec $(BIN)/auralis run $(RUN_ARGS)

# Debian's Prometheus on `make run`'s metrics, with the alert rules; the Ray dashboard reads it
PROMETHEUS_PORT ?= 9090
monitor: $(STAMP)
	@command -v prometheus >/dev/null || apt-get install -y -q prometheus >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q prometheus >/dev/null 2>&1) || true
	exec $(BIN)/auralis monitor $(RUN_ARGS) --prometheus-port $(PROMETHEUS_PORT)

# ends what a `make run` of this checkout left running (after a stop cut short by SIGKILL)
stop:
	$(BIN)/auralis stop $(RUN_ARGS)

# Debian's chromium (browser and dashboard tests), prometheus and promtool (Prometheus and alert rule
# tests) and ffmpeg (decoding the compressed streams). A test without its tool is skipped on a
# developer's machine and fails under CI=true; so does a failed install here.
test-tools:
	@missing=""; test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v promtool >/dev/null && command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
		(apt-get install -y -q $$missing >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1)) || \
		{ echo "could not install:$$missing"; [ "$$CI" != true ] || exit 1; }; fi

# The suite in lanes (tests/lanes.py): the real-time checks on the session's Ray, then on the
# multi-node cluster, at normal priority; beside them the tests with a Ray of their own (the
# operator's) at niceness 10 and the units with the clean install at 19. `pytest` alone runs it in
# one lane.
test: $(STAMP) test-tools
	node --test tests/web/
	$(BIN)/python tests/lanes.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache test-artifacts
