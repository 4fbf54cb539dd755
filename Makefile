# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the pinned CPU torch first, then the project.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.alkit-installed
TORCH  ?= torch==2.13.0

.PHONY: install test test-fast demo lint format clean

install: $(STAMP)

# Re-installs only when the project's dependency files change.
$(STAMP): pyproject.toml environment.yml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

demo: $(STAMP)
	$(PY) -m alkit demo

clean:
	rm -rf $(VENV) runs .pytest_cache
