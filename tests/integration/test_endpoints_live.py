"""Model listing, health and metrics on the live gateway."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.live import HTTP_TIMEOUT_S, MISTRAL, MISTRAL_ALIAS, MODEL_IDS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_list_models(base_url: str, prefix: str) -> None:
    reply = requests.get(f"{base_url}{prefix}/models", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == MODEL_IDS
    assert all(m["object"] == "model" for m in body["data"])


@pytest.mark.parametrize("name", [*MODEL_IDS, MISTRAL_ALIAS])
def test_get_model_by_id(api: str, name: str) -> None:
    reply = requests.get(f"{api}/models/{name}", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "model"
    assert body["id"] == (MISTRAL if name == MISTRAL_ALIAS else name)


def test_get_unknown_model(api: str) -> None:
    reply = requests.get(f"{api}/models/acme/none", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "model_not_found"


def test_health_reports_every_model(base_url: str) -> None:
    reply = requests.get(f"{base_url}/health", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ok"
    assert body["models"] == {model: True for model in MODEL_IDS}


def test_metrics_count_requests_per_model(base_url: str, api: str) -> None:
    for model in MODEL_IDS:
        reply = requests.post(
            f"{api}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "m"}], "max_tokens": 3},
            timeout=HTTP_TIMEOUT_S,
        )
        assert reply.status_code == 200, reply.text
    scrape = requests.get(f"{base_url}/metrics", timeout=HTTP_TIMEOUT_S)
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    requests_by_model: dict[str, float] = {}
    completion_by_model: dict[str, float] = {}
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            model = sample.labels.get("model")
            if sample.name == "modelyard_requests_total" and sample.labels.get("status") == "200":
                requests_by_model[model] = requests_by_model.get(model, 0) + sample.value
            if sample.name == "modelyard_completion_tokens_total":
                completion_by_model[model] = sample.value
    for model in MODEL_IDS:
        assert requests_by_model.get(model, 0) >= 1, model
        assert completion_by_model.get(model, 0) >= 3, model
