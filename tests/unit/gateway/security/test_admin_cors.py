"""The admin listener (`gateway.admin_port`, `cluster.gateway.http.admin`) and CORS
(`gateway.cors_allow_origins`), on real listeners on loopback.

Admin: with the port set, /metrics and /usage answer there and 404 on the public port,
while the API, the caller's own /key and /generation, /health and /openapi.json stay public;
without it, everything is on the public port as before. CORS: off by default (no
Access-Control-* header on any answer, a preflight is not honoured); with origins listed, a
listed origin gets the headers and its preflight passes, another origin does not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.unit.gateway.security.rig import MODEL, gateway_config, serving

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
ADMIN_PATHS = ["/metrics", "/v1/usage", "/api/v1/usage"]
PUBLIC_PATHS = ["/health", "/openapi.json", "/v1/models", "/api/v1/key"]
ORIGIN = "https://app.example.com"
PREFLIGHT = {
    "origin": ORIGIN,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type",
}


def ledger_env(tmp_path: Path) -> dict[str, str]:
    """A ledger (SQLite) so the ledger routes exist; auth stays off."""
    return {"MODELYARD_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}


async def test_admin_routes_move_to_the_admin_listener(tmp_path: Path) -> None:
    config = gateway_config(admin=True)
    assert config.gateway.admin_host == "127.0.0.1"
    async with serving(config, ledger_env(tmp_path)) as served, httpx.AsyncClient() as http:
        assert (await http.post(f"{served.base}/v1/chat/completions", json=CHAT)).status_code == 200
        for path in ADMIN_PATHS:
            assert (await http.get(f"{served.base}{path}")).status_code == 404, path
            assert (await http.get(f"{served.admin_base}{path}")).status_code == 200, path
        for path in PUBLIC_PATHS:
            assert (await http.get(f"{served.base}{path}")).status_code == 200, path
            assert (await http.get(f"{served.admin_base}{path}")).status_code == 404, path
        metrics = (await http.get(f"{served.admin_base}/metrics")).text
        assert "modelyard_requests_total" in metrics
        usage = (await http.get(f"{served.admin_base}/api/v1/usage?group_by=model")).json()
        assert [row["group"] for row in usage["data"]] == [MODEL]
        bad = await http.get(f"{served.admin_base}/api/v1/usage?group_by=colour")
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "group_by"
    with pytest.raises(httpx.ConnectError):  # the admin listener stops with the app
        async with httpx.AsyncClient() as http:
            await http.get(f"{served.admin_base}/metrics")


async def test_without_admin_port_everything_is_public(tmp_path: Path) -> None:
    config = gateway_config()
    assert config.gateway.admin_port is None
    async with serving(config, ledger_env(tmp_path)) as served, httpx.AsyncClient() as http:
        for path in ADMIN_PATHS + PUBLIC_PATHS:
            assert (await http.get(f"{served.base}{path}")).status_code == 200, path


def test_admin_port_must_differ_from_the_others() -> None:
    with pytest.raises(ValueError, match="admin_port 8000 is also the gateway's HTTP port"):
        gateway_config(port=8000, admin_port=8000)
    with pytest.raises(ValueError, match="admin_port 9000 is also the gateway's grpc_port"):
        gateway_config(grpc_port=9000, admin_port=9000)


async def test_cors_is_off_by_default() -> None:
    async with serving(gateway_config()) as served, httpx.AsyncClient() as http:
        preflight = await http.options(f"{served.base}/v1/chat/completions", headers=PREFLIGHT)
        assert preflight.status_code == 405  # not honoured: the route takes POST only
        answers = [
            preflight,
            await http.post(
                f"{served.base}/v1/chat/completions", json=CHAT, headers={"origin": ORIGIN}
            ),
            await http.get(f"{served.base}/v1/models", headers={"origin": ORIGIN}),
        ]
        for reply in answers:
            assert not [h for h in reply.headers if h.lower().startswith("access-control-")]


async def test_cors_allows_listed_origins_only() -> None:
    config = gateway_config(cors_allow_origins=[ORIGIN])
    async with serving(config) as served, httpx.AsyncClient() as http:
        url = f"{served.base}/v1/chat/completions"
        sdk_headers = "authorization,content-type,x-stainless-lang,x-stainless-os"
        preflight = await http.options(
            url, headers={**PREFLIGHT, "access-control-request-headers": sdk_headers}
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        reply = await http.post(url, json=CHAT, headers={"origin": ORIGIN})
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == ORIGIN
        other = {**PREFLIGHT, "origin": "https://evil.example.net"}
        refused = await http.options(url, headers=other)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        foreign = await http.post(url, json=CHAT, headers={"origin": other["origin"]})
        assert "access-control-allow-origin" not in foreign.headers
