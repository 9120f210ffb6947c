"""vLLM's OpenAI stream events (SSE `data:` lines, one choice) -> `EngineChunk`s.

vLLM sends: a role chunk (no content), content chunks (`delta.content`, `delta.reasoning`
or `delta.tool_calls` for chat; `text` for completions), one chunk with `finish_reason`
(it may carry the last piece of content), then a usage-only chunk, then `[DONE]`.

The engine contract wants every chunk before the last without `finish_reason`/`usage` and
the last with both, so the finishing chunk is held back and merged with the usage that
follows it. Chunks without content are dropped. vLLM's `finish_reason`:

    stop / length / tool_calls -> the same;  abort -> the stream ends without a final
    chunk (`aborted`);  error -> EngineUnavailable;  anything else -> stop.

`usage.prompt_tokens_details.cached_tokens` (vLLM's prefix-cache hit, whole blocks) becomes
`Usage.cached_tokens`.

Log-probabilities, when asked for, arrive per chunk in two shapes, both read into
`TokenLogprob`s: chat's `logprobs.content[i]` ({token, logprob, bytes, top_logprobs}), and
completions' parallel lists `logprobs.tokens` / `token_logprobs` / `top_logprobs` ({token:
logprob} per position).
"""

from __future__ import annotations

import json
from typing import Any

from cluster.engine import EngineChunk, ToolCallDelta, Usage
from cluster.engine.types import FinishReason, TokenLogprob, TopLogprob
from cluster.errors import EngineUnavailable, ModelyardError
from deployments.engines.vllm.errors import error_from_event

DONE = "[DONE]"
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def parse_event(line: str) -> dict[str, Any] | None:
    """One SSE message (`data: {...}` plus blank lines) -> its JSON; None for `[DONE]`."""
    payload = line.strip()
    if payload.startswith("data:"):
        payload = payload[len("data:") :].strip()
    if not payload or payload == DONE:
        return None
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as err:
        raise ModelyardError(f"vLLM sent an event that is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ModelyardError("vLLM sent an event that is not a JSON object")
    return data


def _tool_calls(raw: object) -> list[ToolCallDelta]:
    calls = []
    for item in raw if isinstance(raw, list) else []:
        function = item.get("function") or {}
        calls.append(
            ToolCallDelta(
                index=int(item.get("index", 0)),
                id=item.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    return calls


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else -9999.0


def _bytes(value: object) -> list[int] | None:
    return [int(b) for b in value] if isinstance(value, list) else None


def _chat_logprobs(raw: dict[str, Any]) -> list[TokenLogprob]:
    out = []
    for item in raw.get("content") or []:
        top = [
            TopLogprob(
                token=str(alt.get("token", "")),
                logprob=_number(alt.get("logprob")),
                bytes=_bytes(alt.get("bytes")),
            )
            for alt in item.get("top_logprobs") or []
        ]
        out.append(
            TokenLogprob(
                token=str(item.get("token", "")),
                logprob=_number(item.get("logprob")),
                bytes=_bytes(item.get("bytes")),
                top_logprobs=top,
            )
        )
    return out


def _completion_logprobs(raw: dict[str, Any]) -> list[TokenLogprob]:
    tokens = raw.get("tokens") or []
    values = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or []
    out = []
    for i, token in enumerate(tokens):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        out.append(
            TokenLogprob(
                token=str(token),
                logprob=_number(values[i] if i < len(values) else None),
                top_logprobs=[TopLogprob(token=str(t), logprob=_number(v)) for t, v in top.items()],
            )
        )
    return out


def logprobs_of(choice: dict[str, Any]) -> list[TokenLogprob]:
    """A choice's `logprobs` (either shape) as `TokenLogprob`s; [] when absent."""
    raw = choice.get("logprobs")
    if not isinstance(raw, dict):
        return []
    return _chat_logprobs(raw) if "content" in raw else _completion_logprobs(raw)


class StreamMapper:
    """Stateful mapping of one request's events; `feed` per event, `finish` at the end."""

    def __init__(self, *, replica_id: str, prompt_param: str) -> None:
        self.replica_id = replica_id
        self.prompt_param = prompt_param
        self.aborted = False
        self._named_first = False
        self._held: EngineChunk | None = None
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def _stamp(self, chunk: EngineChunk) -> EngineChunk:
        if not self._named_first:
            self._named_first = True
            return chunk.model_copy(update={"replica_id": self.replica_id})
        return chunk

    def feed(self, line: str) -> list[EngineChunk]:
        """Chunks ready to yield for one event; raises the typed error of an error event."""
        data = parse_event(line)
        if data is None:
            return []
        if "error" in data and "choices" not in data:
            raise error_from_event(data, prompt_param=self.prompt_param)
        if isinstance(data.get("usage"), dict) and not data.get("choices"):
            self._usage = Usage.from_openai(data["usage"])
            return []
        out: list[EngineChunk] = []
        for choice in data.get("choices") or []:
            delta = choice.get("delta")
            if isinstance(delta, dict):  # chat
                chunk = EngineChunk(
                    text=delta.get("content") or "",
                    reasoning=delta.get("reasoning") or delta.get("reasoning_content") or "",
                    tool_calls=_tool_calls(delta.get("tool_calls")),
                )
            else:  # completion
                chunk = EngineChunk(text=choice.get("text") or "")
            logprobs = logprobs_of(choice)
            if logprobs:
                chunk = chunk.model_copy(update={"logprobs": logprobs})
            reason = choice.get("finish_reason")
            if reason is not None:
                if reason == "abort":
                    self.aborted = True
                elif reason == "error":
                    raise EngineUnavailable("vLLM failed while generating this request")
                self._finish = _FINISH.get(reason, "stop")
                self._held = chunk
            elif chunk.text or chunk.reasoning or chunk.tool_calls or chunk.logprobs:
                out.append(self._stamp(chunk))
        return out

    def finish(self) -> EngineChunk | None:
        """The final chunk (held content + finish_reason + usage); None if aborted."""
        if self.aborted:
            return None
        if self._finish is None or self._usage is None:
            raise EngineUnavailable("the vLLM stream ended without a finish reason and usage")
        held = self._held or EngineChunk()
        final = held.model_copy(update={"finish_reason": self._finish, "usage": self._usage})
        return self._stamp(final)
