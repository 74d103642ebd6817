# The commands people expect. Everything runs from the project's own virtualenv,
# which `make bootstrap` (and every target that needs it) creates on first use.
VENV := .venv
PY := $(VENV)/bin/python
CODE := mediagen gateway generator_service storage_service comfyui_sim images_api_sim predictions_sim sim_scaffold tools
CACHE_BIN := $(or $(MEDIAGEN_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mediagen)/bin
export PATH := $(CACHE_BIN):$(PATH)

.PHONY: bootstrap demo stack test test-fast protos fmt lint typecheck check bench clean

bootstrap:
	@bash tools/bootstrap.sh >/dev/null

## demo: run the main job end to end on embedded defaults (local MinIO, the ComfyUI simulator)
demo: bootstrap
	$(PY) -m mediagen.demo

## stack: the same stack, kept running for grpcurl and the mediagen CLI
stack: bootstrap
	$(PY) -m mediagen.demo --keep-running

## test: lint, type checks and the whole test suite (what CI runs)
test: bootstrap check
	$(PY) -m pytest

test-fast: bootstrap
	$(PY) -m pytest -m "not e2e and not slow"

## protos: regenerate mediagen/v1 from protos/
protos:
	$(PY) tools/gen_protos.py

fmt:
	$(PY) -m ruff format $(CODE) tests bench
	$(PY) -m ruff check --fix $(CODE) tests bench

lint: bootstrap
	$(PY) -m ruff check $(CODE) tests bench
	$(PY) -m ruff format --check $(CODE) tests bench

typecheck: bootstrap
	$(PY) -m mypy $(CODE) tests bench

check: lint typecheck

bench: bootstrap
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out
