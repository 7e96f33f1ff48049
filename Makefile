# Developer entry points. `make demo` and `make test` work from a fresh clone: each creates the
# virtualenv and installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAM_VENV ?= .tools/sam
SAM := $(SAM_VENV)/bin/sam
AWSCLI_VENV ?= .tools/aws
AWSCLI := $(AWSCLI_VENV)/bin/aws
UV_VENV ?= .tools/uv
UV := $(UV_VENV)/bin/uv
UV_VERSION := 0.13.9

# One lock of exact versions, with hashes, for the dev venv, CI and every image and layer. It is
# resolved for every platform and Python from 3.11 (dev, CI) on, so it also holds 3.12 (the images).
LOCK := requirements.lock
# What each image and SharedLayer installs: <dir>/requirements.txt, written by `make requirements`
# from <dir>/requirements.in (the distributions that code imports) and the lock, for the images'
# platform (public.ecr.aws/lambda/python:3.12, Amazon Linux 2023, x86_64).
REQUIREMENTS_DIRS := shared $(patsubst %/requirements.in,%,$(wildcard services/*/requirements.in))
IMAGE_PLATFORM := --python-version 3.12 --python-platform x86_64-manylinux_2_28

.PHONY: install tools lock requirements demo test test-fast lint typecheck events reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Exactly the lock's versions (hash-checked), then the project itself without resolving anything
# more. The install marker is rebuilt whenever pyproject.toml or the lock changes.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

install: $(VENV)/.installed

# SAM CLI in its own virtualenv: its pinned dependencies must not steer the project's.
$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli

# The AWS CLI, for the end-to-end test that copies a file into a running stack as a user would.
$(AWSCLI):
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AWSCLI_VENV)/bin/python -m pip install --quiet awscli

tools: $(SAM) $(AWSCLI)

# uv resolves the lock and the per-image requirements; installing needs only pip.
$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# After a change to pyproject.toml's dependencies: resolve the lock again (versions already in it are
# kept where they still fit; `make lock LOCK_FLAGS=--upgrade` moves everything to the newest), then
# the requirements files from it. tests/contract/test_dependency_lock.py fails until both are done.
lock: $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" $(LOCK_FLAGS) -o $(LOCK)
	$(MAKE) requirements

requirements: $(UV)
	for dir in $(REQUIREMENTS_DIRS); do \
		$(UV) pip compile --quiet $$dir/requirements.in --constraint $(LOCK) $(IMAGE_PLATFORM) \
			--generate-hashes --custom-compile-command "make requirements" -o $$dir/requirements.txt \
			|| exit 1; \
	done

demo: install
	$(BIN)/reviews-pipeline run \
		--train samples/train/amazon_reviews_us_Gift_Card_v1_00.tsv samples/train/amazon_reviews_reference.csv \
		--infer samples/inference/All_Beauty_5.first1000.json \
		--out pipeline-output

# Two pytest workers (pytest-xdist), each test taken by whichever is free: one worker leaves a core
# idle while an end-to-end test waits on its queues and subprocesses (measured: 22 min 39 s on one
# worker, 19 min 14 s on two). Every test starts its own emulator on a free port and works in its own
# tmp_path, so they do not meet.
TEST_WORKERS ?= 2
test: install tools lint typecheck
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$(CURDIR)/$(AWSCLI_VENV)/bin:$$PATH" $(BIN)/python -m pytest \
		--numprocesses $(TEST_WORKERS) --dist worksteal

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy shared services reviews_pipeline reviews_model tests $(wildcard bench)

# Every fault scenario through the whole local runtime on the real files in ../shared/data; prints the
# report (files tried, faults injected and survived, bad inputs, rows lost) and keeps it as JSON.
reliability: install
	$(BIN)/python -m reviews_pipeline.reliability --json reliability-report.json

events: install
	$(BIN)/python -m shared.export_events

clean:
	rm -rf $(VENV) .tools .aws-sam pipeline-output reliability-report.json .pytest_cache .mypy_cache .ruff_cache
