# CSP's two commands:
#   make run   set up (venv, Python and npm packages, database, demo data) and serve on 127.0.0.1:$PORT
#   make test  the same setup, then the whole test suite on SQLite and again on PostgreSQL + Redis
# Every setup step is keyed on a stamp file, so a second run skips what has not changed.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || echo python3)
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
RUN_DIR := .run
VENDOR := static/vendor

# Demo data for `make run`: loaded once per database and again when the code that makes it changes.
DEMO_COMMANDS ?= seed_demo train_churn_model
DB_KEY := $(shell printf '%s' "$${DATABASE_URL:-sqlite}" | cksum | cut -d' ' -f1)
DEMO_STAMP := $(RUN_DIR)/demo-$(DB_KEY).stamp
DEMO_SOURCES := $(wildcard */migrations/0*.py */management/commands/*.py */demo/*.py)

.PHONY: help setup run test migrate demo-data stop-services clean

help:
	@echo "make run    set up and serve CSP with demo data on http://127.0.0.1:$(PORT)/"
	@echo "make test   set up and run the test suite on SQLite, then on PostgreSQL + Redis"
	@echo "make stop-services   stop the throwaway PostgreSQL and Redis that make test started"

setup: $(VENV)/.installed $(VENDOR)/.copied

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalled whenever pyproject.toml changes (the stamp is older than it).
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

# `npm ci` when the lock file exists (reproducible), `npm install` to create it otherwise.
node_modules/.installed: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

# Third-party front-end code lives only in the git-ignored static/vendor/, copied from
# node_modules by package.json's `vendor` script (the Dockerfile runs the same script).
$(VENDOR)/.copied: node_modules/.installed package.json
	npm run --silent vendor
	touch $@

migrate: setup
	$(PY) manage.py migrate --noinput

# Loading, training and scoring run again only when the database is new (or its stamp is gone)
# or the migrations or management commands changed. Migrations themselves run every time.
$(DEMO_STAMP): $(DEMO_SOURCES)
	mkdir -p $(RUN_DIR)
	for command in $(DEMO_COMMANDS); do $(PY) manage.py $$command; done
	touch $@

demo-data: setup
	if [ -z "$${DATABASE_URL:-}" ] && [ ! -s db.sqlite3 ]; then rm -f $(DEMO_STAMP); fi
	$(PY) manage.py migrate --noinput
	$(MAKE) --no-print-directory $(DEMO_STAMP)

# Accounts' revenue facts and today's health and churn risk are refreshed at every start (a few
# seconds on the demo data): without Celery beat on the embedded default, this keeps them current.
run: demo-data
	$(PY) manage.py refresh_revenue
	$(PY) manage.py compute_health
	@echo
	@echo "CSP is starting at http://127.0.0.1:$(PORT)/  (log in at http://127.0.0.1:$(PORT)/login/)"
	@echo "Demo logins, password csp-demo:  csm (a CSM's own book)  manager (the whole book)  admin (also /admin/)"
	@echo "API docs: http://127.0.0.1:$(PORT)/api/docs/   Stop with Ctrl-C."
	@echo
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: setup
	bash .ci/test $(PYTEST_ARGS)

stop-services:
	bash .ci/services stop

clean:
	rm -rf node_modules $(VENDOR) staticfiles $(RUN_DIR)
