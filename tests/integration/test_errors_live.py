"""Each error class over the real server, as OpenAI error objects; the server keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.live import HTTP_TIMEOUT_S, MISTRAL, QWEN

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "hi"}]


def post_raw(api: str, data: bytes) -> requests.Response:
    return requests.post(
        f"{api}/chat/completions",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT_S,
    )


def body_of(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# A prompt far beyond Mistral Small's 32,768-token window, under the 4 MiB body limit:
# the simulator's tokenizer rejects it on the replica, and the typed error crosses Ray.
LONG = " ".join(f"w{i}" for i in range(60_000))

CASES = [
    pytest.param(
        body_of(model=QWEN, messages=HELLO, temperature=5),
        400, "invalid_request_error", None, "temperature", id="bad-field",
    ),
    pytest.param(
        body_of(model=QWEN, messages=HELLO, frobnicate=True),
        400, "invalid_request_error", None, "frobnicate", id="unknown-field",
    ),
    pytest.param(
        b'{"model": "qwen/qwen3-coder-flash", "messages": [',
        400, "invalid_request_error", "invalid_json", None, id="malformed-json",
    ),
    pytest.param(
        body_of(model="acme/no-such-model", messages=HELLO),
        404, "invalid_request_error", "model_not_found", "model", id="unknown-model",
    ),
    pytest.param(
        body_of(model=MISTRAL, messages=[{"role": "user", "content": LONG}]),
        400, "invalid_request_error", "context_length_exceeded", None, id="context-length",
    ),
    pytest.param(
        body_of(model=QWEN, messages=[{"role": "user", "content": "x" * (5 * 1024 * 1024)}]),
        413, "invalid_request_error", "payload_too_large", None, id="too-large",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("data", "status", "kind", "code", "param"), CASES)
def test_error_then_keeps_serving(
    api: str, data: bytes, status: int, kind: str, code: str | None, param: str | None
) -> None:
    reply = post_raw(api, data)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["type"] == kind
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    # The server is still serving.
    ok = post_raw(api, body_of(model=QWEN, messages=HELLO, max_tokens=4))
    assert ok.status_code == 200, ok.text
    assert ok.json()["usage"]["completion_tokens"] > 0


def test_stream_error_before_first_chunk_gets_its_status(api: str) -> None:
    reply = requests.post(
        f"{api}/chat/completions",
        json={"model": MISTRAL, "messages": [{"role": "user", "content": LONG}], "stream": True},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "context_length_exceeded"
