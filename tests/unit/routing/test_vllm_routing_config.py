"""Routers of vLLM models: exact hashing and KV-event subscription from the config, the
block size learned from the replicas, and the reuse of chat text pieces (no vLLM here)."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.config.settings import ModelDeployment, RoutingConfig, ServedModel
from cluster.config.vllm_args import VLLMDeploymentSettings
from cluster.routing.hashing import block_hashes
from deployments.routing.config import (
    RouterKwargs,
    adopted_block_size,
    request_router_config,
    router_kwargs,
)
from deployments.routing.prompts import build_hasher
from deployments.routing.vllm_segments import SegmentBlocks, SegmentCuts
from tests.unit.routing.replicas import AWQ, CATALOG, MINIMAX, QWEN, served


def on_vllm(model_id: str, **vllm: Any) -> ServedModel:
    spec = CATALOG.find(model_id)
    assert spec is not None
    settings = VLLMDeploymentSettings.model_validate(vllm) if vllm else None
    deployment = ModelDeployment(id=model_id, engine="vllm", vllm=settings)
    return ServedModel(spec=spec, deployment=deployment)


@pytest.mark.parametrize(
    ("model", "routing", "hashing", "kv_events"),
    [
        (on_vllm(QWEN), {}, "vllm", True),
        (on_vllm(AWQ), {}, "vllm", True),  # adapters: the LoRA name is the extra key
        (on_vllm(QWEN, kv_events=False), {}, "vllm", False),  # the replicas do not publish
        (on_vllm(QWEN), {"kv_events": False}, "vllm", False),  # the operator turned it off
        (on_vllm(MINIMAX), {}, "proxy", False),  # no prefix caching: no hashes, no events
        (served(QWEN), {}, "sim", True),
    ],
    ids=["qwen", "awq", "replica-off", "routing-off", "minimax", "sim"],
)
def test_vllm_models_hash_exactly_and_subscribe(
    model: ServedModel, routing: dict[str, Any], hashing: str, kv_events: bool
) -> None:
    kwargs = router_kwargs(model, RoutingConfig.model_validate(routing))
    assert (kwargs.hashing, kwargs.kv_events) == (hashing, kv_events)
    # The router loads the tokenizer from the model as its engine is configured.
    assert kwargs.served == (model if hashing == "vllm" else None)


def test_the_served_model_survives_serves_json_kwargs() -> None:
    model = on_vllm(AWQ, model_path="/models/awq", adapters={"legal": "/adapters/legal"})
    option = request_router_config(model, RoutingConfig())
    kwargs = RouterKwargs.model_validate(option["request_router_kwargs"])
    assert kwargs.served == model
    assert kwargs.served is not None and kwargs.served.deployment.vllm is not None
    assert kwargs.served.deployment.vllm.model_path == "/models/awq"


@pytest.mark.parametrize(
    ("reports", "adopted"),
    [
        ([{"block_size": 128}], 128),  # vLLM CPU's default
        ([{"block_size": 128}, {"block_size": 128}], 128),
        ([{"block_size": 16}], None),  # already the router's
        ([{}], None),  # no report yet (a replica still starting)
        ([{"block_size": 128}, {}], None),  # replicas disagree: wait
        ([{"block_size": 128}, {"block_size": 64}], None),
        ([{"block_size": 0}], None),
        ([{"block_size": "128"}], None),
        ([{"block_size": True}], None),
        ([], None),
    ],
)
def test_vllm_routers_adopt_the_block_size_replicas_report(
    reports: list[dict[str, Any]], adopted: int | None
) -> None:
    kwargs = router_kwargs(on_vllm(QWEN), RoutingConfig())
    assert kwargs.block_tokens == 16
    assert adopted_block_size(kwargs, reports) == adopted


def test_simulated_models_keep_their_configured_block_size() -> None:
    kwargs = router_kwargs(served(QWEN, block_size=32), RoutingConfig())
    assert adopted_block_size(kwargs, [{"block_size": 128}]) is None


def test_with_block_tokens_changes_only_the_index_block_size() -> None:
    kwargs = router_kwargs(on_vllm(QWEN), RoutingConfig.model_validate({"index": {"stride": 2}}))
    changed = kwargs.with_block_tokens(128)
    assert changed.block_tokens == 128
    assert changed.settings.index.stride == 2
    assert changed.model_dump(exclude={"settings"}) == kwargs.model_dump(exclude={"settings"})
    assert kwargs.block_tokens == 16


def test_vllm_hashing_needs_the_renderer_loader() -> None:
    with pytest.raises(ValueError, match="loader"):
        build_hasher("vllm", block_tokens=16, prefix_caching=True)


# ---- reuse of chat text pieces ---------------------------------------------------------

CUTS = SegmentCuts(["<|im_start|>", "<|im_end|>", "<s>"])


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("", []),
        ("plain text", ["plain text"]),
        ("<|im_start|>user\nhi<|im_end|>\n", ["<|im_start|>user\nhi", "<|im_end|>\n"]),
        ("pre<s>a<s>b", ["pre", "<s>a", "<s>b"]),
        ("<s><s>", ["<s>", "<s>"]),
        ("<|im_start|<s>", ["<|im_start|", "<s>"]),  # an incomplete token is not a cut
    ],
)
def test_cuts_split_before_each_special_token(text: str, pieces: list[str]) -> None:
    assert CUTS.split(text) == pieces
    assert "".join(CUTS.split(text)) == text


def char_codes(text: str) -> list[int]:
    """A tokenizer whose pieces tokenise independently (one id per character)."""
    return [ord(c) for c in text]


def conversation(turns: int) -> list[str]:
    pieces = ["<s>system: you answer briefly and never use more words than needed.\n"]
    for turn in range(turns):
        pieces.append(f"<s>user: question number {turn} about the weather in a city?\n")
        pieces.append(f"<s>assistant: answer number {turn}, sunny and warm all day.\n")
    return [*pieces, "<s>assistant:"]


@pytest.mark.parametrize("block_tokens", [1, 16, 37])
@pytest.mark.parametrize("keys", [[], ["legal"]])
def test_pieces_hash_like_the_whole_prompt(block_tokens: int, keys: list[str]) -> None:
    blocks = SegmentBlocks(block_tokens, char_codes)
    for turns in range(1, 6):
        pieces = conversation(turns)
        text = "".join(pieces)
        tokens, hashes = blocks.blocks(pieces, keys)
        assert tokens == len(text)
        assert hashes == block_hashes(char_codes(text), block_tokens, keys)
    assert blocks.hits == 4  # every later turn resumed from the one before


def test_runs_are_keyed_by_text_and_extra_keys() -> None:
    blocks = SegmentBlocks(16, char_codes)
    pieces = conversation(2)
    _, plain = blocks.blocks(pieces, [])
    _, adapter = blocks.blocks(pieces, ["legal"])
    assert blocks.hits == 0  # another adapter is another chain
    assert not set(plain) & set(adapter)
    changed = [pieces[0].replace("briefly", "at length"), *pieces[1:]]
    blocks.blocks(changed, [])
    assert blocks.hits == 0  # an earlier piece changed: nothing after it is reused


def test_runs_are_bounded() -> None:
    blocks = SegmentBlocks(4, char_codes, max_entries=3, max_hashes=10_000)
    for turns in range(1, 8):
        blocks.blocks(conversation(turns), [])
    assert len(blocks) == 3
    small = SegmentBlocks(4, char_codes, max_entries=100, max_hashes=60)
    small.blocks(conversation(3), [])  # 7 leading runs of ~17, 35, 52, ... hashes
    assert 1 <= len(small) <= 3
