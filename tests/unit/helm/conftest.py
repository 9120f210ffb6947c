"""One render per values file for the whole session (each takes about 0.1 s)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.helm.chart import VALUES_FILES, load_values, manifests, render


@pytest.fixture(scope="session")
def renders() -> dict[str, dict[str, str]]:
    return {name: render(load_values(name)) for name in VALUES_FILES}


@pytest.fixture(scope="session")
def objects(renders: dict[str, dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    return {name: manifests(rendered) for name, rendered in renders.items()}
