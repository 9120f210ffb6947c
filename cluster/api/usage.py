"""Token counts and finish reasons: the words the API and the engine contract share.

They live in `cluster.api` (the lowest layer of request/response types) so that
`cluster.engine.types` can use them without `cluster.api.responses` importing the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["stop", "length", "tool_calls"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_Strict):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, raw: Mapping[str, Any]) -> Usage:
        """Read an OpenAI `usage` object (as vLLM's server and ours send it)."""
        details = raw.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(raw.get("prompt_tokens", 0)),
            completion_tokens=int(raw.get("completion_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens") or 0),
        )
