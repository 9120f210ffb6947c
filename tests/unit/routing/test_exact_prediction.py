"""The router's exact prediction equals the cached tokens the engine reports.

Recorded case (issue 15, item 4): the live routing test once saw the router predict 672
cached tokens where the simulator reported 656. Its prompt is below, with the random id
of that run replaced by one that gives the same shape: 674 prompt tokens, whose 42nd
block (tokens 656-671) holds " Question" and the differing question number, so the
engine can reuse 41 blocks. The prediction was read when the request had already
reached its replica (`on_request_routed`), by which time the engine's `stored` events
for the request's own 42 blocks could be indexed: 672. Read at decision time
(`Router.exact_tokens`, called from `choose_replicas`) it is 656, what the engine reports.

Engines are the simulator's real KV cache (`BlockKVCache`, vLLM's semantics) and its
tokenizer; the router is the real `Router` fed with the cache's own events.
"""

from __future__ import annotations

import pytest

from cluster.api.messages import UserMessage
from cluster.engine import EngineRequest, KVEvent, KVEventBatch
from cluster.routing import IndexSettings, Router, RoutingSettings
from deployments.engines.sim.engine import prompt_text
from deployments.engines.sim.kv_cache import BlockKVCache
from deployments.engines.sim.tokenizer import SimTokenizer
from deployments.routing.prompts import SimPromptHasher

T = 16
REPLICA = "a"
#: The live test's shared prefix, with a recorded id in place of its uuid4.
PREFIX = "Shared 8c6839974fce148772150504986fb308. " + " ".join(
    f"Clause {i}: the router keeps a prefix where its cache is." for i in range(50)
)


class _Replica:
    """One simulated engine's KV cache whose events reach the router as batches."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.seq = 0
        self.cache = BlockKVCache(4096, T, on_events=self._publish)
        self.tokenizer = SimTokenizer()

    def _publish(self, events: list[KVEvent]) -> None:
        batch = KVEventBatch(replica_id=REPLICA, seq=self.seq, timestamp=0.0, events=events)
        self.seq += 1
        self.router.on_kv_events(batch, 0.0)

    def serve(self, request: EngineRequest) -> int:
        """Admit and finish `request`; the cached tokens the engine reports."""
        ids = self.tokenizer.encode(prompt_text(request))
        cached = self.cache.acquire_tokens(request.request_id, ids)
        assert cached is not None
        self.cache.release(request.request_id)
        return cached


def _chat(rid: str, content: str) -> EngineRequest:
    return EngineRequest(
        request_id=rid,
        model="m",
        messages=[UserMessage(role="user", content=content)],
        max_tokens=4,
    )


def _setup() -> tuple[Router, _Replica, SimPromptHasher]:
    router = Router(RoutingSettings(index=IndexSettings(block_tokens=T)))
    return router, _Replica(router), SimPromptHasher(block_tokens=T, prefix_caching=True)


def test_recorded_prompt_prediction_at_decision_time_is_the_engines_hit() -> None:
    router, replica, hasher = _setup()
    replica.serve(_chat("q0", PREFIX + " Question zero?"))
    for i in range(1, 4):
        request = _chat(f"q{i}", PREFIX + f" Question {i}?")
        route = hasher.route_request(request)
        assert route.prompt_tokens == 674
        predicted = router.exact_tokens(route, 0.0)[REPLICA]
        cached = replica.serve(request)
        assert (predicted, cached) == (656, 656)
        # The old reading, after the engine stored the request's own blocks: one block more.
        after = router.index.match(route.block_hashes, 0.0)[REPLICA].exact_blocks * T
        assert after == 672


@pytest.mark.parametrize(
    ("prompt", "repeat", "expected"),
    [
        # " a" is one token: a prompt of 2 full blocks, sent again, hits 1 block (the
        # engine computes at least the last prompt token).
        (" a" * 32, " a" * 32, 16),
        # 33 tokens: both full blocks hit.
        (" a" * 33, " a" * 33, 32),
        # A longer repeat of a 2-block prompt: both its blocks hit.
        (" a" * 32, " a" * 40, 32),
        # Different from the second block on: the first block hits.
        (" a" * 32, " a" * 16 + " b" * 20, 16),
        # Nothing shared.
        (" a" * 32, " b" * 40, 0),
    ],
)
def test_prediction_equals_the_engines_hit(prompt: str, repeat: str, expected: int) -> None:
    router, replica, hasher = _setup()
    replica.serve(EngineRequest(request_id="first", model="m", prompt=prompt, max_tokens=1))
    again = EngineRequest(request_id="again", model="m", prompt=repeat, max_tokens=1)
    predicted = router.exact_tokens(hasher.route_request(again), 0.0).get(REPLICA, 0)
    assert predicted == replica.serve(again) == expected


def test_no_prediction_without_prefix_caching() -> None:
    router, replica, _ = _setup()
    replica.serve(_chat("q0", PREFIX))
    plain = SimPromptHasher(block_tokens=T, prefix_caching=False)
    assert router.exact_tokens(plain.route_request(_chat("q1", PREFIX)), 0.0) == {}
