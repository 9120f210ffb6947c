"""The security settings on the real Ray Serve app, as `modelyard up` runs it, and a
log-grep of the whole run (issue 15, item 5).

One `modelyard up` process (its own local Ray, one simulated model, ingress direct) with
managed keys (SQLite ledger), `telemetry.log_level: DEBUG`, `gateway.tls` (a CA and server
certificate made at test time), `gateway.admin_port` and the gRPC API. Shown live:

- HTTPS on the gateway replica's own port (Serve's uvicorn with our certificate): the
  `openai` SDK verifying against the CA gets answers; plain HTTP to that port gets none;
- gRPC over TLS (`ssl_channel_credentials`) with the key gets an answer;
- /metrics and /usage answer on the admin listener inside the gateway replica, 404 on the
  public port; the caller's own /key stays public;
- then, after the process has stopped, nothing under Ray's session log folder, nothing the
  process printed, and nothing in /metrics holds the key, the prompt marker or any
  completion text.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import uuid
from pathlib import Path

import grpc
import httpx
import openai
import pytest
import yaml

from bench.processes import free_port
from bench.thirdparty import modelyard_bin
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, user
from tests.integration.live import MISTRAL
from tests.integration.up_process import UpProcess
from tests.unit.gateway.security.certs import make_pki

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
READY_LINE = "Press Ctrl-C to stop."
PEPPER = "security-live-pepper-0123456789abcdef"


def _log_texts(session_dir: Path) -> dict[str, str]:
    texts = {}
    for path in sorted((session_dir / "logs").rglob("*")):
        if path.is_file():
            texts[str(path.relative_to(session_dir))] = path.read_text("utf-8", "replace")
    return texts


def test_tls_admin_listener_and_no_secrets_in_logs_under_ray(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    port, grpc_port, admin_port = free_port(), free_port(), free_port()
    config = tmp_path / "secure.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "security-live",
                "ray": {"num_cpus": 4, "virtual_gpus": 2},
                "auth": {"mode": "keys"},
                "telemetry": {"log_level": "DEBUG"},
                "gateway": {
                    "grpc_port": grpc_port,
                    "admin_port": admin_port,
                    "tls": {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
                },
                "models": [{"id": MISTRAL, "engine": "sim", "sim": {"speedup": 200}}],
            }
        )
    )
    defaults = {
        "MODELYARD_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "MODELYARD_KEY_PEPPER": PEPPER,
    }
    # Serve's throughput-optimised mode (ingress direct) buffers 1,000 replica log records
    # and does not copy them to stderr; a replica stopped at the end loses what is buffered.
    # Every record is written at once here, so the search below sees all of them.
    logged = {"RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1", "RAY_SERVE_LOG_TO_STDERR": "1"}
    created = subprocess.run(  # the same database and pepper `up` will use
        [modelyard_bin(), "keys", "create", "--name", "security-live"],
        env={**defaults, **os.environ},
        capture_output=True,
        timeout=120,
        check=True,
    )
    (key,) = created.stdout.decode().split()
    marker = f"marker-{uuid.uuid4().hex}"
    prompt = f"Repeat after me: {marker}"
    base, admin = f"https://127.0.0.1:{port}", f"https://127.0.0.1:{admin_port}"
    trusted = ssl.create_default_context(cafile=pki.ca)
    completions: list[str] = []
    up = UpProcess(["--config", str(config), "--port", str(port)], env_defaults=defaults | logged)
    try:
        assert up.read_until(READY_LINE, READY_TIMEOUT_S), up.tail()
        assert f"modelyard is ready at {base}/api/v1" in "\n".join(up.seen)
        sessions = [line.split(": ", 1)[1] for line in up.seen if line.startswith("Ray session")]
        (session,) = sessions
        with httpx.Client(verify=trusted, timeout=30) as http:
            sdk = openai.OpenAI(base_url=f"{base}/v1", api_key=key, http_client=http, max_retries=0)
            chat = sdk.chat.completions.create(
                model=MISTRAL, messages=[{"role": "user", "content": prompt}], max_tokens=32
            )
            completions.append(chat.choices[0].message.content or "")
            stream = sdk.chat.completions.create(
                model=MISTRAL,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=32,
                stream=True,
            )
            completions.append(
                "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            )
            text = sdk.completions.create(model=MISTRAL, prompt=prompt, max_tokens=32)
            completions.append(text.choices[0].text)
            auth = {"authorization": f"Bearer {key}"}
            assert http.get(f"{base}/api/v1/key", headers=auth).status_code == 200
            for path in ("/metrics", "/api/v1/usage"):
                assert http.get(f"{base}{path}", headers=auth).status_code == 404, path
                assert http.get(f"{admin}{path}", headers=auth).status_code == 200, path
            metrics = http.get(f"{admin}/metrics").text
            assert "modelyard_requests_total" in metrics
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        completions.append(_grpc_answer(pki.ca.read_bytes(), f"127.0.0.1:{grpc_port}", key, prompt))
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(timeout=STOP_TIMEOUT_S) == 0, up.tail()
    finally:
        up.kill()
    assert all(len(c) >= 20 for c in completions), completions
    searched = {"modelyard up output": "\n".join(up.seen), "/metrics": metrics}
    searched |= _log_texts(Path(session))
    debug = [where for where, text in searched.items() if re.search(r"(^|\s)DEBUG\s", text, re.M)]
    assert any("replica_modelyard_gateway" in where for where in debug), sorted(searched)
    # The gateway's own loggers (cluster.*) reach the replica log (deployments.replica_logging).
    gateway_logs = [t for w, t in searched.items() if "replica_modelyard_gateway" in w]
    assert any("admin routes listening on https://" in t for t in gateway_logs), gateway_logs
    assert any("gRPC API listening" in t for t in gateway_logs), gateway_logs
    secrets = {"key": key, "prompt marker": marker}
    secrets |= {f"completion {i}": c for i, c in enumerate(completions)}
    leaks = [
        f"{what} found in {where}"
        for where, text in searched.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not leaks, leaks
    size = sum(len(t) for t in searched.values())
    print(f"searched {len(searched)} texts, {size} characters, DEBUG lines in {len(debug)}")
    assert len(searched) > 10, sorted(searched)  # Ray's logs were there to search


def _grpc_answer(ca: bytes, target: str, key: str, prompt: str) -> str:
    import asyncio

    async def ask() -> str:
        channel = grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca))
        async with ModelyardClient(target, api_key=key, channel=channel) as client:
            request = ChatRequest(model=MISTRAL, messages=[user(prompt)], max_tokens=32)
            answer = await client.chat_unary(request, deadline_s=30)
            return str(answer.choices[0].message.content)

    return asyncio.run(ask())
