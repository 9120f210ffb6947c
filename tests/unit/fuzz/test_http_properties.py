"""Property-based tests of the HTTP front door (Hypothesis, fixed seeds: `derandomize`).

Over a live gateway (tests/unit/fuzz/gateway.py) on a real socket, 2,050 generated
requests in all: valid chat and completions bodies built from the request models' fields
(n > 1, prompt lists, token-id prompts, tools, response formats, streaming), mutations of
them (wrong types, out-of-range and huge numbers, deep nesting, odd unicode, unknown and
missing fields), and raw bodies (truncated JSON, NaN/Infinity, lone surrogates, random
bytes, oversized), wrong methods and content types. Every answer is a 2xx or a 4xx with
an OpenAI error object — never a 5xx — and comes within the client's timeout (a hang
fails the test); after each suite the gateway answers a valid request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fuzz.checks import check_answer
from tests.unit.fuzz.gateway import MAX_BODY, MODELS, LiveGateway
from tests.unit.fuzz.strategies import chat_bodies, completion_bodies, mutated

REQUEST_TIMEOUT_S = 15.0
PREFIXES = st.sampled_from(["/v1", "/api/v1"])
pytestmark = pytest.mark.timeout(240)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def http(gateway: LiveGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        yield client
    # the gateway still answers a valid request
    with httpx.Client(base_url=gateway.base_url, timeout=REQUEST_TIMEOUT_S) as client:
        body = {
            "model": MODELS[0],
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3,
        }
        ok = client.post("/v1/chat/completions", json=body)
        assert ok.status_code == 200, ok.text


def post(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    response = http.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    check_answer(response)
    return response


QUOTAS = {
    "chat": 500,
    "completion": 400,
    "chat-mutated": 400,
    "completion-mutated": 300,
    "raw": 450,
}
assert sum(QUOTAS.values()) >= 2000


def test_valid_chat_requests(http: httpx.Client) -> None:
    sent: list[int] = []

    @fuzz_settings(QUOTAS["chat"])
    @given(prefix=PREFIXES, body=chat_bodies())
    def run(prefix: str, body: dict[str, Any]) -> None:
        sent.append(post(http, f"{prefix}/chat/completions", body).status_code)

    run()
    assert len(sent) >= QUOTAS["chat"]
    assert sent.count(200) > len(sent) // 4  # the generator reaches the engines


def test_valid_completion_requests(http: httpx.Client) -> None:
    sent: list[int] = []

    @fuzz_settings(QUOTAS["completion"])
    @given(prefix=PREFIXES, body=completion_bodies())
    def run(prefix: str, body: dict[str, Any]) -> None:
        sent.append(post(http, f"{prefix}/completions", body).status_code)

    run()
    assert len(sent) >= QUOTAS["completion"]
    assert sent.count(200) > len(sent) // 4


@pytest.mark.parametrize(
    ("kind", "path", "valid"),
    [
        ("chat-mutated", "/v1/chat/completions", chat_bodies()),
        ("completion-mutated", "/v1/completions", completion_bodies()),
    ],
)
def test_mutated_requests(
    http: httpx.Client, kind: str, path: str, valid: st.SearchStrategy[dict[str, Any]]
) -> None:
    sent: list[int] = []

    @fuzz_settings(QUOTAS[kind])
    @given(body=mutated(valid))
    def run(body: dict[str, Any]) -> None:
        sent.append(post(http, path, body).status_code)

    run()
    assert len(sent) >= QUOTAS[kind]


def _truncated(text: str, cut: int) -> bytes:
    return text.encode()[: max(0, len(text.encode()) - 1 - cut % max(1, len(text)))]


RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda b, c: _truncated(json.dumps(b), c), chat_bodies(), st.integers(0, 500)),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"null",
            b"[]",
            b'"text"',
            b"{",
            b'{"model": NaN}',
            b'{"model": "qwen/qwen3-coder-flash", "temperature": Infinity, "messages": []}',
            b'{"model": "qwen/qwen3-coder-flash", "messages": '
            b'[{"role": "user", "content": "\\ud800"}]}',
            b'{"model": "qwen/qwen3-coder-flash", "prompt": "\\udfff\\ud800"}',
            b'{"model": "\xff\xfe"}',
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"model": "m", "messages": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            b'{"model": "' + b"x" * (MAX_BODY + 10) + b'"}',
        ]
    ),
)
METHODS = st.sampled_from(
    ["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ]
)
PATHS = st.sampled_from(
    [
        "/v1/chat/completions",
        "/api/v1/chat/completions",
        "/v1/completions",
        "/api/v1/completions",
        "/v1/models",
        "/v1/models/qwen/qwen3-coder-flash",
        "/v1/nothing",
    ]
)


def test_raw_bodies_methods_and_content_types(http: httpx.Client) -> None:
    sent: list[int] = []

    @fuzz_settings(QUOTAS["raw"])
    @given(method=METHODS, path=PATHS, content_type=CONTENT_TYPES, body=RAW_BODIES)
    def run(method: str, path: str, content_type: str, body: bytes) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = http.request(method, path, content=body, headers=headers)
        if method == "HEAD":
            assert response.status_code < 500
        else:
            check_answer(response)
        sent.append(response.status_code)

    run()
    assert len(sent) >= QUOTAS["raw"]
