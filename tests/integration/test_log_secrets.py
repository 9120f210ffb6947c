"""No key, prompt or completion in the logs or metrics of a full run (issue 15, item 5).

`modelyard sim serve --auth keys --log-level debug` runs as a real process (every logger of
the process at DEBUG, on its stdout/stderr, which go to one file), with the ledger in a
SQLite file and the admin listener on. A managed key is created with `modelyard keys create`;
requests carry a unique marker in their prompts: chat whole and streamed, a completion, the
caller's /key and /generation, a request with a wrong key (401) and an invalid one whose
bad value holds the marker (400). Then the process's log, the key command's stderr and the
/metrics text are searched for the key, the wrong key, the marker and every completion
text: none may appear. There is no setting that logs prompts (so nothing to turn off).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from bench.processes import ManagedProcess, free_port, wait_http_ok
from bench.thirdparty import modelyard_bin

pytestmark = pytest.mark.integration

QWEN = "qwen/qwen3-coder-flash"
PEPPER = "log-secrets-test-pepper-0123456789abcdef"
READY_S = 60.0


def create_key(env: dict[str, str], log: Path) -> str:
    argv = [modelyard_bin(), "keys", "create", "--name", "log-secrets"]
    with log.open("wb") as stderr:
        done = subprocess.run(
            argv, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=120, check=True
        )
    lines = done.stdout.decode().split()
    assert len(lines) == 1, lines
    return lines[0]


def test_no_key_prompt_or_completion_in_logs_or_metrics(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "MODELYARD_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "MODELYARD_KEY_PEPPER": PEPPER,
    }
    key = create_key(env, tmp_path / "keys.log")
    wrong_key = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    marker = f"marker-{uuid.uuid4().hex}"
    port, admin = free_port(), free_port()
    argv = [
        modelyard_bin(), "sim", "serve", "--auth", "keys", "--log-level", "debug",
        "--port", str(port), "--admin-port", str(admin), "--speedup", "50",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    completions: list[str] = []
    with ManagedProcess(argv, tmp_path / "sim-serve.log", env=env) as proc:
        wait_http_ok(f"{base}/health", timeout_s=READY_S, process=proc)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, timeout=30, max_retries=0)
        prompt = f"Repeat after me: {marker}"
        chat = client.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": prompt}], max_tokens=32
        )
        completions.append(chat.choices[0].message.content or "")
        stream = client.chat.completions.create(
            model=QWEN,
            messages=[{"role": "system", "content": marker}, {"role": "user", "content": prompt}],
            max_tokens=32,
            stream=True,
        )
        completions.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        text = client.completions.create(model=QWEN, prompt=prompt, max_tokens=32)
        completions.append(text.choices[0].text)
        auth = {"authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/api/v1/key", headers=auth).status_code == 200
        generation = httpx.get(f"{base}/api/v1/generation?id={chat.id}", headers=auth)
        assert generation.status_code == 200
        bad_key = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"authorization": f"Bearer {wrong_key}"},
            json={"model": QWEN, "messages": [{"role": "user", "content": prompt}]},
        )
        assert bad_key.status_code == 401
        invalid = httpx.post(
            f"{base}/v1/chat/completions",
            headers=auth,
            json={"model": QWEN, "messages": [{"role": marker, "content": prompt}]},
        )
        assert invalid.status_code == 400
        metrics = httpx.get(f"http://127.0.0.1:{admin}/metrics").text
        assert "modelyard_requests_total" in metrics
    logs = {
        "sim serve stdout/stderr": (tmp_path / "sim-serve.log").read_text("utf-8", "replace"),
        "keys create stderr": (tmp_path / "keys.log").read_text("utf-8", "replace"),
        "/metrics": metrics,
    }
    # The run was logged at DEBUG (so the search below had something to search).
    assert " DEBUG " in logs["sim serve stdout/stderr"], logs["sim serve stdout/stderr"][-2000:]
    assert all(len(c) >= 20 for c in completions), completions
    secrets = {"key": key, "wrong key": wrong_key, "prompt marker": marker}
    secrets |= {f"completion {i}": c for i, c in enumerate(completions)}
    leaks = [
        f"{what} found in {where}"
        for where, text in logs.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not leaks, leaks
    sizes = {where: len(text) for where, text in logs.items()}
    print(f"searched (characters): {sizes}", file=sys.stderr)  # for the record (pytest -s)
