# The two quick-start commands: `make run` (set up, ingest the samples, start the chat) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH := torch==2.14.1 torchvision==0.29.1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup dev run test test-min lint browser clean-kb llamacpp

# What running needs (the library, the chat, `kb serve`): `make run`.
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[api]'
	touch $@

# The test and lint tools on top: `make test`.
dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: setup
	$(PY) -m ingest data/samples
	$(VENV)/bin/streamlit run ui/app.py --server.address 127.0.0.1

browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "chromium not installed: the real-browser test will be skipped"

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: dev browser lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

# The lowest versions pyproject.toml allows (every floor pinned by .ci/min_versions.py) in their own venv: the lint,
# the document, VLM, answer, API and chat tests there prove the floors (CI runs it after `make test`). The document
# tests go first: their peak-memory check reads the largest child process of the whole pytest run.
MIN_VENV ?= .venv-min
MIN_TESTS := tests/test_documents.py tests/test_embedders.py tests/test_transformers_vlm.py tests/test_answer.py tests/test_api.py tests/test_app.py

$(MIN_VENV)/.installed: pyproject.toml .ci/min_versions.py
	rm -rf $(MIN_VENV)
	python3 -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --upgrade pip
	$(MIN_VENV)/bin/python -m pip install -q $(TORCH)
	python3 .ci/min_versions.py > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/python -m pip install -q -c $(MIN_VENV)/constraints.txt -e '.[dev]'
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/ruff check .
	$(MIN_VENV)/bin/ruff format --check .
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

clean-kb:
	rm -rf data/kb

# llama.cpp's llama-server (for --vlm llamacpp:...) built from the llama-cpp-python sdist into ~/.cache/image-kb;
# about 30 minutes on 2 cores, once.
llamacpp: setup
	JOBS=$${JOBS:-2} PYTHON=$(PY) scripts/build_llamacpp.sh
