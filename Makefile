VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CHAPTERS := book/classwise.ipynb book/robal.ipynb

# Absolute paths, because papermill runs the chapters from book/.
# Build machines have the offline datasets beside the repo; elsewhere torchvision downloads them.
ADVFAIR_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(HOME)/.cache/advfair/data)
ADVFAIR_CACHE_DIR ?= $(abspath .cache/advfair)
NBVAL_CACHE := $(abspath .cache/nbval)
export ADVFAIR_DATA_DIR ADVFAIR_CACHE_DIR

# Progress bars depend on timing; keep them out of committed outputs so nbval can compare them.
# CPU results depend on the number of threads (the order of float reductions changes with it), so the
# chapters always run with NB_THREADS threads: the committed outputs were produced with 2, and any machine
# reproduces them bit for bit with the same setting.
NB_THREADS ?= 2
RUN_NB := TQDM_DISABLE=1 OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS)
# Execution is off in _config.yml: the book renders the outputs stored in the notebooks.
RENDER := $(VENV)/bin/jupyter-book build .

.PHONY: env book test bench lock clean

env: $(VENV)/.stamp

# The editable install builds with the pinned setuptools from the lock (no build isolation):
# nothing extra to download, the same result every time.
$(VENV)/.stamp: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off -r requirements.lock
	$(PY) -m pip install --progress-bar off --no-deps --no-build-isolation -e .
	touch $@

book: env
	for nb in $(CHAPTERS); do $(RUN_NB) $(VENV)/bin/papermill --cwd book $$nb $$nb || exit 1; done
	$(RENDER)

test: env
	$(PY) -m pytest -m "not book" tests
	# Every chapter re-executed at its defaults from an empty model cache; each output must match the committed one.
	rm -rf $(NBVAL_CACHE)
	$(RUN_NB) ADVFAIR_CACHE_DIR=$(NBVAL_CACHE) $(PY) -m pytest --nbval $(CHAPTERS) --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg
	$(RENDER)
	$(PY) -m pytest -m book tests/book

bench: env
	$(PY) benchmarks/run_all.py

lock:
	scripts/lock.sh

clean:
	rm -rf _build .pytest_cache lib/*.egg-info
	find lib tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
