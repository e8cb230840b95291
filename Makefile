# Dockhand: `make run` serves the demo, `make test` runs the whole suite.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test deps dev-deps chromium migrate seed assets messages bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.deps $@

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

migrate: deps
	$(BIN)/flask --app wsgi migrate

seed: migrate
	$(BIN)/flask --app wsgi seed-demo --if-empty

## assets: content-hashed, precompressed copies of static/ and its manifest (app/web/assets.py)
assets: deps
	$(BIN)/flask --app wsgi digest compile >/dev/null
	$(BIN)/pybabel compile -d translations 2>/dev/null

## messages: gather the screens' English into translations/messages.pot and add what is new to each
## language's catalogue (translate the empty msgstr entries, then `make assets` compiles them)
messages: deps
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k lazy_pgettext:1c,2 -k tr -k N_ --no-location --sort-output --width=200 -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --width=200

## run: install, migrate, seed the demo on first run, serve on http://$(HOST):$(PORT) under gunicorn, with
## a webhook delivery worker beside it
run: seed assets
	@echo "Dockhand on http://$(HOST):$(PORT), with a webhook delivery worker  (Ctrl-C stops both)"
	@$(BIN)/flask --app wsgi webhooks deliver & WORKER=$$!; \
	trap 'kill $$WORKER 2>/dev/null' EXIT; \
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) wsgi:app

## chromium: Debian's Chromium for the browser tests (apt when root)
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else echo "Chromium is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; \
	fi

## test: the layering contract (import-linter), then the whole suite on SQLite and PostgreSQL (a throwaway
## server unless TEST_DATABASE_URL is set) and Chromium
test: dev-deps chromium assets
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

## bench: the scan / disposition benchmark on PostgreSQL (see bench/README.md)
bench: dev-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	-$(BIN)/flask --app wsgi digest clean >/dev/null
	rm -rf $(VENV) instance test-artifacts
