"""`deployments.serve_config:app_builder`, the import path serveConfigV2 names; the values
schema generator; the vendored KubeRay CRD schemas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from cluster.config import helm_schema
from cluster.errors import ConfigError
from deployments.serve_config import app_builder, config_from_args
from tests.unit.helm.chart import CHART, CRD_FILES, CRDS, REPO, vendored_crd


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "args.cluster"),
        ({"cluster": ["not", "a", "mapping"]}, "top level must be a mapping"),
        ({"cluster": {"models": [{"id": "no/such-model"}]}}, "models[0].id"),
        ({"cluster": {"models": [{"id": "qwen/qwen3-coder-flash", "replicas": 0}]}},
         "models[0].replicas"),
        ({"cluster": {"models": []}}, "models"),
    ],
)  # fmt: skip
def test_bad_args_fail_naming_the_field(args: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        app_builder(args)
    assert field in caught.value.message


def test_args_cluster_is_the_cluster_file() -> None:
    data = yaml.safe_load((REPO / "cluster" / "config" / "local.yaml").read_text("utf-8"))
    config = config_from_args({"cluster": data})
    assert [m.id for m in config.models] == [m["id"] for m in data["models"]]


def test_schema_check_detects_a_stale_file(tmp_path: Path) -> None:
    chart = tmp_path / "modelyard"
    shutil.copytree(CHART, chart)
    shutil.copytree(CHART.parent / "schema", tmp_path / "schema")
    assert helm_schema.main(["--chart", str(chart), "--check"]) == 0
    schema = json.loads((chart / "values.schema.json").read_text("utf-8"))
    schema["properties"].pop("modelDefaults")
    (chart / "values.schema.json").write_text(json.dumps(schema), "utf-8")
    assert helm_schema.main(["--chart", str(chart), "--check"]) == 1
    assert helm_schema.main(["--chart", str(chart)]) == 0
    assert helm_schema.main(["--chart", str(chart), "--check"]) == 0


def test_default_values_satisfy_the_schema_in_python_too() -> None:
    """The same schema under Python's jsonschema (Helm uses a Go implementation)."""
    schema = json.loads((CHART / "values.schema.json").read_text("utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(values)
    values["cluster"]["models"][0]["sim"] = {"speedup": 0}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(values)


def _shared_crds() -> Path | None:
    """KubeRay's CRD files: `../shared/crds` beside the clone (CI), if present."""
    for root in (REPO.parent, REPO.parent.parent):
        candidate = root / "shared" / "crds"
        if candidate.is_dir():
            return candidate
    return None


def test_vendored_crd_schemas_match_the_shared_crds() -> None:
    shared = _shared_crds()
    if shared is None:
        pytest.skip("no shared/crds beside the repository; the vendored copies are used")
    for source, target in CRD_FILES.items():
        assert (CRDS / target).read_text("utf-8") == vendored_crd(shared / source), (
            f"{target} differs from {shared / source}: "
            f"python -m tests.unit.helm.chart --update-crds {shared}"
        )
