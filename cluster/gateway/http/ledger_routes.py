"""The ledger's HTTP routes, under /api/v1 (and /v1), for the calling key:

- `GET /key`: the key's label, usage (settled spend), limit (budget), remaining, reserved,
  rates, models and expiry. For a static key or with auth off: its id and ledger usage, no
  limit.
- `GET /generation?id=<response id>`: that request's ledger record (404 when there is none,
  or it belongs to another managed key).
- `GET /usage?from=&to=&group_by=model|key|day`: totals (requests, tokens, cost) of records
  ended in [from, to) (ISO dates or times, UTC when no zone is given); a managed key sees
  only its own.
Money is a JSON number written from the exact decimal. Bad parameters: 400 naming them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.errors import InvalidRequest, NotFound
from cluster.gateway.auth import Authenticator, Principal
from cluster.ledger.keys import KeyStore
from cluster.ledger.queries import GroupBy, LedgerQueries

GROUPS: tuple[GroupBy, ...] = ("model", "key", "day")


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _when(raw: str | None, param: str) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{param}': expected an ISO date or date-time, e.g. 2026-12-01.",
            param=param,
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _scope(caller: Principal) -> str | None:
    """The key whose records a caller may read: its own for a managed key; all otherwise."""
    return caller.key_id if caller.limits is not None else None


def add_ledger_routes(
    app: FastAPI,
    auth: Authenticator,
    queries: LedgerQueries,
    keys: KeyStore | None,
    prefixes: tuple[str, ...],
    *,
    admin: FastAPI | None = None,
) -> None:
    """`/key` and `/generation` on `app`; `/usage` (an admin route) on `admin` (default:
    `app`; `cluster.gateway.http.admin`)."""
    ops = admin or app

    async def key_route(request: Request) -> Response:
        caller = await auth.authenticate(request.headers.get("authorization"))
        data: dict[str, Any]
        info = None
        if keys is not None and caller.limits is not None and caller.key_id is not None:
            info = await asyncio.to_thread(keys.show, caller.key_id)
        if info is not None:
            data = {
                "id": info.id,
                "label": info.name,
                "usage": _money(info.spent),
                "limit": _money(info.budget),
                "limit_remaining": _money(info.remaining),
                "reserved": _money(info.reserved),
                "rate_limit": {"rpm": info.rpm, "tpm": info.tpm},
                "models": info.models,
                "expires_at": None if info.expires_at is None else info.expires_at.isoformat(),
            }
        else:
            rows = await asyncio.to_thread(queries.usage, "key", key_id=caller.key_id)
            spent = sum((row.cost for row in rows if row.group == caller.key_id), Decimal(0))
            data = {
                "id": caller.key_id,
                "label": caller.key_id or "anonymous",
                "usage": _money(spent),
                "limit": None,
                "limit_remaining": None,
            }
        return JSONResponse({"data": data})

    async def generation_route(request: Request) -> Response:
        caller = await auth.authenticate(request.headers.get("authorization"))
        request_id = request.query_params.get("id", "").strip()
        if not request_id:
            raise InvalidRequest("Missing required parameter 'id'.", param="id")
        record = await asyncio.to_thread(queries.generation, request_id, _scope(caller))
        if record is None:
            raise NotFound(f"No generation with id '{request_id}' was found.", param="id")
        body = record.model_dump(mode="json")
        body["cost"] = _money(record.cost)
        return JSONResponse({"data": body})

    async def usage_route(request: Request) -> Response:
        caller = await auth.authenticate(request.headers.get("authorization"))
        params = request.query_params
        group_by = params.get("group_by", "model")
        if group_by not in GROUPS:
            raise InvalidRequest(
                f"Invalid 'group_by': {group_by!r}; expected one of model, key, day.",
                param="group_by",
            )
        start, end = _when(params.get("from"), "from"), _when(params.get("to"), "to")
        rows = await asyncio.to_thread(
            queries.usage,
            group_by,
            start=start,
            end=end,
            key_id=_scope(caller),
        )
        data = [{**row.model_dump(mode="json"), "cost": _money(row.cost)} for row in rows]
        total = sum((row.cost for row in rows), Decimal(0))
        return JSONResponse({"group_by": group_by, "data": data, "total_cost": _money(total)})

    for prefix in prefixes:
        app.add_api_route(f"{prefix}/key", key_route, methods=["GET"])
        app.add_api_route(f"{prefix}/generation", generation_route, methods=["GET"])
        ops.add_api_route(f"{prefix}/usage", usage_route, methods=["GET"])
