"""What every answer of the gateway must be, whatever the request."""

from __future__ import annotations

import json
from typing import Any

import httpx

from cluster.gateway.http.sse import parse_events

ERROR_KEYS = {"message", "type", "param", "code"}


def check_answer(response: httpx.Response) -> None:
    """2xx, or a 4xx with OpenAI's error object; never a 5xx. A stream ends with [DONE]
    and carries no error event (an error after the first chunk would be a failure)."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    if status >= 400:
        error = response.json()["error"]
        assert set(error) == ERROR_KEYS, error
        assert isinstance(error["message"], str) and error["message"]
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = parse_events(response.content)
        assert events and events[-1] == "[DONE]", response.text[-300:]
        for event in events[:-1]:
            data: Any = json.loads(event)
            assert "error" not in data, data
        return
    body = response.json()
    assert isinstance(body, dict)
