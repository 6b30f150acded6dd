# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
OUT ?= runs/default
CONFIG ?=

.PHONY: run test install install-dev lint wordnet bench gpu-check compare-losses clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is installed first, from TORCH_SPEC; the file records the spec, so that a different
# `make run TORCH_SPEC=...` reinstalls torch (and only then).
$(VENV)/.torch-spec: $(BIN)/python FORCE
	@if [ "$$(cat $@ 2>/dev/null)" != '$(TORCH_SPEC)' ]; then \
		echo '$(BIN)/pip install "$(TORCH_SPEC)"'; \
		$(BIN)/pip install --quiet "$(TORCH_SPEC)" && echo '$(TORCH_SPEC)' > $@; \
	fi

$(VENV)/.installed: $(VENV)/.torch-spec pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Train the embedded default experiment and write its report to $(OUT)/report.html.
run: install
	$(BIN)/hypbias run $(CONFIG) --out $(OUT) --overwrite
	@echo "Report: $(OUT)/report.html"

## WordNet 3.0 for the hierarchy tests (Debian's wordnet-base), installed where missing.
wordnet:
	@if [ ! -f /usr/share/wordnet/data.noun ] && [ -z "$$WORDNET_DIR" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			(apt-get install -y -qq wordnet-base >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null && apt-get install -y -qq wordnet-base >/dev/null)) || \
			echo "warning: could not install wordnet-base; WordNet tests will be skipped"; \
		else \
			echo "note: WordNet 3.0 not found (apt-get install wordnet-base, or set WORDNET_DIR); WordNet tests will be skipped"; \
		fi; \
	fi

## Install the dev extras and run the whole suite (exit code 5, no tests collected, fails).
test: install-dev wordnet
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

## On a CUDA machine, every CUDA path in a few minutes (training loop with bf16, channels_last,
## torch.compile, EMA and AutoAugment; Tracker.evaluate; torchvision and timm adapters; NCCL; cuML
## UMAP when installed), written into benchmarks/RESULTS.md. Without CUDA it says so and exits 0.
## The adapters' packages are installed next to the torch of TORCH_SPEC (never replacing it).
gpu-check: install-dev
	@if $(BIN)/python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(BIN)/pip install --quiet -e ".[vision]" "$(TORCH_SPEC)" || \
			echo "note: torchvision/timm not installed; the adapter checks will be skipped"; \
	fi
	$(BIN)/python benchmarks/gpu_check.py --results benchmarks/RESULTS.md

## CE vs hierarchical cross-entropy vs soft labels on the embedded default, side by side.
compare-losses: install
	for l in ce hxe soft; do $(BIN)/hypbias run losses/$$l --out runs/losses/$$l --overwrite --no-report || exit 1; done
	$(BIN)/hypbias compare runs/losses/ce runs/losses/hxe runs/losses/soft --out runs/losses/compare

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev
	cd benchmarks && for b in bench_*.py; do OMP_NUM_THREADS=1 ../$(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info

FORCE:
