"""schemathesis against the OpenAPI document the gateway serves (`GET /openapi.json`).

Cases are generated from the served document itself — positive (what the schema allows)
and negative (what it forbids) for every operation under both prefixes — with fixed seeds,
and sent to the live gateway. Checks: schemathesis' `not_a_server_error`, and ours: every
4xx carries OpenAI's error object. A hang fails on the client timeout.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from tests.unit.fuzz.checks import ERROR_KEYS
from tests.unit.fuzz.gateway import MODELS, LiveGateway

EXAMPLES = 600
pytestmark = pytest.mark.timeout(240)


def test_generated_cases_from_the_served_document(gateway: LiveGateway) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway.base_url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8  # 4 routes under /v1 and /api/v1
    cases = st.one_of([op.as_strategy(mode) for op in operations for mode in GenerationMode])
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Case) -> None:
        response = case.call(base_url=gateway.base_url, timeout=15)
        case.validate_response(response, checks=[not_a_server_error])
        statuses.append(response.status_code)
        if response.status_code >= 400:
            error = json.loads(response.content)["error"]
            assert set(error) == ERROR_KEYS, error

    run()
    assert len(statuses) >= EXAMPLES
    assert all(status < 500 for status in statuses)
    assert statuses.count(200) > 0 and sum(400 <= s < 500 for s in statuses) > 0
    body = {"model": MODELS[0], "prompt": "still there?", "max_tokens": 2}
    after = httpx.post(f"{gateway.base_url}/v1/completions", json=body, timeout=15)
    assert after.status_code == 200, after.text
