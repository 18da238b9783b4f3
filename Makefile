# m1vision: every target installs what it needs first, idempotently.
#   make demo   - the main job on the bundled data (writes outputs/)
#   make test   - pytest + nbval over notebooks/ (+ the browser test)
# Environment: a conda env in .conda-env/ from environment.yml where conda or mamba is on
# PATH, else .venv/ with pip (uv where it installs) from the lock of this platform.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
CONDA := $(shell command -v mamba 2>/dev/null || command -v conda 2>/dev/null)
# Set-up checks the platform first (m1vision/_platform.py, before pip runs): it stops with
# the fix on Rosetta, Intel Macs and unsupported Pythons.
ifneq ($(CONDA),)
  ENV := .conda-env
else
  ENV := .venv
endif
PY := $(ENV)/bin/python
STAMP := $(ENV)/.m1vision-installed
LOCK_PLATFORMS := linux-x86_64 macos-arm64 linux-aarch64
NB_TIMEOUT ?= 180

.PHONY: help install demo test test-fast lab notebooks bench lock check-mac-wheels \
        train-demo-model train-demo-segmenter browser-deps screenshot lint clean test-backends

help:
	@echo "make demo | test | lab | notebooks | bench | lock | check-mac-wheels |"
	@echo "     train-demo-model | train-demo-segmenter | screenshot | test-fast | lint | clean"

install: $(STAMP)

$(STAMP): pyproject.toml environment.yml $(wildcard locks/*.txt) m1vision/_platform.py
ifneq ($(CONDA),)
	@lock=$$($(PYTHON_BOOT) m1vision/_platform.py); \
	if [ "$$lock" = "macos-arm64" ]; then \
	  if [ -d $(ENV) ]; then $(CONDA) env update -p $(ENV) -f environment.yml --prune; \
	  else $(CONDA) env create -p $(ENV) -f environment.yml; fi; \
	else \
	  [ -x $(PY) ] || $(CONDA) create -y -p $(ENV) -c conda-forge python=3.11 pip; \
	  $(PY) -m pip install -r locks/$$lock.txt && $(PY) -m pip install --no-deps -e .; \
	fi
	$(PY) m1vision/_platform.py >/dev/null
else
	@lock=$$($(PYTHON_BOOT) m1vision/_platform.py); \
	[ -x $(PY) ] || $(PYTHON_BOOT) -m venv $(ENV); \
	if $(PY) -m pip install -q uv >/dev/null 2>&1 && [ -x $(ENV)/bin/uv ]; then \
	  $(ENV)/bin/uv pip sync -q --python $(PY) locks/$$lock.txt; \
	  $(ENV)/bin/uv pip install -q --python $(PY) --no-deps -e .; \
	else \
	  $(PY) -m pip install -q -r locks/$$lock.txt && $(PY) -m pip install -q --no-deps -e .; \
	fi
endif
	@touch $@
	@echo "m1vision environment ready in $(ENV)/"

demo: $(STAMP)
	$(PY) -m m1vision demo --out outputs

# The browser test needs Debian's chromium (no browser download). Install it where missing.
browser-deps:
	@if [ "$$(uname -s)" = Linux ] && [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (the browser test will fail)"; fi; \
	fi
	@if [ "$$(uname -s)" = Darwin ] && [ -z "$${M1VISION_CHROMIUM:-}" ] \
	  && [ ! -d /Applications/Chromium.app ] && [ ! -d "/Applications/Google Chrome.app" ]; then \
	  echo "no Chromium or Chrome for the browser test: brew install --cask chromium"; fi

test: $(STAMP) browser-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check $(FORMATTED)
	$(PY) -m pytest tests notebooks --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  --nbval-cell-timeout=$(NB_TIMEOUT) -p no:cacheprovider --durations=25
	$(MAKE) --no-print-directory test-backends

# The backend-neutral tests again on a second Keras backend, on the CPU: JAX (in the
# test extra, ~100 MB), and torch too where m1vision[torch] is installed. Tests marked
# tf_only (TensorFlow's own training, say) are deselected there, not skipped.
# The torch device blend's tests run under torch alone (other runs leave them out).
BACKEND_TESTS := tests/test_inference_backends.py tests/test_numerics.py tests/test_demo_segmenter.py \
  tests/test_segmenter.py tests/test_inference_device_prep.py
TORCH_TESTS := tests/test_segmenter_device.py
test-backends: $(STAMP)
	@ran=0; \
	for b in jax torch; do \
	  if $(PY) -c "import $$b" 2>/dev/null; then \
	    tests="$(BACKEND_TESTS)"; [ $$b = torch ] && tests="$$tests $(TORCH_TESTS)"; \
	    echo "== KERAS_BACKEND=$$b: $$tests"; \
	    KERAS_BACKEND=$$b CUDA_VISIBLE_DEVICES= $(PY) -m pytest $$tests \
	      -m "not tf_only" -p no:cacheprovider -q; \
	    ran=1; \
	  fi; \
	done; \
	if [ $$ran = 0 ]; then echo "no second Keras backend installed (jax or torch)"; exit 1; fi

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow and not browser and not network" -q

# the Python sources ruff format keeps (notebooks and Markdown are written by hand)
FORMATTED := m1vision tests benchmarks tools

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check $(FORMATTED)

# JupyterLab on loopback only, with a fresh random token (the URL with it is printed).
lab: $(STAMP)
	$(PY) -m jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) \
	  --IdentityProvider.token=$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')

notebooks: $(STAMP)
	$(PY) tools/run_notebooks.py --timeout $(NB_TIMEOUT) notebooks/*.ipynb

bench: $(STAMP) browser-deps
	M1VISION_RECORD_LATENCY=1 $(PY) -m pytest tests/test_browser.py -k triplanar_keys \
	  -p no:cacheprovider -q
	$(PY) benchmarks/run.py --out benchmarks/results --page docs/benchmarks.md

lock: $(STAMP)
	@for p in $(LOCK_PLATFORMS); do \
	  case $$p in \
	    linux-x86_64) t=x86_64-unknown-linux-gnu;; \
	    macos-arm64) t=aarch64-apple-darwin;; \
	    linux-aarch64) t=aarch64-unknown-linux-gnu;; \
	  esac; \
	  $(ENV)/bin/uv pip compile -q pyproject.toml --extra test --python-version 3.11 \
	    --python-platform $$t -o locks/$$p.txt; \
	  echo "locks/$$p.txt"; \
	done
	@# The torch extra (Keras' torch backend, MPS) resolved for macOS arm64 apart and
	@# constrained to the macOS lock, so the default install stays as it is and the torch lock
	@# only adds: pip install -r locks/macos-arm64-torch.txt
	$(ENV)/bin/uv pip compile -q pyproject.toml --extra test --extra torch --python-version 3.11 \
	  --python-platform aarch64-apple-darwin -c locks/macos-arm64.txt \
	  -o locks/macos-arm64-torch.txt
	@echo "locks/macos-arm64-torch.txt"

# Re-take docs/explorer.png (README's screenshot) with the browser test.
screenshot: $(STAMP) browser-deps
	M1VISION_UPDATE_SCREENSHOT=1 $(PY) -m pytest tests/test_browser.py -k jupyterlab4 \
	  -p no:cacheprovider -q

check-mac-wheels: $(STAMP)
	$(PY) tools/check_mac_wheels.py locks/macos-arm64.txt

train-demo-model: $(STAMP)
	$(PY) tools/train_demo_model.py --out data/models

# The demo organ segmenter (phantom_seg.keras and its cards): ~5 min on 2 idle cores, 15 when shared.
train-demo-segmenter: $(STAMP)
	$(PY) tools/train_demo_segmenter.py --out data/models

clean:
	rm -rf .venv .conda-env outputs .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
