SHELL := /bin/bash
VENV := .venv
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-x -k orders'
PYTEST_ARGS ?=

# The interpreter the virtualenv is built from: scripts/choose-python.sh says which and why;
# `make PYTHON=python3.12 test` chooses another. A PYTHON in the environment is not taken: other
# tools (node-gyp, say) set it for their own ends.
ifneq ($(origin PYTHON),command line)
PYTHON := $(shell scripts/choose-python.sh)
endif
INTERPRETER := $(shell $(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>/dev/null)
# Rewritten only when the chosen interpreter changes, so that .venv is rebuilt then.
INTERPRETER_STAMP := .venv-interpreter

.PHONY: demo test test-sqlite test-postgres bench FORCE

$(INTERPRETER_STAMP): FORCE
	@[ "$$(cat $@ 2>/dev/null)" = "$(INTERPRETER)" ] || echo "$(INTERPRETER)" > $@

# Virtualenv with the project (editable) and its test dependencies; rebuilt when
# pyproject.toml changes, from scratch when the interpreter does. A failed install removes
# .venv so the next run starts over.
$(VENV): pyproject.toml $(INTERPRETER_STAMP)
	@echo "== installing into $(VENV) with $(INTERPRETER) =="
	@cmp -s $(INTERPRETER_STAMP) $(VENV)/interpreter || rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]' || { rm -rf $(VENV); exit 1; }
	@cp $(INTERPRETER_STAMP) $(VENV)/interpreter
	@touch $(VENV)

demo: $(VENV)
	$(VENV)/bin/orderdesk migrate
	$(VENV)/bin/orderdesk demo-data
	$(VENV)/bin/orderdesk serve --host 127.0.0.1 --port 8000

# The whole suite on SQLite, then on PostgreSQL; both always run, and the target fails
# if either does.
test: $(VENV)
	@status=0; \
	$(MAKE) --no-print-directory test-sqlite || status=1; \
	$(MAKE) --no-print-directory test-postgres || status=1; \
	exit $$status

test-sqlite: $(VENV)
	@echo "== tests on SQLite =="
	@var=$$(mktemp -d); trap 'rm -rf "$$var"' EXIT; \
	env -u DATABASE_URL ORDERDESK_VAR_DIR="$$var" $(VENV)/bin/pytest $(PYTEST_ARGS)

# scripts/test-postgres.sh starts a throwaway server, exports DATABASE_URL for pytest and
# stops the server afterwards, also when the tests fail.
test-postgres: $(VENV)
	@echo "== tests on PostgreSQL 15 =="
	@var=$$(mktemp -d); trap 'rm -rf "$$var"' EXIT; \
	ORDERDESK_VAR_DIR="$$var" scripts/test-postgres.sh run -- $(VENV)/bin/pytest $(PYTEST_ARGS)

# Benchmarks on SQLite and PostgreSQL (never part of `make test`): writes bench/RESULTS.md and
# bench/results.json. BENCH_ORDERS sets the orders in the list benchmark (default 1,000,000).
bench: $(VENV)
	$(VENV)/bin/python bench/run.py
