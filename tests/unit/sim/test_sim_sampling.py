"""Sampling parameters shape simulated text in the documented, deterministic way."""

from __future__ import annotations

import re

import pytest

from cluster.engine import EngineRequest, SamplingParams
from deployments.engines.sim.sampling import TextStyle
from deployments.engines.sim.text import plan_output

PROMPT_IDS = [5, 8, 13, 21]
SYLLABLES = 24


def request(sample: int = 0, **sampling: float | int | None) -> EngineRequest:
    return EngineRequest(
        request_id=f"r-{sample}",
        model="m",
        prompt="hello",
        sampling=SamplingParams(**sampling),  # type: ignore[arg-type]
        sample=sample,
    )


def text(req: EngineRequest) -> str:
    plan = plan_output(req, prompt_ids=PROMPT_IDS, limit=4096, seed=0, think_tags=False)
    return "".join(token.text for token in plan.tokens)


def words(req: EngineRequest) -> list[str]:
    return re.findall(r"[a-z]+", text(req).lower())


@pytest.mark.parametrize(
    ("sampling", "sample", "expected"),
    [
        ({}, 0, TextStyle(sample_key=0, vocabulary=24, penalty=0.0)),
        ({}, 3, TextStyle(sample_key=3, vocabulary=24, penalty=0.0)),
        ({"temperature": 0.0}, 3, TextStyle(sample_key=0, vocabulary=24, penalty=0.0)),
        ({"top_p": 0.5}, 0, TextStyle(sample_key=0, vocabulary=12, penalty=0.0)),
        ({"top_p": 0.01}, 0, TextStyle(sample_key=0, vocabulary=1, penalty=0.0)),
        ({"top_k": 5}, 0, TextStyle(sample_key=0, vocabulary=5, penalty=0.0)),
        ({"top_k": 50, "top_p": 0.25}, 0, TextStyle(sample_key=0, vocabulary=6, penalty=0.0)),
        ({"top_k": -1}, 0, TextStyle(sample_key=0, vocabulary=24, penalty=0.0)),
        (
            {"presence_penalty": 0.5, "frequency_penalty": 1.0},
            1,
            TextStyle(sample_key=1, vocabulary=24, penalty=1.5),
        ),
    ],
)
def test_style_table(sampling: dict[str, float], sample: int, expected: TextStyle) -> None:
    assert TextStyle.of(request(sample, **sampling), SYLLABLES) == expected


def test_greedy_samples_are_one_text_and_sampled_ones_differ() -> None:
    assert text(request(0, temperature=0.0)) == text(request(1, temperature=0.0))
    assert text(request(0, temperature=0.8)) != text(request(1, temperature=0.8))
    # the same sample of the same request is the same text
    assert text(request(1, temperature=0.8)) == text(request(1, temperature=0.8))


def test_first_sample_does_not_depend_on_temperature() -> None:
    assert text(request(0, temperature=0.0)) == text(request(0, temperature=1.3))


def test_top_k_narrows_the_vocabulary() -> None:
    assert set("".join(words(request(top_k=1)))) == set("ka")
    assert len(set(words(request(top_k=2)))) < len(set(words(request())))


def test_positive_penalty_avoids_repeats_and_negative_one_repeats() -> None:
    def repeats(found: list[str]) -> int:
        return len(found) - len(set(found))

    plain = words(request())  # one-syllable words (24 of them) repeat often unpenalised
    penalised = words(request(presence_penalty=1.0))
    assert repeats(plain) > 10
    assert repeats(penalised) <= repeats(plain) // 5
    echoed = words(request(frequency_penalty=-2.0))
    assert len(set(echoed)) == 1
