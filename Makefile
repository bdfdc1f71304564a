# The two commands a newcomer runs: `make up` and `make test`. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: up down test lint bench

up:
	@bash deploy/install.sh
	@$(PY) -m deploy.local up

down:
	@$(PY) -m deploy.local down

test:
	@bash deploy/install.sh --test
	@.venv/bin/ruff check .
	@$(PY) -m pytest $(PYTEST_ARGS)

lint:
	@.venv/bin/ruff check .
