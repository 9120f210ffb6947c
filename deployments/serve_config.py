"""The Serve-config entrypoint: `import_path: deployments.serve_config:app_builder`.

A Ray Serve config file (KubeRay's `RayService.spec.serveConfigV2`, or `serve deploy`)
names an application by import path and may pass it `args`. Serve calls an application
builder with those args (Ray 2.60, `call_user_app_builder_with_args_if_necessary`); this
one expects the cluster file itself under `args.cluster`, validates it with the project's
own loader (`cluster.config.loader.parse_config`, the same checks as `modelyard up` and
`modelyard config validate`, errors naming the field as `args.cluster: models[0].id: ...`)
and returns `build_app(config)`, the application `modelyard up` deploys.

The Helm chart (`helm/modelyard`) renders its `cluster:` values into exactly this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cluster.config.loader import parse_config
from cluster.config.settings import ClusterConfig
from cluster.errors import ConfigError
from deployments.app import build_app

if TYPE_CHECKING:
    from ray.serve import Application

#: The key of the Serve application's `args` that holds the cluster file.
CLUSTER_ARG = "cluster"


def config_from_args(args: Mapping[str, Any]) -> ClusterConfig:
    """The validated cluster file in a Serve application's `args` (raises `ConfigError`)."""
    if CLUSTER_ARG not in args:
        raise ConfigError(
            f"args.{CLUSTER_ARG}: missing; the Serve application's args must carry the "
            "cluster file under this key",
            param=f"args.{CLUSTER_ARG}",
        )
    return parse_config(args[CLUSTER_ARG], source=f"args.{CLUSTER_ARG}")


def app_builder(args: dict[str, Any]) -> Application:
    """Serve's application builder: the whole modelyard application of `args.cluster`."""
    return build_app(config_from_args(args))
