"""The `modelyard` command without Ray: help, config validate, models list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster.cli.main import main
from cluster.config.loader import default_config_path


def test_help_does_not_import_ray() -> None:
    code = (
        "import sys\n"
        "from cluster.cli.main import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = sorted(m for m in ('ray', 'vllm', 'torch', 'deployments', 'fastapi') "
        "if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for command in ("up", "config", "models"):
        assert command in text


def test_models_list_has_every_catalog_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "ID"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {
        "mistralai/devstral-small",
        "minimax/minimax-m1",
        "qwen/qwen3-coder-flash",
        "casperhansen/mistral-small-24b-instruct-2501-awq",
    }
    assert "TP8xPP2+EP = 16 GPU" in rows["minimax/minimax-m1"]
    assert (
        "casperhansen-mistral-small-24b-instruct-2501-awq"
        in rows["casperhansen/mistral-small-24b-instruct-2501-awq"]
    )


def test_validate_packaged_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(default_config_path())]) == 0
    out = capsys.readouterr().out
    assert "valid (5 model(s))" in out
    assert "smollm2-135m-instruct: engine=vllm replicas=1 gpus/replica=0" in out
    assert "minimax/minimax-m1: engine=sim replicas=1 gpus/replica=16 strategy=PACK" in out


BAD_FILES = [
    ("models:\n  - id: mistralai/devstral-small\n    replicas: 0\n", "models[0].replicas"),
    ("models:\n  - id: no/such-model\n", "models[0].id: unknown model 'no/such-model'"),
    ("gateway: {port: 99999}\nmodels: [{id: qwen/qwen3-coder-flash}]\n", "gateway.port"),
    ("models: [{id: qwen/qwen3-coder-flash, colour: red}]\n", "models[0].colour"),
    ("models: [{id: qwen/qwen3-coder-flash}\n", "not valid YAML"),
    (
        "ray: {gpus_per_node: 4}\nmodels: [{id: minimax/minimax-m1}]\n",
        "catalog[minimax/minimax-m1].parallelism.tensor: tensor parallel size 8 exceeds "
        "ray.gpus_per_node 4",
    ),
    (
        "catalog:\n"
        "  - {id: big/tp16, display_name: Big, weights: x, params_b: 1, active_params_b: 1,\n"
        "     num_layers: 1, kv_bytes_per_token: 1, context_window: 8,\n"
        "     parallelism: {tensor: 16}}\n"
        "models: [{id: big/tp16}]\n",
        "catalog[big/tp16].parallelism.tensor",
    ),
]


@pytest.mark.parametrize(("text", "needle"), BAD_FILES)
def test_validate_names_the_field_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    assert main(["config", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert captured.out == ""


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_up_rejects_invalid_config_before_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("ray: {gpus_per_node: 4}\nmodels: [{id: minimax/minimax-m1}]\n")
    assert main(["up", "--config", str(path)]) == 2
    assert "parallelism.tensor" in capsys.readouterr().err
    assert "ray" not in sys.modules or not _ray_initialized()


def _ray_initialized() -> bool:
    import ray

    return bool(ray.is_initialized())


@pytest.mark.parametrize("flag", ["--port", "--grpc-port"])
@pytest.mark.parametrize("value", ["0", "65536", "http"])
def test_up_rejects_a_port_that_is_not_a_tcp_port(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err
