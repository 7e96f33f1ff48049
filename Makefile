# Developer entry points. `make demo` and `make test` work from a fresh clone: each creates the
# virtualenv and installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAM_VENV ?= .tools/sam
SAM := $(SAM_VENV)/bin/sam
AWSCLI_VENV ?= .tools/aws
AWSCLI := $(AWSCLI_VENV)/bin/aws

.PHONY: install tools demo test test-fast lint typecheck events reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The install marker is rebuilt whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
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

demo: install
	$(BIN)/reviews-pipeline run \
		--train samples/train/amazon_reviews_us_Gift_Card_v1_00.tsv samples/train/amazon_reviews_reference.csv \
		--infer samples/inference/All_Beauty_5.first1000.json \
		--out pipeline-output

test: install tools lint typecheck
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$(CURDIR)/$(AWSCLI_VENV)/bin:$$PATH" $(BIN)/python -m pytest

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
