"""TLS for the gateway's listeners from `gateway.tls` (`cluster.config.gateway_security`).

- `uvicorn_tls(tls)`: keyword arguments of `uvicorn.Config` for an HTTP listener we start
  ourselves (`modelyard sim serve`, the admin listener, test harnesses). With
  `client_ca_file`, a client certificate signed by that CA is required (`CERT_REQUIRED`).
- `grpc_credentials(tls)`: `grpc.ssl_server_credentials` for the gRPC API; with
  `client_ca_file`, client authentication is required.
- `serve_http_tls(tls)`: the `ssl_*` fields of Ray Serve's `HTTPOptions`, which Serve
  passes to the uvicorn server of its proxy or of each direct-ingress gateway replica.
  Serve 2.60 passes the CA but never asks uvicorn to require a client certificate, so
  `client_ca_file` cannot be enforced there: `serve_http_tls` refuses it (`ConfigError`)
  rather than serve HTTP without the mutual TLS the file asks for.

Files are read when a listener starts (a mounted Secret); a missing or unreadable file
fails the start naming the field.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import grpc

from cluster.config.gateway_security import TlsSettings
from cluster.errors import ConfigError


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read {path}: {err.strerror}", param=f"gateway.tls.{field}"
        ) from None


def uvicorn_tls(tls: TlsSettings | None) -> dict[str, Any]:
    if tls is None:
        return {}
    _read(tls.cert_file, "cert_file")
    _read(tls.key_file, "key_file")
    options: dict[str, Any] = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
    if tls.client_ca_file is not None:
        _read(tls.client_ca_file, "client_ca_file")
        options["ssl_ca_certs"] = str(tls.client_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def grpc_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    pair = (_read(tls.key_file, "key_file"), _read(tls.cert_file, "cert_file"))
    ca = None if tls.client_ca_file is None else _read(tls.client_ca_file, "client_ca_file")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=ca, require_client_auth=ca is not None
    )


def serve_http_tls(tls: TlsSettings | None) -> dict[str, str]:
    if tls is None:
        return {}
    if tls.client_ca_file is not None:
        raise ConfigError(
            "mutual TLS on HTTP is not available under Ray Serve 2.60 (it cannot require a "
            "client certificate); terminate it in front, or unset client_ca_file",
            param="gateway.tls.client_ca_file",
        )
    return {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
