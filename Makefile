# The two commands a newcomer runs: `make up` and `make test`. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: up down status test lint bench

up:
	@bash deploy/install.sh
	@$(PY) -m deploy.local up

down:
	@$(PY) -m deploy.local down

# the processes of the local run and the services' health; exits 1 when one is stopped or not healthy
status:
	@$(PY) -m deploy.local status

test:
	@bash deploy/install.sh --test
	@.venv/bin/ruff check .
	@$(PY) -m pytest $(PYTEST_ARGS)

lint:
	@.venv/bin/ruff check .

# The benchmarks (issue 3, "Speed"): check-in rows and the credits rows (attendance analysis, compliance page;
# bench/credits.py) on a stack of its own on PostgreSQL, wrk through nginx; the certificate export row (1,000
# certificates as one job against one render per certificate, in child processes; bench/certs.py) needs no stack.
# Not part of `make test`. BENCH_ARGS="--only analysis,compliance,certs" runs some rows. DATABASE_URL names the
# PostgreSQL server (default postgresql://root@127.0.0.1:5432/cmebench); BENCH_ARGS passes options
# (python -m bench.run --help).
bench:
	@bash deploy/install.sh --bench
	@$(PY) -m bench.run $(BENCH_ARGS)
