"""vLLM's OpenAI serving layer, built in-process around one `AsyncLLM`.

We reuse, not reimplement: chat templates and tokenisation (`OnlineRenderer`), tool-call
parsers and structured output for a named `tool_choice` (the parser's `adjust_request`),
`prompt_tokens_details.cached_tokens`, LoRA lookup (`OpenAIServingModels`) — exactly the
objects `vllm serve` builds, minus the HTTP server.

One rule is added on top: a request whose prompt plus `max_tokens` does not fit the
context window is refused with `ContextLengthExceeded` (vLLM would silently shorten
`max_tokens` to what is left; the simulator and our API refuse it). The check runs after
vLLM has rendered and tokenised the prompt, so the count is the engine's own.
"""

from __future__ import annotations

from typing import Any

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.entrypoints.openai.completion.protocol import CompletionRequest
from vllm.entrypoints.openai.completion.serving import OpenAIServingCompletion
from vllm.entrypoints.openai.models.protocol import BaseModelPath
from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.inputs import EngineInput
from vllm.renderers.chat_utils import ConversationMessage, load_chat_template
from vllm.renderers.online_renderer import OnlineRenderer
from vllm.v1.engine.async_llm import AsyncLLM

from cluster.config.catalog import CORE_TOOL_PARSERS
from cluster.config.vllm_args import VLLMServingArgs
from cluster.errors import ConfigError, ContextLengthExceeded


def check_tool_parser(args: VLLMServingArgs, *, model_id: str) -> None:
    """Fail before the engine starts if the installed vLLM has no such tool parser."""
    from vllm import __version__
    from vllm.tool_parsers import ToolParserManager

    name = args.tool_call_parser
    if name is None:
        return
    known = ToolParserManager.list_registered()
    if name not in known:
        raise ConfigError(
            f"catalog[{model_id}].tool_parser: {name!r} is not a tool parser of the installed "
            f"vLLM {__version__} (known: {', '.join(sorted(known))}) nor one modelyard "
            f"parses itself ({', '.join(sorted(CORE_TOOL_PARSERS))})",
            param="tool_parser",
        )


def check_window(prompt_tokens: int, max_tokens: int | None, window: int, *, param: str) -> None:
    """Refuse prompt + max_tokens > window (and a prompt that leaves no room for a token)."""
    wanted = max_tokens if max_tokens is not None else 1
    if prompt_tokens + wanted > window:
        asked = f" plus max_tokens {max_tokens}" if max_tokens is not None else ""
        raise ContextLengthExceeded(
            f"This model's maximum context length is {window} tokens; the prompt has "
            f"{prompt_tokens} tokens{asked} ({prompt_tokens + wanted} in all). Shorten the "
            "prompt or lower max_tokens.",
            param=param,
        )


def _prompt_len(engine_input: EngineInput) -> int:
    token_ids: Any = engine_input.get("prompt_token_ids") or []
    return len(token_ids)


class ServingChat(OpenAIServingChat):
    async def render_chat_request(
        self, request: ChatCompletionRequest
    ) -> tuple[list[ConversationMessage], list[EngineInput]] | ErrorResponse:
        result = await super().render_chat_request(request)
        if isinstance(result, ErrorResponse):
            return result
        max_tokens = request.max_completion_tokens or request.max_tokens
        for engine_input in result[1]:
            check_window(
                _prompt_len(engine_input),
                max_tokens,
                self.model_config.max_model_len,
                param="messages",
            )
        return result


class ServingCompletion(OpenAIServingCompletion):
    async def render_completion_request(
        self, request: CompletionRequest
    ) -> list[EngineInput] | ErrorResponse:
        result = await super().render_completion_request(request)
        if isinstance(result, ErrorResponse):
            return result
        for engine_input in result:
            check_window(
                _prompt_len(engine_input),
                request.max_tokens,
                self.model_config.max_model_len,
                param="prompt",
            )
        return result


class ServingLayer:
    """The serving objects of one engine (what `vllm serve`'s app state holds)."""

    def __init__(self, llm: AsyncLLM, args: VLLMServingArgs, *, model_path: str) -> None:
        self.models = OpenAIServingModels(
            engine_client=llm,
            base_model_paths=[BaseModelPath(name=args.served_model_name, model_path=model_path)],
        )
        template = load_chat_template(args.chat_template)
        self.renderer = OnlineRenderer(
            llm.model_config,
            llm.renderer,
            request_logger=None,
            chat_template=template,
            chat_template_content_format="auto",
            enable_auto_tools=args.enable_auto_tool_choice,
            tool_parser=args.tool_call_parser,
            reasoning_parser=args.reasoning_parser,
            tool_strict_level=args.tool_strict_level,
        )
        self.chat = ServingChat(
            llm,
            self.models,
            "assistant",
            online_renderer=self.renderer,
            request_logger=None,
            chat_template=template,
            chat_template_content_format="auto",
            enable_auto_tools=args.enable_auto_tool_choice,
            tool_parser=args.tool_call_parser,
            tool_strict_level=args.tool_strict_level,
            reasoning_parser=args.reasoning_parser or "",
            enable_prompt_tokens_details=args.enable_prompt_tokens_details,
        )
        self.completion = ServingCompletion(
            llm,
            self.models,
            online_renderer=self.renderer,
            request_logger=None,
            enable_prompt_tokens_details=args.enable_prompt_tokens_details,
        )
