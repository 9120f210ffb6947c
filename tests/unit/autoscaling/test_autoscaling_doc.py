"""The configuration docs/AUTOSCALING.md shows validates, and its table lists every field
of `models[i].autoscaling` with its default."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cluster.config.autoscaling import AutoscalingSettings
from cluster.config.settings import ModelDeployment

DOC = Path(__file__).resolve().parents[3] / "docs" / "AUTOSCALING.md"


def test_the_yaml_example_validates() -> None:
    text = DOC.read_text("utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    models = yaml.safe_load(block)["models"]
    for model in models:
        assert ModelDeployment.model_validate(model).autoscaling is not None


def test_the_table_lists_every_field_with_its_default() -> None:
    text = DOC.read_text("utf-8")
    for name, field in AutoscalingSettings.model_fields.items():
        row = re.search(rf"^\| `{name}` \| ([^|]+) \|", text, flags=re.M)
        assert row is not None, name
        default = "null" if field.default is None else f"{field.default:g}"
        assert row.group(1).strip() in (default, f"{field.default}"), (name, row.group(1))
