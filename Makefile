# Two commands on a fresh machine: `make demo` and `make test` (both set everything up first).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
# extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
DOCTEST_MODULES := neuralset/hashing.py neuralset/entities.py neuralset/store/store.py neuralset/events/schema.py neuralset/events/transforms.py neuralset/window_labels.py neuralset/events/splits.py neuralset/events/stimulus_splits.py neuralset/events/split_chunks.py neuralset/events/text_alignment.py neuralset/events/transcripts.py neuralset/events/repetitions.py neuralset/events/table_utils.py neuralset/loaders/sampling.py neuralset/memo.py neuralset/extractors/base.py neuralset/extractors/recording_spans.py neuralset/fieldwise.py neuralset/extractors/stimulus/audio.py neuralset/extractors/stimulus/audio_chunks.py

.PHONY: venv demo test lint typecheck docs unit bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e ".[dev]"
	# reference for the window-label tests; --no-deps: see the note in pyproject.toml (dev)
	$(PY) -m pip install -q --no-deps "braindecode==1.8.1"
	touch $@

demo: venv
	$(BIN)/neuralset demo

lint: venv
	$(BIN)/ruff check neuralset tests benchmarks examples scripts
	$(BIN)/ruff format --check neuralset tests benchmarks examples scripts

typecheck: venv
	$(BIN)/mypy

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

unit: venv
	$(PY) -m pytest --doctest-modules $(DOCTEST_MODULES) tests

test: lint typecheck docs unit

bench: venv
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf site .pytest_cache .mypy_cache .ruff_cache neuralset-demo
