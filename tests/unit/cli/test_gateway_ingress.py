"""`gateway.ingress`: validation, the Ray environment each mode needs, and `up --ingress`.

No Ray here: the environment is a pure function of the settings; what Serve does with it
is covered by tests/integration/test_ingress_live.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cluster.cli.main import main
from cluster.config import parse_config
from cluster.config.settings import GatewaySettings
from cluster.errors import ConfigError
from deployments.ingress import (
    EXTRA_APP_PORTS,
    ingress_ports,
    ray_environment,
    serve_environment,
)

MODELS = [{"id": "qwen/qwen3-coder-flash"}]


@pytest.mark.parametrize(
    ("gateway", "ingress", "http_ports"),
    [
        ({}, "direct", [8000]),
        ({"ingress": "proxy"}, "proxy", [8000]),
        ({"ingress": "direct", "replicas": 3, "port": 9000}, "direct", [9000, 9001, 9002]),
        ({"ingress": "proxy", "replicas": 3, "port": 9000}, "proxy", [9000]),  # one proxy
        ({"port": 65535}, "direct", [65535]),
        ({"port": 8000, "grpc_port": 8001}, "direct", [8000]),
        ({"ingress": "proxy", "replicas": 2, "grpc_port": 8001}, "proxy", [8000]),
    ],
)
def test_valid_gateway(gateway: dict[str, Any], ingress: str, http_ports: list[int]) -> None:
    config = parse_config({"gateway": gateway, "models": MODELS})
    assert config.gateway.ingress == ingress
    assert config.gateway.http_ports == http_ports


@pytest.mark.parametrize(
    ("gateway", "needle"),
    [
        ({"ingress": "haproxy"}, "gateway.ingress: Input should be 'proxy' or 'direct'"),
        ({"ingress": None}, "gateway.ingress"),
        ({"ingress": "direct", "replicas": 2, "port": 65535}, "ports 65535-65536, past 65535"),
        ({"grpc_port": 8000}, "grpc_port 8000 is also the gateway's HTTP port (8000)"),
        ({"replicas": 3, "grpc_port": 8002}, "grpc_port 8002 is also the gateway's HTTP port"),
        ({"ingress": "proxy", "grpc_port": 8000}, "grpc_port 8000 is also"),
        ({"ingres": "direct"}, "gateway.ingres: Extra inputs are not permitted"),
    ],
)
def test_invalid_gateway_names_the_field(gateway: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"gateway": gateway, "models": MODELS}, source="t.yaml")
    assert "gateway" in err.value.message
    assert needle in err.value.message


def test_packaged_local_config_is_direct() -> None:
    from cluster.config.loader import default_config_path, load_config

    assert load_config(default_config_path()).gateway.ingress == "direct"


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        (
            GatewaySettings(ingress="proxy", port=8000),
            {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"},
        ),
        (
            GatewaySettings(ingress="direct", port=8000),
            {
                "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "8000",
                "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(8001 + EXTRA_APP_PORTS),
                "RAY_SERVE_PORT_QUARANTINE_S": "0",
                "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
            },
        ),
        (
            GatewaySettings(ingress="direct", port=9000, replicas=4),
            {
                "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
                "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "9000",
                "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(9004 + EXTRA_APP_PORTS),
                "RAY_SERVE_PORT_QUARANTINE_S": "0",
                "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
            },
        ),
    ],
    ids=["proxy", "direct", "direct-4-replicas"],
)
def test_serve_environment(gateway: GatewaySettings, expected: dict[str, str]) -> None:
    assert serve_environment(gateway) == expected


@pytest.mark.parametrize(
    ("port", "replicas", "first", "stop"),
    [
        (8000, 1, 8000, 8001 + EXTRA_APP_PORTS),
        (8000, 3, 8000, 8003 + EXTRA_APP_PORTS),
        (65535, 1, 65535, 65536),  # never past the last TCP port
    ],
)
def test_ingress_ports_start_with_the_gateway_replicas(
    port: int, replicas: int, first: int, stop: int
) -> None:
    ports = ingress_ports(GatewaySettings(port=port, replicas=replicas))
    assert (ports.start, ports.stop) == (first, stop)
    # Serve hands out the lowest free port first: the gateway replicas, deployed first,
    # take exactly gateway.http_ports.
    assert list(ports)[:replicas] == GatewaySettings(port=port, replicas=replicas).http_ports


def test_ray_environment_sets_then_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_SERVE_THROUGHPUT_OPTIMIZED", "0")  # left in the shell
    monkeypatch.delenv("RAY_SERVE_PORT_QUARANTINE_S", raising=False)
    env = serve_environment(GatewaySettings(ingress="direct"))
    with ray_environment(env):
        assert {key: os.environ[key] for key in env} == env
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "0"
    assert "RAY_SERVE_PORT_QUARANTINE_S" not in os.environ


def test_ray_environment_restores_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_SERVE_ENABLE_DIRECT_INGRESS", raising=False)
    with pytest.raises(RuntimeError), ray_environment({"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"}):
        raise RuntimeError("ray.init failed")
    assert "RAY_SERVE_ENABLE_DIRECT_INGRESS" not in os.environ


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--grpc-port", "8000"], "gateway: Value error, grpc_port 8000 is also the gateway's"),
        (["--port", "50051"], "grpc_port 50051 is also"),  # local.yaml's gRPC port
        (["--ingress", "proxy", "--port", "50051"], "grpc_port 50051 is also"),
    ],
)
def test_up_overrides_are_validated_before_ray(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", *argv]) == 2
    err = capsys.readouterr().err
    assert "command-line overrides" in err
    assert needle in err


def test_up_rejects_an_unknown_ingress(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "--ingress", "haproxy"])
    assert exit_info.value.code == 2
    assert "--ingress" in capsys.readouterr().err


def test_up_reports_a_taken_gateway_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    config = tmp_path / "one.yaml"
    config.write_text("models: [{id: casperhansen/mistral-small-24b-instruct-2501-awq}]\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["up", "--config", str(config), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"gateway.port: cannot listen on 127.0.0.1:{port}" in err
