# The README's two commands: `make demo` and `make test`. Both build .venv from nothing with the CPU torch first.
# GPU users: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124" demo
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Tests and benchmarks pin one thread: two spinning OpenMP threads on these 2 shared cores collapse 10-35x.
THREADS ?= 1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test test-slow images clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m lightning_pde.demo

test: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest -q -m slow

# Redraw the README's Burgers and PID pictures in docs/images (the only command that writes there; ~15 min).
images: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m lightning_pde.demo --save-picture docs/images/burgers_pinn.png
	OMP_NUM_THREADS=$(THREADS) $(BIN)/python benchmarks/pid.py --images docs/images

clean:
	rm -rf $(VENV) lightning_logs
