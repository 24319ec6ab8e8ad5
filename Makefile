# Two commands for a newcomer: `make up` and `make test`. Everything installs itself into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: up test lint bench demo migrate clean

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

test: $(VENV)/.dev-installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy matching broker/domain

bench: $(VENV)/.dev-installed
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache bench/results
