"""Media in chat messages (`cluster.gateway.service.media`), table-driven over the real HTTP
app: every URL-bearing part is refused with 400 naming its exact field unless
`gateway.allowed_media_url_prefixes` allows it; the gateway never fetches (the URLs below
point at a port nobody listens on, and an allowed one still answers at once)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cluster.api.validation import parse_chat_request
from cluster.config import ClusterConfig, GatewaySettings, ModelDeployment, load_builtin_catalog
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from cluster.gateway.service.media import MediaPolicy
from deployments.engines.sim import SimEngine, VirtualClock

MODEL = "qwen/qwen3-coder-flash"
NOWHERE = "http://127.0.0.1:9/cat.png"  # the discard port: a fetch would fail or hang
B64 = "UklGRiQAAABXQVZF"

TEXT = {"type": "text", "text": "What is this?"}
IMAGE = {"type": "image_url", "image_url": {"url": NOWHERE}}
IMAGE_DATA = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}
AUDIO_URL = {"type": "audio_url", "audio_url": {"url": "https://cdn.example.com/a.wav"}}
VIDEO_URL = {"type": "video_url", "video_url": {"url": "https://cdn.example.com/v.mp4"}}
INPUT_AUDIO = {"type": "input_audio", "input_audio": {"data": B64, "format": "wav"}}
FILE_DATA = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{B64}"}}
FILE_BARE = {"type": "file", "file": {"file_data": B64, "filename": "a.pdf"}}
FILE_ID = {"type": "file", "file": {"file_id": "file-123"}}

# (case, allowed prefixes, the second message's content parts, refused param or None)
CASES: list[tuple[str, list[str], list[dict[str, Any]], str | None]] = [
    ("image-url", [], [TEXT, IMAGE], "messages[1].content[1].image_url.url"),
    ("image-first", [], [IMAGE, TEXT], "messages[1].content[0].image_url.url"),
    ("image-data-url", [], [IMAGE_DATA], "messages[1].content[0].image_url.url"),
    ("audio-url", [], [AUDIO_URL], "messages[1].content[0].audio_url.url"),
    ("video-url", [], [VIDEO_URL], "messages[1].content[0].video_url.url"),
    ("input-audio", [], [INPUT_AUDIO], "messages[1].content[0].input_audio.data"),
    ("file-data", [], [FILE_DATA], "messages[1].content[0].file.file_data"),
    ("file-bare-base64", [], [FILE_BARE], "messages[1].content[0].file.file_data"),
    ("file-id", ["data:", "http"], [FILE_ID], "messages[1].content[0].file.file_id"),
    ("other-host", ["https://cdn.example.com/"], [IMAGE], "messages[1].content[0].image_url.url"),
    ("prefix-is-not-substring", ["127.0.0.1"], [IMAGE], "messages[1].content[0].image_url.url"),
    ("data-image-not-pdf", ["data:image/"], [FILE_DATA], "messages[1].content[0].file.file_data"),
    ("allowed-host", ["http://127.0.0.1:9/"], [TEXT, IMAGE], None),
    ("allowed-cdn", ["https://cdn.example.com/"], [AUDIO_URL, VIDEO_URL], None),
    ("allowed-data-image", ["data:image/"], [IMAGE_DATA], None),
    ("allowed-data-any", ["data:"], [INPUT_AUDIO, FILE_DATA, FILE_BARE], None),
    ("text-only", [], [TEXT], None),
]


def body(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": parts},
        ],
        "max_tokens": 4,
    }


@pytest.fixture
async def apps() -> AsyncIterator[dict[tuple[str, ...], httpx.AsyncClient]]:
    """One app per distinct allow-list of `CASES`, over one simulated engine."""
    config = ClusterConfig(models=[ModelDeployment(id=MODEL)])
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend({MODEL: SimEngine(served[0], replica_id="m0", clock=VirtualClock())})
    await backend.start()
    clients: dict[tuple[str, ...], httpx.AsyncClient] = {}
    for prefixes in {tuple(case[1]) for case in CASES}:
        gateway = GatewaySettings(allowed_media_url_prefixes=list(prefixes))
        app = build_gateway_app(
            config.model_copy(update={"gateway": gateway}), served, backend, environ={}
        )
        clients[prefixes] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=10
        )
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        await backend.shutdown()


@pytest.mark.parametrize(("case", "prefixes", "parts", "param"), CASES, ids=[c[0] for c in CASES])
async def test_media_policy_over_http(
    apps: dict[tuple[str, ...], httpx.AsyncClient],
    case: str,
    prefixes: list[str],
    parts: list[dict[str, Any]],
    param: str | None,
) -> None:
    for stream in (False, True):
        reply = await apps[tuple(prefixes)].post(
            "/v1/chat/completions", json=body(parts) | {"stream": stream}
        )
        if param is None:
            assert reply.status_code == 200, reply.text
            continue
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["param"] == param
        assert error["type"] == "invalid_request_error"
        assert param in error["message"]
        assert "allowed_media_url_prefixes" in error["message"]


def test_policy_without_prefixes_refuses_every_media_part() -> None:
    for _case, _prefixes, parts, _param in CASES:
        request = parse_chat_request(httpx.Request("POST", "/", json=body(parts)).read())
        media = [p for p in parts if p["type"] != "text"]
        if media:
            with pytest.raises(Exception, match="allowed_media_url_prefixes"):
                MediaPolicy().check(request)
        else:
            MediaPolicy().check(request)


def test_empty_prefix_is_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="allow every URL"):
        GatewaySettings(allowed_media_url_prefixes=[""])
