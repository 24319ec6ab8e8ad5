# Two commands for a newcomer: `make up` and `make test`. Everything installs itself into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: up test soak lint bench demo migrate clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: pyproject.toml | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.runtime-installed

up: $(VENV)/.runtime-installed
	$(VENV)/bin/broker up

migrate: $(VENV)/.runtime-installed
	$(VENV)/bin/broker migrate

demo: $(VENV)/.runtime-installed
	$(VENV)/bin/broker demo

# The browser tests drive Debian's Chromium (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
chromium: $(CHROMIUM)
$(CHROMIUM):
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core

test: $(VENV)/.dev-installed $(CHROMIUM)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy matching broker/domain

# The fault tests of the async spine at full size (RELIABILITY.md G1, G3-G5): 2,000 events under 20
# worker SIGKILLs, 1,000 requests through the Redis and PostgreSQL faults. `make test` runs them smaller.
soak: $(VENV)/.dev-installed
	BROKER_FAULT_EVENTS=2000 BROKER_FAULT_KILLS=20 BROKER_FAULT_REQUESTS=1000 BROKER_FAULT_CRASHES=100 \
		$(VENV)/bin/pytest -p no:cacheprovider -rA -s tests/e2e/test_worker_kills.py tests/e2e/test_relay_faults.py

bench: $(VENV)/.dev-installed
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache bench/results
