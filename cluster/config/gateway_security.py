"""The security fields of `gateway:` (mixed into `GatewaySettings`, cluster/config/settings.py).

- `tls`: serve HTTP and gRPC over TLS from a certificate and key file (PEM); with
  `client_ca_file` as well, clients must present a certificate that CA signed (mutual TLS).
  Off by default (a mesh or an ingress in front usually terminates TLS).
- `admin_port` / `admin_host`: the operator routes (`cluster.gateway.http.admin`:
  `/metrics`, `/api/v1/usage`, `/openapi.json`, `/debug/routing`) on their own listener,
  on loopback by default, and no longer on the public port. Unset by default: they stay on
  the public port, as before.
- `cors_allow_origins`: browsers' cross-origin access. Empty by default: no
  `Access-Control-*` header is ever sent and a preflight `OPTIONS` is not honoured.
- `allowed_media_url_prefixes`: URLs in chat content parts (`image_url.url`,
  `input_audio`, `file.file_data` / `file_url`, ...) are refused with 400 naming the field
  unless they start with one of these prefixes. Empty by default. `data:` URLs are matched
  like any other (list `data:` or `data:image/` to allow inline media). The gateway itself
  never fetches a URL.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    """`gateway.tls`: PEM files, read when a listener starts (a mounted Secret)."""

    cert_file: Path = Field(description="server certificate chain (PEM)")
    key_file: Path = Field(description="the certificate's private key (PEM, unencrypted)")
    client_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) for client certificates: when set, every HTTP and gRPC "
        "client must present a certificate it signed (mutual TLS)",
    )


class GatewaySecurityFields(_Strict):
    """Fields of `GatewaySettings` (module docstring)."""

    tls: TlsSettings | None = Field(
        default=None, description="TLS for the HTTP and gRPC listeners; null: plaintext"
    )
    admin_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve the operator routes (/metrics, /api/v1/usage, /openapi.json, "
        "/debug/routing) on this port and not on the public one; null: public port",
    )
    admin_host: str = Field(default="127.0.0.1", description="bind address of the admin listener")
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="origins browsers may call the API from ('*' for any); empty: CORS off "
        "(no Access-Control-* headers, preflight refused)",
    )
    allowed_media_url_prefixes: list[str] = Field(
        default_factory=list,
        description="URLs in chat content parts (image_url, input_audio, file) must start "
        "with one of these (e.g. 'https://cdn.example.com/', 'data:image/'); empty: every "
        "such URL is refused with 400",
    )

    @field_validator("allowed_media_url_prefixes")
    @classmethod
    def _non_empty_prefixes(cls, value: list[str]) -> list[str]:
        for i, prefix in enumerate(value):
            if not prefix.strip():
                raise ValueError(f"item {i} is empty: it would allow every URL")
        return value
