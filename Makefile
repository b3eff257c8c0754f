# Everything installs into ./.venv from pyproject.toml; nothing is expected on the machine but python3.11.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install constraints demo test test-fast lint chromium benchmark loadtest clean

$(STAMP): pyproject.toml constraints.txt
	python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build (==2.13.0); a looser pin would pull a multi-GB CUDA build.
	# constraints.txt pins every other package to the versions the suite last passed with (new onnxruntime
	# releases move int8 probabilities); refresh it with `make constraints` after upgrading on purpose.
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

## Re-pin constraints.txt to what is installed now (after a deliberate upgrade that passes `make test`).
constraints: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^torch==' > constraints.txt

## The main job on embedded defaults: train on the demo data if no champion exists, then serve on :8000.
demo: install
	$(VENV)/bin/switchboard demo

## Lint, type-check and run the whole test suite (what CI runs).
test: install lint chromium
	$(PY) -m pytest $(PYTEST_ARGS)

## Debian's headless Chromium for the annotator-page test (Playwright never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "warning: chromium not installed; the browser test will be skipped"

## The suite without the tests that fine-tune the real all-MiniLM-L6-v2.
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## BANKING77 benchmark (needs ../shared/data; about 15 minutes on 2 cores).
benchmark: install
	$(PY) -m evaluation.benchmark_banking77

## Load test over loopback with wrk (Debian package, installed if missing): Switchboard vs FastAPI + torch.
## RUN_DIR holds checkpoint/ and bundle/, e.g. the benchmark's .switchboard/bench/banking77/run.
RUN_DIR ?= .switchboard/bench/banking77/run
loadtest: install
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m evaluation.loadtest --run-dir $(RUN_DIR)

clean:
	rm -rf $(VENV) .switchboard .pytest_cache .mypy_cache .ruff_cache
