# Two commands a user needs: `make demo` and `make test`. Both create (or reuse) a
# virtual environment in .venv and install what they need; nothing is done by hand.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch; override on a GPU machine, e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sftmix-installed
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/sftmix/numba
export MPLBACKEND ?= Agg
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1
# Tiny models gain little from threads, and tests run kernels and workers side by side.
test: export OMP_NUM_THREADS ?= 1

.PHONY: demo demo-quick test install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,notebooks]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sftmix demo

demo-quick: $(STAMP)
	$(VENV)/bin/sftmix demo --quick

test: $(STAMP)
	$(VENV)/bin/ruff check sftmix tests benchmarks
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
