"""Wrong values are refused by Helm itself, naming the field; lint passes in strict mode;
the committed values.schema.json is what the config models generate."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml

from cluster.config.helm_schema import render as render_schema
from cluster.config.settings import ClusterConfig
from deployments.ingress import serve_environment
from tests.unit.helm.chart import (
    CHART,
    KUBE_VERSION,
    VALUES_FILES,
    load_values,
    manifests,
    render,
)

QWEN = "qwen/qwen3-coder-flash"


@pytest.mark.parametrize(
    ("values", "error", "field"),
    [
        # a negative replica count (the cluster file's, then a worker group's)
        ({"cluster": {"models": [{"id": QWEN, "replicas": -1}]}}, helm.HelmValuesError,
         "/cluster/models/0/replicas"),
        ({"cluster": {"gateway": {"replicas": -2}}}, helm.HelmValuesError,
         "/cluster/gateway/replicas"),
        ({"workerGroups": [{"name": "h100", "accelerator": "gpu", "gpus": 8, "replicas": -1,
                            "minReplicas": 0, "maxReplicas": 2}]}, helm.HelmValuesError,
         "/workerGroups/0/replicas"),
        # an unknown model field, in the list and in the defaults
        ({"cluster": {"models": [{"id": QWEN, "tensor_parallel": 4}]}}, helm.HelmValuesError,
         "'tensor_parallel' not allowed"),
        ({"modelDefaults": {"engnie": "vllm"}}, helm.HelmValuesError, "'engnie' not allowed"),
        ({"cluster": {"models": [{"id": QWEN, "vllm": {"gpu_mem": 0.5}}]}}, helm.HelmValuesError,
         "/cluster/models/0/vllm"),
        # auth on without a secret name
        ({"secrets": {"existingSecret": ""}}, helm.HelmRenderError, "secrets.existingSecret"),
        ({"secrets": {"pepperKey": ""}}, helm.HelmRenderError, "secrets.pepperKey"),
        # a wrong type, an unknown top-level value, node sizes that disagree
        ({"cluster": {"auth": {"mode": False}}}, helm.HelmValuesError, "/cluster/auth/mode"),
        ({"workergroups": []}, helm.HelmValuesError, "'workergroups' not allowed"),
        ({"workerGroups": [{"name": "a100", "accelerator": "gpu", "gpus": 4, "replicas": 1,
                            "minReplicas": 0, "maxReplicas": 1}]}, helm.HelmRenderError,
         "workerGroups[0].gpus"),
        ({"cluster": {"gateway": {"port": 8000}}}, helm.HelmRenderError, "cluster.gateway.port"),
        # an admin listener on loopback that Prometheus is told to scrape
        ({"cluster": {"gateway": {"admin_port": 9100}}, "monitoring": {"podMonitor":
          {"enabled": True}}}, helm.HelmRenderError, "cluster.gateway.admin_host"),
        # mutual TLS that Serve's HTTP server could not enforce
        ({"cluster": {"gateway": {"tls": {"cert_file": "/tls/c", "key_file": "/tls/k",
          "client_ca_file": "/tls/ca"}}}, "secrets": {"tlsSecret": "gw-tls"}},
         helm.HelmRenderError, "cluster.gateway.tls.client_ca_file"),
        # TLS without a mounted certificate, a mounted certificate with TLS off
        ({"cluster": {"gateway": {"tls": {"cert_file": "/tls/c", "key_file": "/tls/k"}}}},
         helm.HelmRenderError, "secrets.tlsSecret"),
        ({"secrets": {"tlsSecret": "gw-tls"}}, helm.HelmRenderError, "cluster.gateway.tls"),
    ],
)  # fmt: skip
def test_wrong_values_are_refused_naming_the_field(
    values: dict[str, Any], error: type[helm.HelmError], field: str
) -> None:
    with pytest.raises(error) as caught:
        render(values)
    assert field in str(caught.value)


def test_auth_off_needs_no_secret() -> None:
    values = {"cluster": {"auth": {"mode": "off"}}, "secrets": {"existingSecret": "",
              "ledgerUrlKey": "", "hfTokenKey": ""}}  # fmt: skip
    rendered = render(values)
    assert "secretKeyRef" not in "".join(rendered.values())


def test_proxy_ingress_puts_serves_proxy_on_the_gateway_port() -> None:
    """`ingress: proxy`: Serve's proxy (every node) is the front door on cluster.gateway.port."""
    rendered = render({"cluster": {"gateway": {"ingress": "proxy", "port": 8000}}})
    (rayservice,) = [doc for doc in manifests(rendered) if doc["kind"] == "RayService"]
    serve = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    assert serve["http_options"]["port"] == 8000
    assert serve["proxy_location"] == "EveryNode"
    gateway = next(
        g
        for g in rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        if g["groupName"] == "gateway"
    )
    (container,) = gateway["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0"
    assert {"name": "http", "containerPort": 8000} in container["ports"]


@pytest.mark.parametrize("name", list(VALUES_FILES))
def test_helm_lint_strict_passes(name: str) -> None:
    report = helm.lint(CHART, load_values(name), strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_lint_strict_reports_a_broken_value() -> None:
    report = helm.lint(CHART, {"cluster": {"models": [{"id": QWEN, "replicas": 0}]}}, strict=True)
    assert report["errors"] or any(m["severity"] >= 2 for m in report["messages"])


def test_values_schema_is_current() -> None:
    committed = (CHART / "values.schema.json").read_text("utf-8")
    assert committed == render_schema(CHART), "stale: run `make helm-schema`"


def test_the_charts_fallbacks_are_the_config_models_defaults() -> None:
    """Where the cluster file leaves a field out, the templates fall back to a value of their
    own (gateway replicas, request timeout, GPUs per node); it must be the model's default."""
    unset = {"replicas": None}  # request_timeout_s is absent from the defaults already
    values = {"cluster": {"gateway": unset, "ray": {"gpus_per_node": None}}}
    objs = manifests(render(values))
    (rayservice,) = [o for o in objs if o["kind"] == "RayService"]
    serve = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    assert "replicas" not in app["args"]["cluster"]["gateway"]  # really left out
    config = ClusterConfig.model_validate(app["args"]["cluster"])
    assert serve["http_options"]["request_timeout_s"] == config.gateway.request_timeout_s
    groups = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    gateway = next(g for g in groups if g["groupName"] == "gateway")
    assert gateway["replicas"] == config.gateway.replicas
    (container,) = gateway["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    expected = serve_environment(config.gateway)
    assert (
        env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]
        == expected["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]
    )
    gpu_pods = [g for g in groups if g["groupName"] != "gateway"]
    for group in gpu_pods:
        (worker,) = group["template"]["spec"]["containers"]
        assert worker["resources"]["limits"]["nvidia.com/gpu"] == config.ray.gpus_per_node


def _gateway_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (rayservice,) = [doc for doc in docs if doc["kind"] == "RayService"]
    gateway = next(
        g
        for g in rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        if g["groupName"] == "gateway"
    )
    (container,) = gateway["template"]["spec"]["containers"]
    return dict(container)


def test_monitors_scrape_the_admin_port_when_it_is_set() -> None:
    """With cluster.gateway.admin_port, /metrics is only there: the monitors follow it."""
    monitoring = {"podMonitor": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    for gateway, port_name, number in (
        ({}, "http", 8100),
        ({"admin_port": 9100, "admin_host": "0.0.0.0"}, "admin", 9100),  # nosec B104
    ):
        docs = manifests(render({"cluster": {"gateway": gateway}, "monitoring": monitoring}))
        container = _gateway_container(docs)
        assert {"name": port_name, "containerPort": number} in container["ports"]
        pod_monitor = next(d for d in docs if d["kind"] == "PodMonitor")
        scraped = [e for e in pod_monitor["spec"]["podMetricsEndpoints"] if e.get("path")]
        assert [(e["port"], e["path"], e["scheme"]) for e in scraped] == [
            (port_name, "/metrics", "http")
        ]
        service_monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
        assert [e["port"] for e in service_monitor["spec"]["endpoints"] if e.get("path")] == [
            port_name
        ]
        metrics = next(
            d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
        )
        assert {"name": port_name, "port": number, "targetPort": number, "appProtocol": "http"} in (
            metrics["spec"]["ports"]
        )


def test_tls_reaches_serves_http_options_and_the_scrape_scheme() -> None:
    tls = {"cert_file": "/etc/modelyard-tls/tls.crt", "key_file": "/etc/modelyard-tls/tls.key"}
    scrape_tls = {"ca": {"secret": {"name": "gw-ca", "key": "ca.crt"}}, "serverName": "gw"}
    monitoring = {
        "podMonitor": {"enabled": True},
        "serviceMonitor": {"enabled": True},
        "tlsConfig": scrape_tls,
    }
    values = {
        "cluster": {"gateway": {"tls": tls}},
        "secrets": {"tlsSecret": "gw-tls"},
        "monitoring": monitoring,
    }
    docs = manifests(render(values))
    # The certificate is mounted where the paths point, on every Ray pod (head, workers,
    # gateway pods: Serve's proxies may run on any of them).
    pods = [
        spec["template"]["spec"]
        for doc in docs
        if doc["kind"] == "RayService"
        for spec in [
            doc["spec"]["rayClusterConfig"]["headGroupSpec"],
            *doc["spec"]["rayClusterConfig"]["workerGroupSpecs"],
        ]
    ]
    assert len(pods) >= 2
    for pod in pods:
        assert {"name": "gateway-tls", "secret": {"secretName": "gw-tls"}} in pod["volumes"]
        mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", [])]
        assert {"name": "gateway-tls", "mountPath": "/etc/modelyard-tls", "readOnly": True} in (
            mounts
        )
    for kind, key in (("PodMonitor", "podMetricsEndpoints"), ("ServiceMonitor", "endpoints")):
        monitor = next(d for d in docs if d["kind"] == kind)
        (scraped,) = [e for e in monitor["spec"][key] if e.get("path")]
        assert (scraped["scheme"], scraped["tlsConfig"]) == ("https", scrape_tls)
    (rayservice,) = [doc for doc in docs if doc["kind"] == "RayService"]
    serve = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    assert serve["http_options"]["ssl_certfile"] == tls["cert_file"]
    assert serve["http_options"]["ssl_keyfile"] == tls["key_file"]
    pod_monitor = next(d for d in docs if d["kind"] == "PodMonitor")
    assert [e["scheme"] for e in pod_monitor["spec"]["podMetricsEndpoints"] if e.get("path")] == [
        "https"
    ]
