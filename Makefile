# Two commands for a newcomer: `make up` and `make test`. Everything installs itself into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: up test fuzz soak lint lock bench demo migrate clean chromium

# Everything installs from the locks (exact versions, every file's hash): requirements.lock for the
# service, requirements-dev.lock for the service and its tests (the same versions, plus the dev extra).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.8
UV_COMPILE := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command 'make lock'
# The digest of what the locks are computed from: pyproject.toml's Python range and dependency lists.
LOCK_INPUTS := $(PYTHON) -c 'import hashlib, json, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print(hashlib.sha256(json.dumps([p["requires-python"], p["dependencies"], p["optional-dependencies"]]).encode()).hexdigest())'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: $(LOCK) pyproject.toml | $(PY)
	$(PIP) --require-hashes -r $(LOCK)
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(DEV_LOCK) pyproject.toml | $(PY)
	$(PIP) --require-hashes -r $(DEV_LOCK)
	$(PIP) --no-deps -e .
	touch $@ $(VENV)/.runtime-installed

# A newer pyproject.toml re-locks only when its dependencies changed (the locks' first line is the
# digest of those they were made from); other edits, and a fresh clone's file times, only touch them.
$(LOCK) $(DEV_LOCK) &: pyproject.toml
	@digest=$$($(LOCK_INPUTS)); \
	if [ "$$(head -1 $(LOCK))" = "# inputs: $$digest" ] && [ "$$(head -1 $(DEV_LOCK))" = "# inputs: $$digest" ]; \
	then touch $(LOCK) $(DEV_LOCK); else $(MAKE) lock; fi

# Re-resolve from PyPI, keeping every pin that still fits pyproject.toml (delete a lock to upgrade all).
lock: | $(PY)
	$(PIP) 'uv==$(UV_VERSION)'
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK)
	digest=$$($(LOCK_INPUTS)); sed -i "1i # inputs: $$digest" $(LOCK) $(DEV_LOCK)

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

# The gates, before any test: one ruff finding, one mypy error or one broken import contract fails
# `make test` (and `make lint`, which runs them alone). mypy's strictness is in pyproject.toml.
# On every core (pytest-xdist; each worker has its own databases: tests/conftest.py), longest first.
test: lint $(CHROMIUM)
	$(VENV)/bin/pytest -n auto --maxprocesses 4 --dist worksteal

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy matching broker workers adapters
	$(VENV)/bin/lint-imports

# The fault tests of the async spine at full size (RELIABILITY.md G1, G3-G5): 2,000 events under 20
# worker SIGKILLs, 1,000 requests through the Redis and PostgreSQL faults. `make test` runs them smaller.
soak: $(VENV)/.dev-installed
	BROKER_FAULT_EVENTS=2000 BROKER_FAULT_KILLS=20 BROKER_FAULT_REQUESTS=1000 BROKER_FAULT_CRASHES=100 \
		$(VENV)/bin/pytest -p no:cacheprovider -rA -s tests/e2e/test_worker_kills.py tests/e2e/test_relay_faults.py

# The schemathesis fuzzing of `make test` (seeded world of two tenants, every role, hostile values), deeper:
# FUZZ_EXAMPLES cases per operation and role (100 in `make test`), on FUZZ_DATABASE: sqlite, or postgresql
# (BROKER_TEST_DATABASE_URL's, which must be given: `.ci/run` runs `make fuzz FUZZ_DATABASE=postgresql
# FUZZ_EXAMPLES=100`). Prints each test's figures and the totals (operations x roles x examples, failures, world).
FUZZ_EXAMPLES ?= 1000
FUZZ_DATABASE ?= sqlite
fuzz: $(VENV)/.dev-installed
	@report=$$(mktemp --suffix=.jsonl); \
	BROKER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BROKER_FUZZ_DATABASE=$(FUZZ_DATABASE) BROKER_FUZZ_REPORT=$$report \
		$(VENV)/bin/pytest -p no:cacheprovider -n auto --maxprocesses 4 --dist worksteal \
		tests/integration/api/test_schemathesis.py; status=$$?; \
	$(PY) -c 'import json, sys; [print(json.loads(line)["summary"]) for line in open(sys.argv[1])]' $$report; \
	rm -f $$report; exit $$status

bench: $(VENV)/.dev-installed
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache bench/results
