# Two commands: `make run` (set up and serve the studio) and `make test` (set up and run the tests).
# Both go through studio.py, the one install path (it also runs without make: `python studio.py run`, on Windows
# `py studio.py run`): it creates .venv, picks torch's CUDA or CPU build, installs the pinned requirements and the
# bundled model once (stamp .venv/.installed), then runs the command.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast lint bench setup clean

setup:
	@$(PYTHON) studio.py setup

run:
	$(PYTHON) studio.py run $(ARGS)

test:
	$(PYTHON) studio.py test $(PYTEST_ARGS)

test-fast:
	$(PYTHON) studio.py test -m "not slow" $(PYTEST_ARGS)

lint:
	$(PYTHON) studio.py lint

bench: setup
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
