# The two commands of the README: `make run` and `make test`. Only Python 3.11+ is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODELS ?= models
SAMPLE := data/sample
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: run test test-fast test-slow train-sample sample bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) -e ".[test]"
	@touch $@

## run: install, train the default model on the sample corpus if there is none, serve on HOST:PORT
run: $(VENV)/.installed
	@ls $(MODELS)/default/*/metadata.json >/dev/null 2>&1 || \
		$(BIN)/tagger train $(SAMPLE) --name default --models-dir $(MODELS)
	$(BIN)/tagger serve --host $(HOST) --port $(PORT) --models-dir $(MODELS)

## test: install with test extras and run every test, the slow ones too (about 6 minutes on 2 cores)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m ""

## test-fast: the quick tests only (what `pytest` alone runs)
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## test-slow: the slow tests only (SIGKILL crash safety, schemathesis)
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

## train-sample: (re)train the default model on the sample corpus
train-sample: $(VENV)/.installed
	$(BIN)/tagger train $(SAMPLE) --name default --models-dir $(MODELS)

## sample: regenerate the demo corpus data/sample from data/sample_banks (deterministic)
sample: $(VENV)/.installed
	$(BIN)/python data/make_sample.py

## bench: train and score on every corpus in ../shared/data (minutes to hours)
bench: $(VENV)/.installed
	$(BIN)/python -m bench.corpora

clean:
	rm -rf $(VENV) .pytest_cache
