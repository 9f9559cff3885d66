# Quick start: `make demo` (sample world, three training stages, before/after evaluation)
# and `make test` (the test suite). Both create .venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: venv test demo bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# Paths, sizes and epochs are flags of demo.py (python demo.py --help); DEMO_ARGS passes more.
demo: $(STAMP)
	$(PY) demo.py --world_dir data/world --out_dir runs/demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf runs/demo data/world
