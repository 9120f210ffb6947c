"""Decision cost of exact hashing for a vLLM model: `python -m bench.vllm_bench`.

Measures `VLLMPromptHasher.route_request` (render with the model's chat template, tokenise,
hash full blocks) on one thread, for chat prompts of about 200 and 4,000 tokens:

- new prompt: a prompt never seen (render + tokenise everything + hash every block);
- repeated prompt: the same prompt again (the per-prompt LRU: key digest + copy);
- next turn: a conversation's next request, whose earlier messages were seen (render
  everything, tokenise only the pieces after the longest known run, `vllm_segments`).

The model is read from a cluster file (default: the packaged local.yaml, whose real
model is SmolLM2-135M-Instruct from the model cache: `modelyard models prepare
smollm2-135m-instruct`). `--context` raises the catalog window for the measurement only
(SmolLM2's checkpoint takes 8,192 positions; local.yaml serves 2,048), so a 4K prompt is
not truncated by the tokenise parameters.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from cluster.config.catalog import load_builtin_catalog
from cluster.config.loader import load_config
from cluster.config.settings import ServedModel
from cluster.engine import EngineRequest
from deployments.routing.vllm_tokens import RendererLoader, VLLMPromptHasher

_WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while")


def _text(words: int, seed: int) -> str:
    return " ".join(
        f"{_WORDS[(i * 7 + seed) % len(_WORDS)]}{(i * seed) % 13}" for i in range(words)
    )


def _chat(model: str, seed: int, words: int, turns: int = 1) -> EngineRequest:
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are terse."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": _text(words, seed * 31 + turn)})
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": _text(words // 4, seed + turn)})
    return EngineRequest.model_validate(
        {"request_id": f"bench-{seed}-{turns}", "model": model, "messages": messages}
    )


def _us(samples: list[tuple[int, int]]) -> str:
    """p50 and p99 of wall time, and p50 of this thread's CPU time (the host is shared:
    CPU time is what the decision costs, wall time adds waiting for a core)."""
    wall = sorted(w for w, _ in samples)
    p99 = wall[min(len(wall) - 1, int(0.99 * len(wall)))]
    cpu = statistics.median(c for _, c in samples)
    return (
        f"wall p50 {statistics.median(wall) / 1e3:7.0f} us  p99 {p99 / 1e3:7.0f} us   "
        f"cpu p50 {cpu / 1e3:7.0f} us"
    )


def _timed(call: Callable[[], object]) -> tuple[int, int]:
    started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
    call()
    return time.perf_counter_ns() - started, time.thread_time_ns() - started_cpu


def measure(
    model: ServedModel, *, blocks: Sequence[int], samples: int, out: Callable[[str], None]
) -> None:
    started = time.perf_counter()
    loader = RendererLoader(model, background=False)
    if loader.renderer is None:
        raise SystemExit(f"the tokenizer of {model.id} did not load: {loader.error}")
    loaded_s = time.perf_counter() - started
    out(f"renderer loaded in {loaded_s:.1f} s (text pieces reused: {bool(loader.renderer.cuts)})")
    for target, words in ((200, 88), (4000, 2000)):
        tokens = len(loader.renderer.prompt_ids(_chat(model.id, 0, words)))
        for block in blocks:
            hasher = VLLMPromptHasher(loader, block_tokens=block, prefix_caching=True)
            new, repeated = [], []
            for i in range(samples):
                request = _chat(model.id, 1000 * target + i, words)
                new.append(_timed(partial(hasher.route_request, request)))
                repeated.append(_timed(partial(hasher.route_request, request)))
            out(f"~{target:>4}-token prompt ({tokens} tokens), {block:>3}-token blocks")
            out(f"    new prompt       {_us(new)}")
            out(f"    repeated prompt  {_us(repeated)}")
    for block in blocks:
        hasher = VLLMPromptHasher(loader, block_tokens=block, prefix_caching=True)
        last: list[tuple[int, int]] = []
        tokens = 0
        for i in range(samples):
            for turns in range(1, 9):
                request = _chat(model.id, 7000 + i, 170, turns)
                elapsed = _timed(partial(hasher.route_request, request))
            last.append(elapsed)
            tokens = hasher.route_request(request).prompt_tokens
        out(f"conversation turn 8 ({tokens} tokens), {block:>3}-token blocks")
        out(f"    next turn        {_us(last)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vllm_bench")
    parser.add_argument("--config", type=Path, default=Path("cluster/config/local.yaml"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--context", type=int, default=8192, help="catalog window override")
    parser.add_argument("--blocks", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args(argv)
    served = {m.id: m for m in load_config(args.config).served_models(load_builtin_catalog())}
    model = served[args.model]
    spec = model.spec.model_copy(update={"context_window": args.context})
    measure(
        model.model_copy(update={"spec": spec}),
        blocks=args.blocks,
        samples=args.samples,
        out=print,
    )


if __name__ == "__main__":
    main()
