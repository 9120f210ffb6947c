"""A request's prompt token ids as vLLM's OpenAI serving layer computes them, router-side.

The replica's engine (`deployments.engines.vllm`) turns an `EngineRequest` into vLLM's
`ChatCompletionRequest` / `CompletionRequest` (`deployments.engines.vllm.requests`) and
hands it to `OpenAIServingChat` / `OpenAIServingCompletion`, whose `OnlineRenderer`
renders and tokenises it. `VLLMPromptRenderer` repeats those steps in the router's process
with the same vLLM functions, the same arguments and the same tokenizer, so the token ids
(and so the block hashes) are the engine's own:

chat (`OnlineRenderer.render_chat` → `preprocess_chat` → `BaseRenderer.render_chat`):
    request    = chat_request(engine request)                       (the engine's builder)
    mistral    : maybe_serialize_tool_calls, truncate_tool_call_ids (vLLM's own fix-ups)
    tools      = [tool.model_dump() for tool in request.tools]       (None without tools)
    chat_params= request.build_chat_params(serving chat_template, "auto")
                   .with_defaults({tools, tokenize: is_mistral})
    hf         : conversation = parse_chat_messages(messages, content format resolved by
                 `resolve_chat_template_content_format`);
                 text = safe_apply_chat_template(conversation, **chat kwargs)
    mistral    : ids  = mistral safe_apply_chat_template(messages, **chat kwargs)
    text → ids : request.build_tok_params(model_config) (add_special_tokens=False for
                 chat), `apply_pre_tokenization`, tokenizer(text, **encode kwargs),
                 `apply_post_tokenization` — BaseRenderer's `_tokenize_singleton_prompt`
completion (`render_completion` → `preprocess_cmpl` → `BaseRenderer.render_cmpl`):
    the prompt text, tokenised with the completion request's tok params
    (add_special_tokens=True: a BOS where the tokenizer adds one).

The model is loaded the way the engine loads it: `resolve_model_path` (deployment
`vllm.model_path` > model cache > catalog weights) and `vllm_config_for`, then vLLM's
`ModelConfig` (config only: no weights, no device, no quantization check, no `VllmConfig`,
whose platform hooks would rewrite this process's environment) and
`cached_tokenizer_from_config`. Only the `hf` and `mistral` renderers are reproduced;
other renderer modes fail at load.
Multimodal content and GPT-OSS (harmony) prompts raise `NotRenderable`: the hasher then
places the request by provisional hashes only.

Imports vLLM (seconds): build it off the router's event loop (`vllm_tokens.RendererLoader`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cluster.config.settings import ServedModel
from cluster.config.vllm_args import VLLMConfig
from cluster.config.vllm_config import vllm_config_for
from cluster.engine import EngineRequest
from deployments.routing.vllm_segments import SegmentCuts


class NotRenderable(ValueError):
    """This request (or model) cannot be rendered router-side; hash it provisionally.

    Internal to routing: the hasher catches it (and any other rendering error) and falls
    back; it never reaches a client.
    """


class VLLMPromptRenderer:
    def __init__(self, config: VLLMConfig) -> None:
        from vllm.config import ModelConfig
        from vllm.renderers import TokenizeParams
        from vllm.renderers.chat_utils import load_chat_template
        from vllm.tokenizers.registry import (
            cached_tokenizer_from_config,
            tokenizer_args_from_config,
        )
        from vllm.utils.mistral import is_mistral_tokenizer

        engine = config.engine
        self.config = config
        self.model_config = ModelConfig(
            model=engine.model,
            tokenizer_mode=engine.tokenizer_mode,
            config_format=engine.config_format,
            trust_remote_code=engine.trust_remote_code,
            max_model_len=engine.max_model_len,
            served_model_name=engine.served_model_name,
            seed=engine.seed,
            # No weights are read here: a quantization method this (gateway) platform
            # lacks must not stop the tokenizer from loading.
            hf_overrides={"quantization_config": None},
        )
        mode = tokenizer_args_from_config(self.model_config)[0]
        if mode not in ("hf", "mistral"):
            raise NotRenderable(f"vLLM renderer mode {mode!r} is not reproduced router-side")
        if self.model_config.hf_config.model_type == "gpt_oss":
            raise NotRenderable("GPT-OSS prompts are rendered with harmony")
        self.tokenizer: Any = cached_tokenizer_from_config(self.model_config)
        if self.tokenizer is None:
            raise NotRenderable("the model has no tokenizer")
        self.mistral = bool(is_mistral_tokenizer(self.tokenizer))
        self.chat_template = load_chat_template(config.serving.chat_template)
        self._chat_encode = TokenizeParams(
            max_total_tokens=self.model_config.max_model_len, add_special_tokens=False
        ).get_encode_kwargs()
        self.cuts = self._cuts()

    @classmethod
    def for_model(
        cls, model: ServedModel, *, environ: Mapping[str, str] | None = None
    ) -> VLLMPromptRenderer:
        """Load `model` from where its engine would (`resolve_model_path`, this process's
        environment for the model cache)."""
        from cluster.models.cache import ModelCache
        from deployments.engines.vllm.engine import resolve_model_path

        cache = ModelCache.from_env(os.environ if environ is None else environ)
        path = resolve_model_path(model, cache)
        return cls(vllm_config_for(model, model_path=path))

    def _cuts(self) -> SegmentCuts | None:
        """Where chat text may be cut for reuse (`vllm_segments`), checked on a sample."""
        if self.mistral:
            return None
        sample = EngineRequest.model_validate(
            {
                "request_id": "cuts-sample",
                "model": self.config.serving.served_model_name,
                "messages": [
                    {"role": "system", "content": "You answer briefly."},
                    {"role": "user", "content": "Hello there, what is the weather?"},
                    {"role": "assistant", "content": "Sunny and 21 degrees, with light wind."},
                    {"role": "user", "content": "And tomorrow in Paris?"},
                ],
            }
        )
        try:
            text = self.chat_text(sample)
        except Exception:  # a template that refuses this sample: no reuse, still exact
            return None
        return (
            None if text is None else SegmentCuts.for_tokenizer(self.tokenizer, self.encode, text)
        )

    # ---- the two request kinds ----------------------------------------------------------

    def prompt_ids(self, request: EngineRequest) -> list[int]:
        if request.messages is not None:
            return self.chat_ids(request)
        return self.completion_ids(request)

    def chat_ids(self, request: EngineRequest) -> list[int]:
        chat, params, tok_params = self._chat(request)
        if self.mistral:
            return self._mistral_chat(chat.messages, params)
        return self._tokenize(self._hf_chat_text(chat.messages, params), tok_params)

    def chat_text(self, request: EngineRequest) -> str | None:
        """The rendered chat prompt before tokenisation (None where the tokenizer renders
        token ids itself: Mistral). `encode(chat_text(r)) == chat_ids(r)`."""
        if self.mistral:
            return None
        chat, params, tok_params = self._chat(request)
        text = self._hf_chat_text(chat.messages, params)
        prompt = tok_params.apply_pre_tokenization(self.tokenizer, {"prompt": text})
        return str(prompt["prompt"])

    def encode(self, text: str) -> list[int]:
        """Tokenise chat text (or a piece of it) as vLLM tokenises chat prompts."""
        return list(self.tokenizer(text, **self._chat_encode)["input_ids"])

    def _chat(self, request: EngineRequest) -> tuple[Any, Any, Any]:
        """vLLM's chat request, chat params and tokenise params, as the engine builds them."""
        from vllm.renderers import merge_kwargs
        from vllm.tokenizers import mistral as mt

        from deployments.engines.vllm.requests import chat_request

        serving = self.config.serving
        chat = chat_request(
            request,
            model_name=serving.served_model_name,
            core_tool_parser=serving.core_tool_parser,
        )
        if self.mistral:
            # vLLM's own fix-ups (OnlineRenderer.render_chat), typed for its request there too
            mt.maybe_serialize_tool_calls(chat)  # type: ignore[arg-type]
            mt.truncate_tool_call_ids(chat)  # type: ignore[arg-type]
            mt.validate_request_params(chat)
        tools = None if chat.tools is None else [tool.model_dump() for tool in chat.tools]
        params = chat.build_chat_params(self.chat_template, "auto").with_defaults(
            merge_kwargs(None, {"tools": tools, "tokenize": self.mistral}),
            default_mm_processor_kwargs=getattr(chat, "mm_processor_kwargs", None),
        )
        return chat, params, chat.build_tok_params(self.model_config)

    def completion_ids(self, request: EngineRequest) -> list[int]:
        from deployments.engines.vllm.requests import completion_request

        if request.prompt_token_ids is not None:  # vLLM takes them as they are
            return list(request.prompt_token_ids)
        completion = completion_request(request, model_name=self.config.serving.served_model_name)
        if not isinstance(completion.prompt, str):
            raise NotRenderable("only text prompts are rendered router-side")
        return self._tokenize(completion.prompt, completion.build_tok_params(self.model_config))

    # ---- steps ----------------------------------------------------------------------------

    def _hf_chat_text(self, messages: list[Any], params: Any) -> str:
        """`HfRenderer.render_messages` for text-only conversations."""
        from vllm.renderers.chat_utils import parse_chat_messages
        from vllm.renderers.hf import (
            resolve_chat_template_content_format,
            safe_apply_chat_template,
        )

        content_format = resolve_chat_template_content_format(
            chat_template=params.chat_template,
            tools=params.chat_template_kwargs.get("tools"),
            given_format=params.chat_template_content_format,
            tokenizer=self.tokenizer,
            model_config=self.model_config,
        )
        conversation, mm_data, _ = parse_chat_messages(
            messages,
            self.model_config,
            content_format=content_format,
            media_io_kwargs=params.media_io_kwargs,
            mm_processor_kwargs=params.mm_processor_kwargs,
        )
        if mm_data is not None:
            raise NotRenderable("multimodal content")
        text = safe_apply_chat_template(
            self.model_config,
            self.tokenizer,
            conversation,
            **params.get_apply_chat_template_kwargs(),
        )
        if not isinstance(text, str):
            raise NotRenderable("the chat template did not render text")
        return text

    def _mistral_chat(self, messages: list[Any], params: Any) -> list[int]:
        """`MistralRenderer.render_messages`: mistral-common renders and tokenises."""
        from vllm.renderers.mistral import safe_apply_chat_template

        ids = safe_apply_chat_template(
            self.tokenizer, messages, **params.get_apply_chat_template_kwargs()
        )
        if not isinstance(ids, list):
            raise NotRenderable("the Mistral tokenizer did not return token ids")
        return [int(i) for i in ids]

    def _tokenize(self, text: str, tok_params: Any) -> list[int]:
        """`BaseRenderer._tokenize_singleton_prompt` for one text prompt."""
        prompt = tok_params.apply_pre_tokenization(self.tokenizer, {"prompt": text})
        encoding = self.tokenizer(prompt["prompt"], **tok_params.get_encode_kwargs())
        tokens = tok_params.apply_post_tokenization(
            self.tokenizer, {"prompt_token_ids": encoding["input_ids"]}
        )
        return list(tokens["prompt_token_ids"])
