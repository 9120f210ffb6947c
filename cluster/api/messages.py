"""Chat messages and tools, validated by the rules of the Mistral Small provider card.

Roles are system / user / assistant / tool. Content is a string or a list of text parts; a
user message's list may also hold media parts (`image_url`, `input_audio`, `file`, and
vLLM's `audio_url` / `video_url`), typed here so a refusal can name the exact field; the
core refuses them unless configured (`cluster.gateway.service.media`).
A tool message needs `tool_call_id`; an assistant message needs `content` or `tool_calls`.
`ResponseFormat` (text / json_object / json_schema) constrains what the model may answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class MediaUrl(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrlPart(_Strict):
    type: Literal["image_url"]
    image_url: MediaUrl


class AudioUrlPart(_Strict):
    type: Literal["audio_url"]
    audio_url: MediaUrl


class VideoUrlPart(_Strict):
    type: Literal["video_url"]
    video_url: MediaUrl


class InputAudio(_Strict):
    data: str = Field(description="base64-encoded audio")
    format: str = Field(min_length=1)


class InputAudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Strict):
    file_data: str | None = Field(default=None, description="a data: URL or base64 data")
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Strict):
    type: Literal["file"]
    file: FileRef


MediaPart = ImageUrlPart | AudioUrlPart | VideoUrlPart | InputAudioPart | FilePart
UserPart = Annotated[TextPart | MediaPart, Field(discriminator="type")]

Content = str | list[TextPart]
UserContent = str | list[UserPart]


def content_text(content: Content | UserContent | None) -> str:
    """The text of a message (media parts carry none)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


class FunctionCall(_Strict):
    name: str = Field(min_length=1)
    arguments: str = Field(description="JSON-encoded arguments, as the OpenAI API sends them")


class ToolCall(_Strict):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Strict):
    role: Literal["system"]
    content: Content
    name: str | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: UserContent
    name: str | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    # Accepted on input so multi-turn reasoning transcripts can be sent back as they came.
    reasoning_content: str | None = None
    prefix: bool | None = None

    @model_validator(mode="after")
    def _content_or_tool_calls(self) -> AssistantMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs 'content' or 'tool_calls'")
        return self


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(min_length=1)
    name: str | None = None


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Strict):
    name: str = Field(min_length=1)


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    """`text` (default), `json_object`, or `json_schema` (which then needs `json_schema`)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_iff_json_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a 'json_schema' object")
        if self.type != "json_schema" and self.json_schema is not None:
            raise ValueError("'json_schema' is only allowed with type 'json_schema'")
        return self
