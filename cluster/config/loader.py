"""Load and validate a cluster file; every failure names the field that is wrong."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cluster.config.catalog import Catalog, load_builtin_catalog
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.config.vllm_config import check_deployment
from cluster.errors import ConfigError
from cluster.field_paths import field_path


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function")))
        where = field_path(loc) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return f"{source}: invalid configuration\n" + "\n".join(lines)


def parse_config(
    data: Any, *, source: str = "<config>", builtin: Catalog | None = None
) -> ClusterConfig:
    """Validate a parsed YAML document; also checks that every served id is in the catalog."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        config = ClusterConfig.model_validate(data)
        catalog = (builtin or load_builtin_catalog()).merged(config.catalog)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None
    for i, deployment in enumerate(config.models):
        spec = catalog.find(deployment.id)
        if spec is None:
            known = ", ".join(sorted(n for s in catalog.models for n in s.names))
            raise ConfigError(
                f"{source}: models[{i}].id: unknown model {deployment.id!r} (known: {known})",
                param=f"models[{i}].id",
            )
        try:
            check_deployment(ServedModel(spec=spec, deployment=deployment))
        except ValueError as err:
            raise ConfigError(f"{source}: models[{i}].{err}", param=f"models[{i}]") from None
    return config


def load_config(path: Path | str) -> ClusterConfig:
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_config(data, source=str(path))


def default_config_path() -> Path:
    """The local configuration `make up` serves."""
    return Path(str(resources.files("cluster.config").joinpath("local.yaml")))
