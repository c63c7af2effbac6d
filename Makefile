# Auralis: `make run` starts the whole system locally, `make test` runs the test suite.
PORT ?= 8000
METRICS_PORT ?= 8080
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Ray's object store and GCS on non-default ports, so a `make run` and a test run can coexist
RAY_PORT ?= 6390
export RAY_SERVE_ENABLE_HA_PROXY ?= 0

.PHONY: run test bench stop install browser clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e '.[dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	mkdir -p build
	sed -e 's/port: 8000/port: $(PORT)/' configs/serve.yaml > build/serve.yaml
	-$(BIN)/ray stop --force >/dev/null 2>&1
	$(BIN)/ray start --head --port=$(RAY_PORT) --metrics-export-port=$(METRICS_PORT) \
		--dashboard-host=127.0.0.1 --disable-usage-stats
	trap '$(BIN)/ray stop --force >/dev/null 2>&1' EXIT INT TERM; \
		$(BIN)/serve run --address=127.0.0.1:$(RAY_PORT) build/serve.yaml

stop:
	-$(BIN)/ray stop --force

browser:
	@test -x /usr/bin/chromium || (apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) || \
		echo "chromium could not be installed: browser tests will be skipped"

test: $(STAMP) browser
	node --test tests/web/
	$(BIN)/python -m pytest -q -ra --timeout=600

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache test-artifacts
