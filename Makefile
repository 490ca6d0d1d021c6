# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= portal.settings.local
# Kept apart from PORT, which honcho assigns to every process it starts.
export PORTAL_HOST := $(or $(HOST),127.0.0.1)
export PORTAL_PORT := $(or $(PORT),8000)

.PHONY: run sip test lint bench format setup clean

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
	@echo "Starting web (http://$(PORTAL_HOST):$(PORTAL_PORT)), workers (default+webhooks, calls) and beat. Ctrl-C stops them all."
	$(VENV)/bin/honcho --no-colour -f docker/Procfile -d . start

# The SIP edge: Kamailio in the foreground in front of `make run` (same database, which must be PostgreSQL:
# DATABASE_URL=postgres://...). Installs Debian's packages first if they are missing. README "SIP edge".
SIP_PACKAGES := kamailio kamailio-postgres-modules kamailio-utils-modules kamailio-extra-modules sip-tester
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export SIP_EDGE_PORTAL_URL ?= http://$(PORTAL_HOST):$(PORTAL_PORT)

sip: $(VENV)/.base-installed
	@missing=$$(for p in $(SIP_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "Installing: $$missing"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	$(PY) manage.py migrate --noinput
	$(PY) manage.py kamailio_config --output var/kamailio/kamailio.cfg
	@echo "Kamailio on udp/tcp $${SIP_EDGE_LISTEN_HOST:-127.0.0.1}:$${SIP_EDGE_PORT:-5060}, asking $$SIP_EDGE_PORTAL_URL. Ctrl-C stops it."
	TZ=UTC /usr/sbin/kamailio -DD -E -f var/kamailio/kamailio.cfg -Y var/kamailio

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
