"""Every configuration docs/GPU_DEPLOYMENT.md tells operators to paste loads as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cluster.config import load_builtin_catalog
from cluster.config.loader import parse_config
from cluster.config.vllm_config import vllm_config_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "GPU_DEPLOYMENT.md"
# Fences tagged just `yaml` are modelyard cluster files; others (e.g. `yaml kuberay`, a
# Kubernetes manifest excerpt) are not.
SNIPPETS = re.findall(r"```yaml\n(.*?)```", DOC.read_text("utf-8"), re.S)


def test_the_doc_has_one_snippet_per_model_and_a_cluster_file() -> None:
    assert len(SNIPPETS) == 5


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_loads_and_generates_engine_args(snippet: str) -> None:
    data = yaml.safe_load(snippet)
    config = parse_config(data if isinstance(data, dict) else {"models": data}, source="doc")
    for model in config.served_models(load_builtin_catalog()):
        assert model.deployment.engine == "vllm"
        assert vllm_config_for(model).engine.served_model_name == model.id
