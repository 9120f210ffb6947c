"""Build a tiny random Llama, its tokenizer and a LoRA adapter for it, offline, at test time.

The model is deliberately useless and fast to load on vLLM CPU: hidden 64, 2 layers,
head_dim 32 (vLLM's CPU attention needs head size >= 32). Nothing is downloaded: the
tokenizer is a byte-level BPE trained here on a few generated sentences, so every input
string tokenizes, and the chat template is ChatML.

Its weights are random except for one planted preference, so that structured output can
finish: hidden dimension 0 of every token embedding is a large constant (it survives two
small random layers and RMSNorm), and the output head reads that dimension for two tokens
only, `"` (strongly) and `}` (less). Free text is then a run of quotes that ends at
`max_tokens` (never EOS); under a JSON schema the quote closes each string as soon as the
grammar allows and `}` closes the object, so a named tool call's arguments are complete,
schema-valid JSON within a few dozen tokens. Tests never look at the text itself.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] or '' }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]
VOCAB_SIZE = 512
HIDDEN = 64
LAYERS = 2
HEADS = 2
KV_HEADS = 1
HEAD_DIM = 32
MAX_LEN = 1024
LORA_RANK = 8
PLANTED = 12.0  # embedding dim 0 of every token
PREFERRED = {'"': 4.0, "}": 2.5}  # output-head weight on dim 0: quote first, then brace


CORPUS_WORDS = (
    "item value reference first second hello say something tell a story count from one "
    "to hundred write at length go on request number hi what is the in "
    "the quick brown fox jumps over a lazy dog while cluster routers place every request "
    "on replicas whose cache holds its prefix and engines stream tokens back to clients "
    "weather city paris london tokyo temperature celsius fahrenheit unit days tool call "
    "arguments json value"
)


def _corpus() -> list[str]:
    words = CORPUS_WORDS.split()
    lines = []
    for i in range(400):
        picked = [words[(i * 7 + j * 13) % len(words)] for j in range(12)]
        lines.append(" ".join(picked) + f' {{"city": "{picked[0]}", "n": {i}}}.')
        lines.append(" ".join(f"item{(i + j) % 97} value" for j in range(8)))
    return lines


def build_tokenizer(dest: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = MAX_LEN
    fast.save_pretrained(str(dest))


def build_model(dest: Path) -> Path:
    """Tokenizer + random Llama weights (float32 safetensors) in `dest`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    build_tokenizer(dest)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(dest))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=MAX_LEN,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = PLANTED
        model.lm_head.weight[:, 0] = 0.0
        for token, weight in PREFERRED.items():
            token_id = tokenizer.convert_tokens_to_ids(token)
            assert token_id is not None and token_id != tokenizer.unk_token_id, token
            model.lm_head.weight[token_id, 0] = weight
    model.save_pretrained(str(dest))
    GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    ).save_pretrained(str(dest))
    return dest


def build_lora(dest: Path, base: Path) -> Path:
    """A PEFT-format LoRA adapter (rank 8, q/v projections) for the tiny model."""
    import torch
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    tensors: dict[str, torch.Tensor] = {}
    shapes = {"q_proj": HEADS * HEAD_DIM, "v_proj": KV_HEADS * HEAD_DIM}
    for layer in range(LAYERS):
        for module, out_dim in shapes.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(LORA_RANK, HIDDEN) * 0.01
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out_dim, LORA_RANK) * 0.01
    save_file(tensors, str(dest / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base),
        "r": LORA_RANK,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "target_modules": sorted(shapes),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (dest / "adapter_config.json").write_text(json.dumps(config, indent=2), "utf-8")
    return dest
