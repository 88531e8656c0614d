# The two commands of the README:
#   make dev   - install and run the whole service (embedded PostgreSQL/Redis if none is set)
#   make test  - install and run the linters and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test test-bare test-faults test-matrix fuzz lint typecheck pytest install lock lock-upgrade bench bench-load clean

# Run again on a bare machine (scripts/bare-machine.sh): `t2m dev` from a clean
# directory, the README's walk-through, and the tests of Redis- and
# PostgreSQL-specific features, against the embedded servers.
BARE_MACHINE_TESTS := tests/first_run tests/api/test_auth.py tests/api/test_rate_limit.py \
	tests/api/test_cache.py tests/api/test_job_events.py tests/api/test_queue_status.py \
	tests/hardening/test_schema_fuzz.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything but torch comes from requirements.lock, every file checked
# against its pinned hash (the test and dev extras included: the embedded
# servers of `t2m dev` and the bare-machine tests); T2M itself goes on top
# without resolving anything.  `pip check` fails the install when setup.cfg
# names something the lock lacks: run `make lock`.
$(INSTALLED): setup.cfg pyproject.toml requirements.lock system-packages.txt package.json | $(BIN)/python
	./scripts/install-system-packages.sh system-packages.txt
	./scripts/install-torch-cpu.sh $(BIN)/pip
	./scripts/install-console-deps.sh
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check || { echo "requirements.lock does not match setup.cfg: run make lock" >&2; exit 1; }
	touch $@

install: $(INSTALLED)

# Regenerate requirements.lock and requirements-prod.lock after a change to
# setup.cfg's dependencies (scripts/lock.sh; `make lock-upgrade` moves every
# package to its newest admitted version).
lock: | $(BIN)/python
	VENV=$(VENV) ./scripts/lock.sh

lock-upgrade: | $(BIN)/python
	VENV=$(VENV) ./scripts/lock.sh --upgrade

dev: $(INSTALLED)
	$(BIN)/t2m dev

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

# Coverage of the test process (workers and servers the tests start as
# subprocesses are not measured); reported, not enforced.
pytest: $(INSTALLED)
	$(BIN)/coverage run -m pytest -m "not bare_machine"
	$(BIN)/coverage report

test-bare: $(INSTALLED)
	./scripts/bare-machine.sh $(BIN)/pytest -p no:cacheprovider $(BARE_MACHINE_TESTS)

test: lint typecheck pytest test-bare

# Only the fault tests (killed workers, restarted Redis/PostgreSQL, full storage...);
# they are part of `make test` too.
test-faults: $(INSTALLED)
	$(BIN)/pytest -m faults tests/faults

# The authorisation matrix, the signed-link cases and the short schema fuzzing
# run; they are part of `make test` too.
test-matrix: $(INSTALLED)
	$(BIN)/pytest tests/hardening

# The long schema fuzzing run: every phase, 100 examples per operation, as a
# user and as an admin (bench/fuzz_api.py --help for the budget).
fuzz: $(INSTALLED)
	$(BIN)/python bench/fuzz_api.py

# moviepy (the bench extra, only for a comparison) caps Pillow below the
# floor T2M needs for its security fixes, so it goes in without its pins.
bench: $(INSTALLED)
	$(BIN)/pip install -q --no-deps 'moviepy>=2.1,<3' decorator imageio proglog tqdm
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Load: wrk against the API next to a bare aiohttp handler, job throughput with
# two render workers, and ten minutes of mixed load watching each process's memory.
bench-load: $(INSTALLED)
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage
