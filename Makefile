# Quick start: `make demo` (sample world, three training stages, before/after evaluation)
# and `make test` (the test suite). Both create .venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: venv test demo bench gpu-check wheels clean

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

# The GPU check (benchmarks/gpu_check.py --help): `make gpu-check` on a CUDA machine writes
# docs/gpu_check.json and the GPU-check block of docs/performance.md; without CUDA it runs its
# --quick CPU plan. PY=python3 uses that interpreter as it is (no venv), with the wheels of
# `make wheels` installed from .whl/ without network. GPU_CHECK_ARGS passes more flags.
WHEELS := .whl
GPU_EXTRA := requirements-gpu-extra.txt
WHEEL_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
	manylinux1_x86_64

gpu-check: $(if $(filter $(VENV)/bin/python,$(PY)),$(STAMP))
	if ls $(WHEELS)/*.whl >/dev/null 2>&1; then $(PY) -m pip install -q --no-index --no-deps --no-compile \
		--no-cache-dir --upgrade --target $(WHEELS)/site $(WHEELS)/*.whl; fi
	PYTHONPATH=$(CURDIR)/$(WHEELS)/site$${PYTHONPATH:+:$$PYTHONPATH} $(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# The packages of $(GPU_EXTRA) as wheels for Python 3.12 on manylinux x86_64 (a GPU machine's).
wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(addprefix --platform ,$(WHEEL_PLATFORMS)) -d $(WHEELS) -r $(GPU_EXTRA)

clean:
	rm -rf runs/demo data/world
