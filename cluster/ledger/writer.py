"""`GroupCommitWriter`: many requests' ledger writes in one transaction, a few ms apart.

    result = await writer.submit(op)      # op(connection) -> result, run in a transaction

Callers on the event loop submit operations (insert a usage record, reserve a budget, ...);
one writer thread takes every operation waiting (up to `max_batch`; with `linger_s` > 0 it
also waits that long for more), runs them all in ONE transaction, commits, and only then
resolves every caller's future. While one transaction commits (a few ms: the fsync), the
next requests queue up and go together in the next one, so batches grow with load without
a fixed delay for a lone request (`linger_s` defaults to 0). So an awaited `submit` means
the write is durable. If the batch's transaction fails, each of its operations is retried
alone in its own transaction, so one bad operation never drops the others; the failing
one's caller gets the exception (and the gateway answers an error instead of an unbilled
response). Nothing is ever dropped silently. Operations of a kind with `run_many` (the
ledger's `Reserve`, `Settle`) run together in few statements (`_run_grouped`).

A single writer thread per gateway process keeps SQLite free of lock contention; on
PostgreSQL several gateways' writers commit concurrently (operations are conditional
UPDATEs and ON CONFLICT inserts, safe under concurrency).

When the database itself is unavailable (`health.is_outage`, confirmed by a probe) a batch
is not retried op by op: every caller gets `LedgerUnavailable` at once, `health` is marked
down, and the thread probes the database every `PROBE_INTERVAL_S` until it takes writes
again. Work that must reach the database once it returns — the `failed` records that
release reservations of requests whose record could not be written (`defer`) — waits in
an in-memory outbox, committed by the first successful probe, before `health` is marked up
(so service resumes by itself, without a restart). A gateway killed meanwhile leaves those
reservations to restart recovery (`recovery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from cluster.ledger.database import relax_durability
from cluster.ledger.health import (
    PROBE_INTERVAL_S,
    LedgerHealth,
    describe,
    is_outage,
    probe,
    refusal,
)

_log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Connection], Any]

DEFAULT_LINGER_S = 0.0
DEFAULT_MAX_BATCH = 512
MAX_DEFERRED = 100_000


@dataclass(slots=True)
class _Pending:
    op: Operation
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _resolve(pending: _Pending, result: Any, error: BaseException | None) -> None:
    def done() -> None:
        if pending.future.done():
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)

    # A closed loop: its caller waits no more.
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(done)


def _resolve_all(done: list[tuple[_Pending, Any]]) -> None:
    """Resolve many successful futures with one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, Any]]] = {}
    for pending, result in done:
        by_loop.setdefault(pending.loop, []).append((pending, result))

    def settle(items: list[tuple[_Pending, Any]]) -> None:
        for pending, result in items:
            if not pending.future.done():
                pending.future.set_result(result)

    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: its callers wait no more
            loop.call_soon_threadsafe(settle, items)


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        linger_s: float = DEFAULT_LINGER_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        health: LedgerHealth | None = None,
        probe_interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self._engine = engine
        self._linger_s = linger_s
        self._max_batch = max_batch
        self.health = health or LedgerHealth()
        self._probe_interval_s = probe_interval_s
        self._deferred: list[Operation] = []
        self._deferred_lock = threading.Lock()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.operations = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def defer(self, op: Operation) -> None:
        """Run `op` once the database takes writes again (module docstring); thread-safe."""
        with self._deferred_lock:
            if len(self._deferred) >= MAX_DEFERRED:
                _log.error(
                    "ledger outbox full (%d): an operation is left to restart recovery",
                    MAX_DEFERRED,
                )
                return
            self._deferred.append(op)

    @property
    def deferred(self) -> int:
        return len(self._deferred)

    async def submit(self, op: Callable[[Connection], T]) -> T:
        if self._thread is None:
            raise RuntimeError("the ledger writer is not started")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Pending(op, future, loop))
        # Shielded: a cancelled caller (client gone) must not cancel a write in flight;
        # the write completes and its record stands.
        return await asyncio.shield(future)

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """`first` and what else arrives within the linger time; True when told to stop."""
        batch = [first]
        deadline = time.monotonic() + self._linger_s
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            try:  # idle, it wakes every probe interval for the outbox and the probe
                first = self._queue.get(timeout=self._probe_interval_s)
            except queue.Empty:
                if not self.health.available or self._deferred:
                    self._recover()
                continue
            if first is None:
                break
            batch, stop = self._collect(first)
            self._commit(batch)
            if self._deferred and self.health.available:
                self._recover()

    def _probe(self) -> BaseException | None:
        """None when the database takes a write now, else why not."""
        try:
            with self._engine.begin() as connection:
                probe(connection)
        except Exception as err:
            return err
        return None

    def _recover(self) -> None:
        """Probe; when the database answers, commit the outbox and mark it available."""
        with self._deferred_lock:
            ops = list(self._deferred)  # only this thread removes; `defer` appends
        try:
            with self._engine.begin() as connection:
                probe(connection)
                _run_grouped(connection, ops)
        except Exception as err:
            if is_outage(err) and self._probe() is not None:
                self._down(err)
                return
            self._recover_one_by_one(ops)
            return
        with self._deferred_lock:
            del self._deferred[: len(ops)]
        if ops:
            _log.warning("ledger: %d deferred operation(s) committed", len(ops))
        self._up()

    def _recover_one_by_one(self, ops: list[Operation]) -> None:
        """The outbox failed as a whole with the database up: each op alone; one that fails
        by itself is logged and dropped (restart recovery resolves its reservation)."""
        for op in ops:
            try:
                with self._engine.begin() as connection:
                    op(connection)
            except Exception as err:
                if is_outage(err) and self._probe() is not None:
                    self._down(err)
                    return
                _log.exception("a deferred ledger operation failed; dropped")
            with self._deferred_lock:
                self._deferred.remove(op)
        self._up()

    def _down(self, err: BaseException) -> None:
        if self.health.mark_down(describe(err)):
            _log.error("ledger database unavailable (%s): refusing new requests", describe(err))

    def _up(self) -> None:
        lasted = self.health.mark_up()
        if lasted is not None:
            _log.warning("ledger database available again after %.2f s", lasted)

    def _commit(self, batch: list[_Pending]) -> None:
        self.batches += 1
        self.operations += len(batch)
        try:
            with self._engine.begin() as connection:
                ops = [item.op for item in batch]
                if not any(getattr(type(op), "durable", True) for op in ops):
                    relax_durability(connection)
                results = _run_grouped(connection, ops)
        except Exception as err:
            if is_outage(err) and self._probe() is not None:
                # The database, not an operation: fail the batch at once, no retries.
                self._down(err)
                for item in batch:
                    _resolve(item, None, refusal(describe(err)))
                return
            if len(batch) == 1:
                _log.exception("ledger write failed")
                _resolve(batch[0], None, _failure())
                return
            _log.warning("a ledger batch of %d failed; retrying each alone", len(batch))
            for item in batch:
                self._commit_one(item)
            return
        if not self.health.available and not self._deferred:
            self._up()
        _resolve_all([(item, result) for item, result in zip(batch, results, strict=True)])

    def _commit_one(self, item: _Pending) -> None:
        try:
            with self._engine.begin() as connection:
                if not getattr(type(item.op), "durable", True):
                    relax_durability(connection)
                result = item.op(connection)
        except Exception:
            _log.exception("ledger write failed")
            _resolve(item, None, _failure())
            return
        _resolve(item, result, None)


def _run_grouped(connection: Connection, ops: list[Operation]) -> list[Any]:
    """Every op's result, in order. Ops whose class has `run_many(connection, ops)` run
    together with the others of their class (first-seen order of classes); others alone."""
    groups: dict[Any, list[int]] = {}
    for i, op in enumerate(ops):
        kind: Any = type(op) if hasattr(type(op), "run_many") else object
        groups.setdefault(kind, []).append(i)
    results: list[Any] = [None] * len(ops)
    for kind, indexes in groups.items():
        if kind is object:
            for i in indexes:
                results[i] = ops[i](connection)
            continue
        outputs = kind.run_many(connection, [ops[i] for i in indexes])
        for i, output in zip(indexes, outputs, strict=True):
            results[i] = output
    return results


def _failure() -> Exception:
    from cluster.errors import LedgerUnavailable

    return LedgerUnavailable(
        "The usage ledger could not record this request; it was not billed. Retry later."
    )
