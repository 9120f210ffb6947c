"""Fixtures of the service tests; the scripted engine lives in scripted.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.gateway.service.scripted import Rig, build_rig, text_chunks


@pytest.fixture
def hello_rig() -> Iterator[Rig]:
    """Every model answers "Hello world" in three pieces, prompt 10 tokens."""
    yield build_rig(lambda _request: text_chunks("Hel", "lo", " world"))
