# The two quick-start commands: `make run` (set up, ingest the samples, start the chat) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup run test lint browser clean-kb llamacpp

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: setup
	$(PY) -m ingest data/samples
	$(VENV)/bin/streamlit run ui/app.py --server.address 127.0.0.1

browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "chromium not installed: the real-browser test will be skipped"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup browser lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

clean-kb:
	rm -rf data/kb

# llama.cpp's llama-server (for --vlm llamacpp:...) built from the llama-cpp-python sdist into ~/.cache/image-kb;
# about 30 minutes on 2 cores, once.
llamacpp: setup
	JOBS=$${JOBS:-2} PYTHON=$(PY) scripts/build_llamacpp.sh
