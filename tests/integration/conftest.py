"""One real cluster for the integration tests: Ray + Serve + the modelyard app, started ONCE.

The packaged local.yaml (all four models on the simulator, virtual GPUs) on 127.0.0.1 with a
free port and a fast simulated clock, started through `LocalCluster` — the same code path as
`modelyard up`. Package-scoped: it comes up at the first test that needs it and is torn down
after the last test of `tests/integration`, so later test packages in the same pytest run
never see this Ray instance.

`outage_db`: an empty ledger database and the outage that takes it away
(`ledger_outage_rig.outage_database`), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from bench.processes import free_port
from cluster.config import parse_config
from deployments.launcher import LocalCluster
from tests.integration.ledger_outage_rig import Outage, outage_database
from tests.integration.live import HTTP_TIMEOUT_S, START_TIMEOUT_S, local_config_data


@pytest.fixture(scope="package")
def live_cluster() -> Iterator[LocalCluster]:
    config = parse_config(local_config_data(free_port()), source="integration")
    cluster = LocalCluster(config, object_store_bytes=128 * 1024 * 1024)
    cluster.start(timeout_s=START_TIMEOUT_S)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def base_url(live_cluster: LocalCluster) -> str:
    return live_cluster.base_url


@pytest.fixture(scope="package")
def grpc_target(live_cluster: LocalCluster) -> str:
    """host:port of the same gateway's gRPC API."""
    gateway = live_cluster.config.gateway
    return f"{gateway.host}:{gateway.grpc_port}"


@pytest.fixture(params=["/api/v1", "/v1"], ids=["api-v1", "v1"])
def sdk(request: pytest.FixtureRequest, base_url: str) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK against the live gateway, under both API prefixes."""
    client = openai.OpenAI(
        base_url=base_url + request.param,
        api_key="any-key",
        timeout=HTTP_TIMEOUT_S,
        max_retries=0,
    )
    yield client
    client.close()


@pytest.fixture
def api(base_url: str) -> str:
    return base_url + "/api/v1"


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Outage]]:
    with outage_database(request.param, tmp_path) as found:
        yield found
