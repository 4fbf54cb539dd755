# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the pinned CPU torch first, then the project.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.alkit-installed
TORCH  ?= torch==2.13.0
# pytest-xdist workers: tests that share a module or a session fixture run on one worker
WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder

.PHONY: install test test-fast demo lint format clean browser-deps gpu-check

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

# Debian's chromium for tests/widgets/test_browser.py, installed by apt when missing and apt can
# (as root); never fails itself: without chromium the browser tests are skipped, saying why,
# except under CI=true, where they fail.
browser-deps:
	@test -x /usr/bin/chromium || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium not installed (apt-get install chromium): browser tests will be skipped")

test: lint browser-deps
	$(PYTEST) --durations=25

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

demo: $(STAMP)
	$(PY) -m alkit demo

# On a CUDA machine (a CUDA build of torch in .venv): gpu tests, full-profile training,
# scoring and DDP scoring benches, within 8 minutes (bench/gpu_check.sh; README).
gpu-check: $(STAMP)
	PY=$(PY) bench/gpu_check.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
