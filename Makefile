# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= portal.settings.local
# Kept apart from PORT, which honcho assigns to every process it starts.
export PORTAL_HOST := $(or $(HOST),127.0.0.1)
export PORTAL_PORT := $(or $(PORT),8000)

.PHONY: run test lint bench format setup clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps re-run pip only when a requirements file changed.
$(VENV)/.base-installed: requirements/base.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.local-installed: requirements/local.txt requirements/base.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/local.txt
	touch $@ $(VENV)/.base-installed

setup: $(VENV)/.base-installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo

run: setup
	@echo "Starting web (http://$(PORTAL_HOST):$(PORTAL_PORT)), worker and beat. Ctrl-C stops them all."
	$(VENV)/bin/honcho --no-colour -f docker/Procfile -d . start

test: $(VENV)/.local-installed
	DJANGO_SETTINGS_MODULE=portal.settings.test $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.local-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=portal.settings.test $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=portal.settings.test $(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.local-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.local-installed
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf var/test var/cache var/broker
