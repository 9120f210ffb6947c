"""TLS on the gateway's HTTP and gRPC listeners (`gateway.tls`), with a CA, server and client
certificate made at test time: the real `openai` SDK and httpx verify the server against the
CA and get answers; plain HTTP to the TLS port gets none; a gRPC client with
`ssl_channel_credentials` gets an answer; with `client_ca_file` (mutual TLS) a client
without a certificate is refused on both doors and one with a CA-signed certificate is
served."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import openai
import pytest

from cluster.errors import ConfigError, EngineUnavailable
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, grpc_code, user
from cluster.gateway.tls import serve_http_tls, uvicorn_tls
from tests.unit.gateway.security.certs import Pki, make_pki
from tests.unit.gateway.security.rig import MODEL, gateway_config, serving

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_of(pki: Pki, *, mutual: bool = False) -> dict[str, str]:
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    return tls | ({"client_ca_file": str(pki.ca)} if mutual else {})


def grpc_client(pki: Pki, target: str, *, with_cert: bool) -> ModelyardClient:
    client_pair = (
        {
            "private_key": pki.client_key.read_bytes(),
            "certificate_chain": pki.client_cert.read_bytes(),
        }
        if with_cert
        else {}
    )
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes(), **client_pair)
    return ModelyardClient(target, channel=grpc.aio.secure_channel(target, credentials))


async def test_https_and_grpc_over_tls(pki: Pki) -> None:
    config = gateway_config(grpc=True, tls=tls_of(pki))
    async with serving(config) as served:
        assert served.base.startswith("https://")
        # The real OpenAI SDK, verifying the server against the test CA.
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=pki.ca)) as http:
            sdk = openai.AsyncOpenAI(
                base_url=f"{served.base}/v1", api_key="unused", http_client=http
            )
            reply = await sdk.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
            assert reply.http_response.status_code == 200
            assert reply.parse().choices[0].finish_reason in ("stop", "length")
        # Without the CA the server's certificate is not trusted.
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as untrusting:
                await untrusting.get(f"{served.base}/health")
        # Plain HTTP to the TLS port gets no HTTP answer.
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as plain:
                await plain.get(f"http://127.0.0.1:{config.gateway.port}/health")
        # gRPC over TLS.
        async with grpc_client(pki, served.grpc_target, with_cert=False) as client:
            answer = await client.chat_unary(
                ChatRequest(model=MODEL, messages=[user("hello")], max_tokens=4), deadline_s=30
            )
            assert len(answer.choices) == 1
        # A plaintext gRPC channel to the TLS port fails.
        async with ModelyardClient(served.grpc_target) as plaintext:
            with pytest.raises(EngineUnavailable) as refused:
                await plaintext.list_models(deadline_s=5)
            assert grpc_code(refused.value) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_needs_a_client_certificate(pki: Pki) -> None:
    config = gateway_config(grpc=True, tls=tls_of(pki, mutual=True))
    ca = ssl.create_default_context(cafile=pki.ca)
    with_cert = ssl.create_default_context(cafile=pki.ca)
    with_cert.load_cert_chain(pki.client_cert, pki.client_key)
    async with serving(config) as served:
        async with httpx.AsyncClient(verify=with_cert) as http:
            reply = await http.post(f"{served.base}/v1/chat/completions", json=CHAT)
            assert reply.status_code == 200
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(verify=ca, timeout=5) as anonymous:
                await anonymous.post(f"{served.base}/v1/chat/completions", json=CHAT)
        async with grpc_client(pki, served.grpc_target, with_cert=True) as client:
            assert [m.id for m in await client.list_models(deadline_s=10)] == [MODEL]
        async with grpc_client(pki, served.grpc_target, with_cert=False) as anonymous_grpc:
            with pytest.raises(EngineUnavailable) as anonymous:
                await anonymous_grpc.list_models(deadline_s=5)
            assert grpc_code(anonymous.value) == grpc.StatusCode.UNAVAILABLE


def test_tls_options_name_an_unreadable_file(tmp_path: Path, pki: Pki) -> None:
    config = gateway_config(tls={"cert_file": str(tmp_path / "nope.pem"), "key_file": "k"})
    with pytest.raises(ConfigError) as err:
        uvicorn_tls(config.gateway.tls)
    assert err.value.param == "gateway.tls.cert_file"


def test_serve_refuses_mutual_tls_it_cannot_enforce(pki: Pki) -> None:
    """Ray Serve 2.60 would load the CA but never require a client certificate."""
    plain = gateway_config(tls=tls_of(pki)).gateway.tls
    assert serve_http_tls(plain) == {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
    }
    assert serve_http_tls(None) == {}
    with pytest.raises(ConfigError) as err:
        serve_http_tls(gateway_config(tls=tls_of(pki, mutual=True)).gateway.tls)
    assert err.value.param == "gateway.tls.client_ca_file"
