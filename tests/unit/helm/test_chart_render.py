"""The chart rendered by a real Helm engine for three values files, then checked offline:

- every manifest passes kubernetes-validate --strict (Kubernetes 1.37) — except the kinds of
  CRDs outside Kubernetes' core set (Prometheus operator, Gateway API), which are checked
  for what they point at instead;
- the RayService validates against KubeRay's CRD schema (and its rayClusterConfig against
  the RayCluster CRD's spec), unknown fields refused as with `kubectl --validate=strict`;
- serveConfigV2 passes Ray Serve's own config schema, and its args.cluster loads with the
  project's own loader and builds the Serve application: the catalog's models, parallelism
  and GPUs, each of which fits a worker group (MiniMax-M1 on two 8-GPU nodes);
- the renders equal the checked-in golden files (`make helm-golden` refreshes them).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cluster.config.catalog import load_builtin_catalog
from cluster.config.loader import parse_config
from cluster.config.settings import ClusterConfig
from cluster.placement import plan_for
from deployments.ingress import serve_environment
from tests.unit.helm.chart import (
    KUBE_VERSION,
    RELEASE,
    VALUES_FILES,
    crd_schema,
    golden_path,
    golden_text,
)

NAMES = list(VALUES_FILES)
FULLNAME = f"{RELEASE}"  # the release is named after the chart: no prefix

#: Kinds whose CRDs kubernetes-validate does not carry; checked by the tests below instead.
NOT_IN_CORE = {
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
}

#: What the catalog says each model needs: (tensor, pipeline, GPUs per replica, nodes).
CATALOG_GPUS = {
    "mistralai/devstral-small": (2, 1, 2, 1),
    "minimax/minimax-m1": (8, 2, 16, 2),
    "qwen/qwen3-coder-flash": (2, 1, 2, 1),
    "casperhansen/mistral-small-24b-instruct-2501-awq": (1, 1, 1, 1),
}


def _one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def _serve_config(objs: list[dict[str, Any]]) -> dict[str, Any]:
    text = _one(objs, "RayService")["spec"]["serveConfigV2"]
    assert isinstance(text, str)
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _cluster_config(objs: list[dict[str, Any]]) -> ClusterConfig:
    (app,) = _serve_config(objs)["applications"]
    return parse_config(app["args"]["cluster"], source="serveConfigV2")


def _strict(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server's strict field validation
    does: objects with declared properties and no other allowance get additionalProperties
    false (x-kubernetes-preserve-unknown-fields keeps them open)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = _strict(crd_schema(kind))
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema)
    return validator


def _worker_groups(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups = _one(objs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert isinstance(groups, list)
    return groups


def _pod_gpus(group: dict[str, Any]) -> int:
    """GPUs one pod of a group gives Ray: nvidia.com/gpu, or num-gpus declared on CPU pods."""
    (container,) = group["template"]["spec"]["containers"]
    limit = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    if limit is not None:
        return int(limit)
    return int(group["rayStartParams"].get("num-gpus", 0))


# --- Kubernetes schemas ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_manifest_passes_kubernetes_validate_strict(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    skipped = set()
    for obj in objects[name]:
        key = (obj["apiVersion"], obj["kind"])
        if obj["kind"] == "RayService" or key in NOT_IN_CORE:
            skipped.add(key)
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = "/".join(str(p) for p in err.path)
            pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {where}: {err.message}")
    assert skipped <= NOT_IN_CORE | {("ray.io/v1", "RayService")}


def test_the_validator_refuses_an_unknown_field() -> None:
    """The strict check is not vacuous: a misspelled Service field fails it."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPrt": "http"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", NAMES)
def test_rayservice_validates_against_kuberay_crds(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    rayservice = _one(objects[name], "RayService")
    _crd_validator("rayservice").validate(rayservice)
    # The RayCluster KubeRay creates from it: apiVersion, kind, metadata + this spec.
    raycluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": f"{FULLNAME}-raycluster"},
        "spec": rayservice["spec"]["rayClusterConfig"],
    }
    _crd_validator("raycluster").validate(raycluster)


def test_crd_check_refuses_a_misspelled_field(objects: dict[str, list[dict[str, Any]]]) -> None:
    rayservice = copy.deepcopy(_one(objects["defaults"], "RayService"))
    rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(jsonschema.ValidationError):
        _crd_validator("rayservice").validate(rayservice)


@pytest.mark.parametrize("name", NAMES)
def test_routes_and_monitors_point_at_what_the_chart_renders(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    """The kinds kubernetes-validate cannot check: their references resolve."""
    objs = objects[name]
    service = _one(objs, "Service", f"{FULLNAME}-gateway")
    service_ports = {p["port"]: p for p in service["spec"]["ports"]}
    cluster = _one(objs, "RayService")["spec"]["rayClusterConfig"]
    pod_ports: set[str] = set()
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for container in group["template"]["spec"]["containers"]:
            pod_ports |= {p["name"] for p in container.get("ports", [])}
    for obj in objs:
        if obj["kind"] in ("HTTPRoute", "GRPCRoute"):
            (rule,) = obj["spec"]["rules"]
            (backend,) = rule["backendRefs"]
            assert backend["name"] == service["metadata"]["name"]
            expected = "http" if obj["kind"] == "HTTPRoute" else "grpc"
            assert service_ports[backend["port"]]["name"] == expected
            assert obj["spec"]["parentRefs"], f"{obj['kind']} without a parent Gateway"
        if obj["kind"] == "PodMonitor":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector == {
                "app.kubernetes.io/name": "modelyard",
                "app.kubernetes.io/instance": RELEASE,
            }, "the PodMonitor must select every Ray pod of the release"
            for endpoint in obj["spec"]["podMetricsEndpoints"]:
                assert endpoint["port"] in pod_ports
        if obj["kind"] == "ServiceMonitor":
            metrics = _one(objs, "Service", f"{FULLNAME}-metrics")
            assert metrics["spec"]["clusterIP"] == "None"  # endpoints = every pod
            names = {p["name"] for p in metrics["spec"]["ports"]}
            for endpoint in obj["spec"]["endpoints"]:
                assert endpoint["port"] in names


def test_every_ray_pod_carries_the_labels_monitors_select(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    spec = _one(objects["gpu-all"], "RayService")["spec"]["rayClusterConfig"]
    templates = [spec["headGroupSpec"]["template"]] + [
        g["template"] for g in spec["workerGroupSpecs"]
    ]
    for template in templates:
        labels = template["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "modelyard"
        assert labels["app.kubernetes.io/instance"] == RELEASE


# --- serveConfigV2 and the cluster file -------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_serve_config_passes_ray_serves_schema(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    from ray.serve.schema import ServeDeploySchema

    serve = _serve_config(objects[name])
    ServeDeploySchema.model_validate(serve)
    (app,) = serve["applications"]
    assert app["import_path"] == "deployments.serve_config:app_builder"
    # Serve's HTTP options carry the cluster file's values, as `modelyard up` passes them.
    gateway = _cluster_config(objects[name]).gateway
    assert serve["http_options"]["request_timeout_s"] == gateway.request_timeout_s
    if gateway.ingress == "proxy":
        assert serve["http_options"]["port"] == gateway.port
    else:
        assert serve["http_options"]["port"] != gateway.port


@pytest.mark.parametrize("name", NAMES)
def test_configmap_holds_the_same_cluster_file(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    configmap = _one(objects[name], "ConfigMap", f"{FULLNAME}-config")
    from_map = yaml.safe_load(configmap["data"]["cluster.yaml"])
    (app,) = _serve_config(objects[name])["applications"]
    assert from_map == app["args"]["cluster"]


@pytest.mark.parametrize("name", NAMES)
def test_serve_config_loads_and_matches_the_catalog(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    config = _cluster_config(objects[name])
    catalog = load_builtin_catalog()
    served = config.served_models(catalog)
    assert served, "no models"
    for model in served:
        spec = catalog.find(model.id)
        assert spec is not None
        assert model.spec.parallelism == spec.parallelism
        tensor, pipeline, gpus, nodes = CATALOG_GPUS[model.id]
        plan = plan_for(model, config.ray)
        assert (plan.tensor, plan.pipeline, plan.gpus, plan.nodes) == (
            tensor,
            pipeline,
            gpus,
            nodes,
        ), model.id


@pytest.mark.parametrize("name", NAMES)
def test_every_replica_fits_a_worker_group(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    """Each replica's GPUs fit whole pods of one group: pods with gpus_per_node GPUs, and
    as many of them per replica as the placement plan has nodes (capacity at maxReplicas
    covers every model's replicas)."""
    objs = objects[name]
    config = _cluster_config(objs)
    groups = [g for g in _worker_groups(objs) if g["groupName"] != "gateway"]
    gpu_groups = [g for g in groups if _pod_gpus(g) > 0]
    need = 0
    for model in config.served_models(load_builtin_catalog()):
        plan = plan_for(model, config.ray)
        if plan.gpus == 0:
            continue
        need += plan.gpus * model.deployment.replicas
        fits = [
            g
            for g in gpu_groups
            if _pod_gpus(g) == config.ray.gpus_per_node
            and g.get("numOfHosts", 1) * g["maxReplicas"] >= plan.nodes
        ]
        assert fits, f"{name}: no worker group holds {model.id} ({plan.gpus} GPUs)"
    capacity = sum(_pod_gpus(g) * g.get("numOfHosts", 1) * g["maxReplicas"] for g in gpu_groups)
    assert capacity >= need


def test_minimax_m1_spans_two_8_gpu_nodes(objects: dict[str, list[dict[str, Any]]]) -> None:
    objs = objects["gpu-all"]
    config = _cluster_config(objs)
    (minimax,) = [m for m in config.served_models(load_builtin_catalog()) if "minimax" in m.id]
    plan = plan_for(minimax, config.ray)
    assert (plan.gpus, plan.nodes, plan.gpus_by_node, plan.strategy) == (16, 2, [8, 8], "PACK")
    (pair,) = [g for g in _worker_groups(objs) if g.get("numOfHosts", 1) == 2]
    assert _pod_gpus(pair) == 8
    spec = pair["template"]["spec"]
    shm = [v for v in spec["volumes"] if v["name"] == "dshm"]
    assert shm and shm[0]["emptyDir"]["medium"] == "Memory"
    assert spec["runtimeClassName"] == "nvidia"
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])


@pytest.mark.parametrize("name", NAMES)
def test_serve_config_builds_the_application(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    """Serve's own build of what KubeRay deploys: one deployment per model with the plan's
    GPU bundles, and the gateway the config's override names."""
    from ray.serve._private.build_app import build_app

    from deployments.serve_config import app_builder

    serve = _serve_config(objects[name])
    (app,) = serve["applications"]
    built = build_app(app_builder(app["args"]), name=app["name"])
    deployments = {d.name: d for d in built.deployments}
    config = _cluster_config(objects[name])
    for model in config.served_models(load_builtin_catalog()):
        replica_config = deployments[model.deployment_name]._replica_config
        bundles = replica_config.placement_group_bundles or []
        gpus = sum(int(b.get("GPU", 0)) for b in bundles)
        assert gpus == plan_for(model, config.ray).gpus, model.id
    overridden = {d["name"] for d in app["deployments"]}
    assert overridden <= set(deployments)
    assert built.ingress_deployment_name == "gateway"


@pytest.mark.parametrize("name", NAMES)
def test_every_ray_container_has_the_ingress_environment(
    name: str, objects: dict[str, list[dict[str, Any]]]
) -> None:
    """Serve reads its ingress mode from every process's environment
    (deployments/ingress.py); behind a Service the draining period keeps Serve's default."""
    objs = objects[name]
    config = _cluster_config(objs)
    expected = serve_environment(config.gateway)
    expected.pop("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", None)
    spec = _one(objs, "RayService")["spec"]["rayClusterConfig"]
    for template in [spec["headGroupSpec"]["template"]] + [
        g["template"] for g in spec["workerGroupSpecs"]
    ]:
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {k: env.get(k) for k in expected} == expected


def test_secrets_come_by_reference(objects: dict[str, list[dict[str, Any]]]) -> None:
    """Auth on by default: the pepper and the ledger URL from the existing Secret, under the
    variable names the cluster file gives; no Secret object is rendered."""
    objs = objects["defaults"]
    config = _cluster_config(objs)
    assert config.auth.mode == "keys"
    assert not [o for o in objs if o["kind"] == "Secret"]
    gateway = next(g for g in _worker_groups(objs) if g["groupName"] == "gateway")
    (container,) = gateway["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs[config.auth.pepper_env] == {"name": "modelyard", "key": "pepper"}
    assert refs[config.ledger.url_env] == {"name": "modelyard", "key": "postgres-url"}
    assert refs["HF_TOKEN"]["optional"] is True


def test_cpu_sim_cluster_has_no_gpu_and_no_keys(objects: dict[str, list[dict[str, Any]]]) -> None:
    objs = objects["cpu-sim"]
    config = _cluster_config(objs)
    assert {m.engine for m in config.models} == {"sim"}
    assert config.auth.mode == "off"
    for group in _worker_groups(objs):
        (container,) = group["template"]["spec"]["containers"]
        assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})


# --- golden renders -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_render_matches_golden(name: str, renders: dict[str, dict[str, str]]) -> None:
    expected = golden_path(name).read_text("utf-8")
    assert golden_text(renders[name]) == expected, (
        f"the {name} render changed; if intended, run `make helm-golden` and review the diff"
    )
