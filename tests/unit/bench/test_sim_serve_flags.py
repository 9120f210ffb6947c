"""`modelyard sim serve`'s security flags: --tls-cert/--tls-key go together (exit 2 naming
them), --admin-port must differ from --port; both reach `gateway:` as the cluster file's
`tls` and `admin_port`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.sim_serve_cmd import run, tls_settings
from cluster.cli import sim_serve


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim_serve.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", "serve", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "k.pem"], "--tls-cert and --tls-key go together"),
        (["--port", "8100", "--admin-port", "8100"], "--admin-port must differ from --port"),
    ],
)
def test_bad_flags_exit_2_naming_them(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(parse(*argv)) == 2
    assert message in capsys.readouterr().err


def test_tls_flags_become_the_tls_settings() -> None:
    assert tls_settings(parse()) is None
    tls = tls_settings(parse("--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "a"))
    assert tls is not None
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        Path("c.pem"),
        Path("k.pem"),
        Path("a"),
    )
