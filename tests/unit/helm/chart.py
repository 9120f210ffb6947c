"""Render the Helm chart offline with a real Helm engine, and keep its golden renders.

Helm 4 is embedded by PyPI `helm-python-sdk` (`helm_python`): `Chart.render` is
`helm template` (values merged with the chart's defaults, `values.schema.json` enforced),
`lint` is `helm lint`. No cluster, no helm binary.

    python -m tests.unit.helm.chart --update-golden   (make helm-golden)
    python -m tests.unit.helm.chart --update-crds DIR (refresh crds/ from KubeRay's CRD files)

The KubeRay CRD schemas the tests validate against are vendored in `crds/` (the `v1`
`openAPIV3Schema` of `ray.io_rayservices.yaml` and `ray.io_rayclusters.yaml` from the
project's shared folder), so the tests need nothing outside the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "modelyard"
HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
CRDS = HERE / "crds"
RELEASE = "modelyard"
NAMESPACE = "llm"
#: The Kubernetes version manifests are validated for (kubernetes-validate's newest schemas).
KUBE_VERSION = "1.37.0"

#: name -> values file (None: the chart's defaults only).
VALUES_FILES: dict[str, Path | None] = {
    "defaults": None,
    "cpu-sim": CHART / "ci" / "cpu-sim-values.yaml",
    "gpu-all": CHART / "ci" / "gpu-all-values.yaml",
}

#: CRD file in the shared folder -> vendored schema file.
CRD_FILES = {
    "ray.io_rayservices.yaml": "rayservice.v1.schema.json",
    "ray.io_rayclusters.yaml": "raycluster.v1.schema.json",
}


def load_values(name: str) -> dict[str, Any]:
    path = VALUES_FILES[name]
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def render(values: dict[str, Any]) -> dict[str, str]:
    """Template path -> rendered text (empty templates dropped), like `helm template`."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return {path: text for path, text in sorted(rendered.items()) if text.strip()}


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a render (NOTES.txt excluded)."""
    objects: list[dict[str, Any]] = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def golden_text(rendered: dict[str, str]) -> str:
    parts = [f"# Source: {path}\n{text.strip()}\n" for path, text in rendered.items()]
    return "---\n".join(parts)


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.yaml"


def crd_schema(kind: str) -> dict[str, Any]:
    """The vendored `openAPIV3Schema` of `kind` ("rayservice" or "raycluster")."""
    data = json.loads((CRDS / f"{kind}.v1.schema.json").read_text("utf-8"))
    schema: dict[str, Any] = data["openAPIV3Schema"]
    return schema


def vendored_crd(crd_file: Path) -> str:
    """The text `crds/` holds for one KubeRay CRD file."""
    # 1 MB of YAML: the C parser when PyYAML has it (a safe loader either way).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(crd_file.read_text("utf-8"), Loader=loader)
    (version,) = [v for v in document["spec"]["versions"] if v["name"] == "v1"]
    data = {
        "crd": document["metadata"]["name"],
        "version": "v1",
        "controller_gen": document["metadata"]
        .get("annotations", {})
        .get("controller-gen.kubebuilder.io/version"),
        "openAPIV3Schema": version["schema"]["openAPIV3Schema"],
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="golden renders and vendored CRD schemas")
    parser.add_argument("--update-golden", action="store_true")
    parser.add_argument("--update-crds", type=Path, metavar="DIR", default=None)
    args = parser.parse_args(argv)
    if args.update_golden:
        GOLDEN.mkdir(exist_ok=True)
        for name in VALUES_FILES:
            golden_path(name).write_text(golden_text(render(load_values(name))), "utf-8")
            print(f"wrote {golden_path(name).relative_to(REPO)}")
    if args.update_crds is not None:
        for source, target in CRD_FILES.items():
            (CRDS / target).write_text(vendored_crd(args.update_crds / source), "utf-8")
            print(f"wrote {(CRDS / target).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
