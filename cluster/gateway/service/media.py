"""Media in chat messages: refused unless the operator allows where it comes from.

    allowed(part) = any(url(part).startswith(p) for p in gateway.allowed_media_url_prefixes)

A user message's content parts may point at media: `image_url.url`, `audio_url.url`,
`video_url.url` (vLLM's), `input_audio.data` (inline base64, matched as
`data:audio/<format>;base64,…`), `file.file_data` (a `data:` URL as sent; bare base64 is
matched as `data:application/octet-stream;base64,…`) and `file.file_id` (a reference to an
uploaded file; there is no files API, so always refused). Every part that is not allowed
gets 400 naming its exact field (`messages[1].content[0].image_url.url`); with no prefix
configured (the default) every media part is refused.

The gateway never fetches a URL itself: an allowed part goes to the engine as sent. vLLM
then loads it for a multimodal model (and fetches an allowed http(s) URL from inside the
cluster, which is why the list is the operator's decision); the simulator counts text only.
`data:` URLs are matched like any other URL: allow `data:` (or `data:image/`) to accept
inline media. Checked by the core before any engine request, so both front doors refuse
alike (the gRPC API carries text content only, so it never has media parts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cluster.api.messages import (
    AudioUrlPart,
    FilePart,
    ImageUrlPart,
    InputAudioPart,
    TextPart,
    UserMessage,
    UserPart,
    VideoUrlPart,
)
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.errors import InvalidRequest

OCTET_STREAM = "data:application/octet-stream;base64,"


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One media reference: where it is in the request and the URL it is matched as."""

    param: str
    url: str | None  # None: can never be allowed (a file id)


def part_refs(part: UserPart, at: str) -> Iterator[MediaRef]:
    """The media references of one content part at path `at` (none for text)."""
    if isinstance(part, TextPart):
        return
    if isinstance(part, ImageUrlPart):
        yield MediaRef(f"{at}.image_url.url", part.image_url.url)
    elif isinstance(part, AudioUrlPart):
        yield MediaRef(f"{at}.audio_url.url", part.audio_url.url)
    elif isinstance(part, VideoUrlPart):
        yield MediaRef(f"{at}.video_url.url", part.video_url.url)
    elif isinstance(part, InputAudioPart):
        audio = part.input_audio
        yield MediaRef(f"{at}.input_audio.data", f"data:audio/{audio.format};base64,{audio.data}")
    elif isinstance(part, FilePart):
        if part.file.file_id is not None:
            yield MediaRef(f"{at}.file.file_id", None)
        if part.file.file_data is not None:
            data = part.file.file_data
            url = data if data.startswith("data:") else OCTET_STREAM + data
            yield MediaRef(f"{at}.file.file_data", url)


def media_refs(request: ChatCompletionRequest) -> Iterator[MediaRef]:
    for i, message in enumerate(request.messages):
        if isinstance(message, UserMessage) and not isinstance(message.content, str):
            for j, part in enumerate(message.content):
                yield from part_refs(part, f"messages[{i}].content[{j}]")


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    allowed_prefixes: tuple[str, ...] = ()

    def allows(self, url: str | None) -> bool:
        return url is not None and url.startswith(self.allowed_prefixes)

    def check(self, request: ChatCompletionRequest | CompletionRequest) -> None:
        """Raise `InvalidRequest` for the first media reference that is not allowed."""
        if isinstance(request, CompletionRequest):
            return
        for ref in media_refs(request):
            if self.allows(ref.url):
                continue
            if ref.url is None:
                why = "file ids are not supported (there is no files API)"
            elif not self.allowed_prefixes:
                why = "media URLs are not accepted by this gateway"
            else:
                why = "the URL does not start with an allowed prefix"
            raise InvalidRequest(
                f"Invalid value for '{ref.param}': {why} (gateway.allowed_media_url_prefixes).",
                param=ref.param,
            )
