VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Every executed page of the book, in order (a later page may reuse an earlier page's cached models), from the
# page registry (lib/advfair/pages.py, which imports nothing).
PAGES := $(shell $(PYTHON) lib/advfair/pages.py)

# Absolute paths, because papermill runs the chapters from book/.
# Build machines have the offline datasets beside the repo; elsewhere torchvision downloads them.
ADVFAIR_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(HOME)/.cache/advfair/data)
ADVFAIR_CACHE_DIR ?= $(abspath .cache/advfair)
RESULTS := $(abspath book/results)
export ADVFAIR_DATA_DIR ADVFAIR_CACHE_DIR

# Progress bars depend on timing; keep them out of committed outputs so nbval can compare them.
# CPU results depend on the number of threads (the order of float reductions changes with it) and on the
# CPU's kernels: the pages always run with NB_THREADS threads, the committed results were produced with 2,
# and the README says what is guaranteed on which machine.
NB_THREADS ?= 2
# A bounded OpenMP spin keeps training near its quiet speed when another job takes a core (advfair sets the
# same default itself; benchmarks/bench_threads.py measures both). It changes how threads wait, never a result.
GOMP_SPINCOUNT ?= 1000
export GOMP_SPINCOUNT
RUN_NB := TQDM_DISABLE=1 OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS)
# Execution is off in _config.yml: the book renders the outputs stored in the notebooks.
RENDER := $(VENV)/bin/jupyter-book build .

.PHONY: env book book-student test paper-smoke bench lock clean

env: $(VENV)/.stamp

# The editable install builds with the pinned setuptools from the lock (no build isolation):
# nothing extra to download, the same result every time.
$(VENV)/.stamp: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off -r requirements.lock
	$(PY) -m pip install --progress-bar off --no-deps --no-build-isolation -e .
	touch $@

# Each page is executed at its defaults and also writes its results to book/results/<page>_cpu.json: the
# committed results that `make test` checks a re-execution against.
book: env
	mkdir -p $(RESULTS)
	for nb in $(PAGES); do $(RUN_NB) ADVFAIR_RESULTS_OUT=$(RESULTS) $(VENV)/bin/papermill --cwd book $$nb $$nb || exit 1; done
	$(RENDER)

# The student edition: the same pages with every exercise's solution left out (sphinx-exercise's hide_solutions),
# built from the stored outputs into _build/student/_build/html.
STUDENT := _build/student
book-student: env
	mkdir -p $(STUDENT)
	$(PY) scripts/student_config.py > $(STUDENT)/_config.yml
	$(RENDER) --config $(STUDENT)/_config.yml --path-output $(STUDENT)

# Every chapter's paper profile end to end at its smoke size (run --smoke): the paper's networks on a few batches.
paper-smoke: env
	$(PY) -m pytest tests/unit/test_paper_smoke.py

test: env
	$(PY) -m pytest -m "not book and not notebooks and not kernels and not paper_smoke" tests
	# The committed pages are what the code renders from the committed results: nbval re-executes every page
	# on book/results and compares each output with the committed one, exactly (no training, and statistics from
	# integer counts: any machine).
	$(RUN_NB) ADVFAIR_REPLAY_DIR=$(RESULTS) $(PY) -m pytest --nbval $(PAGES) --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg
	# The same replay with every OpenBLAS kernel and numpy SIMD level this CPU can run, forced: what the book
	# renders must not depend on which kernels a CPU gets.
	$(RUN_NB) $(PY) -m pytest -m kernels tests/test_kernels.py
	# Every page re-executed from an empty model cache reproduces the committed results: exactly on the
	# machine kind that made them, within seed-derived tolerances (stable verdicts unchanged) elsewhere.
	$(RUN_NB) $(PY) -m pytest -m notebooks tests/notebooks
	$(RENDER)
	$(MAKE) book-student
	$(PY) -m pytest -m book tests/book

bench: env
	$(PY) benchmarks/run_all.py

lock:
	scripts/lock.sh

clean:
	rm -rf _build .pytest_cache lib/*.egg-info
	find lib tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
