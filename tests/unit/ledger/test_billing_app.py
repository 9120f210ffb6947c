"""Keys, budgets, rates and the ledger through the real gateway app (uvicorn on loopback,
SimEngine), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from cluster.config import PriceTable, PriceTier
from cluster.ledger.schema import api_keys, reservations, usage_records
from tests.unit.ledger.app_rig import STATIC_KEY, billing_app, exact_json, received

NOW = datetime.now(UTC)
OUTPUT_ONLY = PriceTable(
    tiers=[PriceTier(input=Decimal(0), output=Decimal(151), cache_read=Decimal(0))]
)


def _ledger_totals(rig_engine: object) -> tuple[int, Decimal]:
    with rig_engine.connect() as connection:  # type: ignore[attr-defined]
        count, nano = connection.execute(
            select(func.count(), func.coalesce(func.sum(usage_records.c.cost_nano), 0)).where(
                usage_records.c.status == "completed"
            )
        ).one()
    return int(count), Decimal(int(nano)) / 10**9


async def test_status_codes_of_the_one_auth_path(ledger_url: str) -> None:
    async with billing_app(ledger_url) as rig:
        assert (await rig.chat(None)).status_code == 401
        wrong = await rig.chat("myd-000000000000-" + "A" * 43)
        assert wrong.status_code == 401
        assert "myd-000000000000" not in wrong.text
        key, info = rig.keys.create("a", now=NOW)
        assert (await rig.chat(key)).status_code == 200
        assert (await rig.chat(STATIC_KEY)).status_code == 200  # static digests keep working
        only_other, _ = rig.keys.create("b", now=NOW, models=["minimax/minimax-m1"])
        denied = await rig.chat(only_other)
        assert denied.status_code == 403 and denied.json()["error"]["param"] == "model"
        expired, _ = rig.keys.create("c", now=NOW, expires_at=NOW - timedelta(seconds=1))
        assert (await rig.chat(expired)).status_code == 403
        assert rig.keys.revoke(info.id, NOW)
        revoked = await rig.chat(key)
        assert revoked.status_code == 403 and revoked.json()["error"]["code"] == "key_revoked"
        limited, _ = rig.keys.create("d", now=NOW, rpm=2)
        codes = [(await rig.chat(limited)).status_code for _ in range(2)]
        over = await rig.chat(limited)
        assert codes == [200, 200] and over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60
        poor, _ = rig.keys.create("e", now=NOW, budget=Decimal("0.000001"))
        broke = await rig.chat(poor)
        assert broke.status_code == 402 and broke.json()["error"]["type"] == "insufficient_quota"


async def test_key_generation_and_usage_endpoints(ledger_url: str) -> None:
    async with billing_app(ledger_url) as rig:
        key, info = rig.keys.create("team", now=NOW, budget=Decimal(5))
        auth = {"authorization": f"Bearer {key}"}
        answers = [await rig.chat(key), await rig.chat(key, stream=True)]
        ids_costs = [received(a) for a in answers]
        spent = sum((cost for _, cost, _ in ids_costs), Decimal(0))
        mine = exact_json((await rig.http.get("/api/v1/key", headers=auth)).text)["data"]
        assert mine["label"] == "team" and mine["usage"] == spent
        assert mine["limit"] == 5 and mine["limit_remaining"] == 5 - spent
        one = await rig.http.get(f"/api/v1/generation?id={ids_costs[1][0]}", headers=auth)
        record = exact_json(one.text)["data"]
        assert record["cost"] == ids_costs[1][1] and record["status"] == "completed"
        assert record["key_id"] == info.id
        other, _ = rig.keys.create("other", now=NOW)
        hidden = await rig.http.get(
            f"/api/v1/generation?id={ids_costs[1][0]}", headers={"authorization": f"Bearer {other}"}
        )
        assert hidden.status_code == 404
        usage = exact_json(
            (await rig.http.get("/api/v1/usage?group_by=day&from=2020-01-01", headers=auth)).text
        )
        assert usage["total_cost"] == spent and usage["data"][0]["requests"] == 2
        bad = await rig.http.get("/api/v1/usage?group_by=week", headers=auth)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"


async def test_500_concurrent_requests_over_20_keys_match_the_ledger_to_the_kopeck(
    ledger_url: str,
) -> None:
    async with billing_app(ledger_url) as rig:
        keys = [rig.keys.create(f"k{i}", now=NOW, budget=Decimal(100))[0] for i in range(20)]
        rng = random.Random(7)
        calls = [
            rig.chat(
                keys[i % 20],
                stream=i % 2 == 1,
                max_tokens=rng.randint(1, 40),
                messages=[{"role": "user", "content": "word " * rng.randint(1, 300)}],
            )
            for i in range(500)
        ]
        answers = await asyncio.gather(*calls)
        assert [a.status_code for a in answers] == [200] * 500
        got = [received(a) for a in answers]
        assert all(whole for _, _, whole in got)
        assert len({rid for rid, _, _ in got}) == 500
        client_total = sum((cost for _, cost, _ in got), Decimal(0))
        count, ledger_total = _ledger_totals(rig.ledger.engine)
        assert count == 500
        assert ledger_total == client_total  # exact, so to the kopeck too
        with rig.ledger.engine.connect() as connection:
            spent = connection.execute(select(func.sum(api_keys.c.spent_nano))).scalar()
            open_reservations = connection.execute(select(func.count()).select_from(reservations))
            assert open_reservations.scalar() == 0
        assert Decimal(int(spent)) / 10**9 == client_total
        assert rig.ledger.writer.batches < 500  # grouped commits


async def test_50_concurrent_requests_against_a_budget_for_exactly_10(ledger_url: str) -> None:
    # Output-only prices and a fixed 4-token answer: each request costs exactly its
    # worst case (4 x 151 / 1e6 RUB), so the budget covers exactly 10 of them.
    async with billing_app(ledger_url, prices=OUTPUT_ONLY) as rig:
        key, info = rig.keys.create("ten", now=NOW, budget=Decimal(10 * 4 * 151) / 10**6)
        answers = await asyncio.gather(
            *(rig.chat(key, max_tokens=4, stream=i % 2 == 0) for i in range(50))
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * 10 + [402] * 40
        shown = rig.keys.show(info.id)
        assert shown is not None
        assert (shown.spent, shown.reserved, shown.remaining) == (shown.budget, 0, 0)
        with rig.ledger.engine.connect() as connection:
            statuses = connection.execute(
                select(usage_records.c.status, func.count()).group_by(usage_records.c.status)
            ).all()
        assert dict(statuses) == {"completed": 10, "refused": 40}
