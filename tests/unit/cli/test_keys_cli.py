"""`modelyard keys`, `modelyard usage` and `modelyard up --auth` on a real SQLite ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.cli.auth_mode import auth_line, with_auth
from cluster.cli.main import main
from cluster.config import ClusterConfig, ModelDeployment
from cluster.errors import ConfigError


@pytest.fixture
def cluster_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "name: t\nledger: {sqlite_path: %s}\nmodels: [{id: qwen/qwen3-coder-flash}]\n"
        % (tmp_path / "ledger.sqlite")
    )
    monkeypatch.setenv("MODELYARD_KEY_PEPPER", "cli-test-pepper")
    monkeypatch.delenv("MODELYARD_LEDGER_URL", raising=False)
    return str(path)


def test_keys_lifecycle(cluster_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["keys", "create", "--config", cluster_file, "--name", "ci", "--budget-rub", "2.5"]
    assert main([*argv, "--rpm", "10", "--models", "qwen/qwen3-coder-flash"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("myd-") and key not in out.err
    key_id = key.split("-")[1]
    assert "budget 2.5 RUB" in out.err
    assert main(["keys", "list", "--config", cluster_file]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and key not in listed and "10 rpm" in listed
    assert main(["keys", "rotate", "--config", cluster_file, key_id]) == 0
    rotated = capsys.readouterr().out.strip()
    assert rotated.startswith(f"myd-{key_id}-") and rotated != key
    assert main(["keys", "revoke", "--config", cluster_file, key_id]) == 0
    assert main(["keys", "revoke", "--config", cluster_file, key_id]) == 1
    assert main(["keys", "show", "--config", cluster_file, "nosuchkey"]) == 1
    capsys.readouterr()
    assert main(["usage", "--config", cluster_file, "--group-by", "day"]) == 0
    assert "total" in capsys.readouterr().out


def test_keys_need_the_pepper(
    cluster_file: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MODELYARD_KEY_PEPPER")
    assert main(["keys", "list", "--config", cluster_file]) == 2
    assert "MODELYARD_KEY_PEPPER" in capsys.readouterr().err


def test_up_auth_override_and_the_line_that_says_it(tmp_path: Path) -> None:
    config = ClusterConfig(models=[ModelDeployment(id="qwen/qwen3-coder-flash")])
    assert "authentication: OFF" in auth_line(with_auth(config, None, {}))
    with pytest.raises(ConfigError, match="MODELYARD_KEY_PEPPER"):
        with_auth(config, "keys", {})
    keyed = with_auth(config, "keys", {"MODELYARD_KEY_PEPPER": "x"})
    assert keyed.auth.mode == "keys" and keyed.ledger.sqlite_path.is_absolute()
    assert auth_line(keyed).startswith("authentication: keys")
