"""The n choice streams of one request → one stream of `(choice index, chunk)`.

- One choice: iterated in the caller's task (no extra task on the common path).
- Several: one pump task per choice feeds a queue. Nothing is yielded until every choice
  has produced its first chunk (or ended), so an error an engine raises before its first
  chunk — a too-long prompt, an unknown adapter — surfaces before the response starts and
  becomes a proper HTTP status rather than an error event. The first failing choice fails
  the whole request; closing the merged stream cancels every pump, which closes the engine
  streams (freeing their requests).
- Every nested async generator is closed explicitly (`aclosing`): an abandoned one would
  otherwise hold its engine request until garbage collection.
- `timeout_s` bounds the whole request: waiting past it raises `DeadlineExceeded`.
- `stall_timeout_s` is the watchdog: a choice whose engine stream sends nothing for that
  long (no first chunk, no next chunk) fails the request with `DeadlineExceeded` (code
  `engine_stalled`); closing the streams then aborts every engine request, freeing its
  batch slot and KV blocks.

`within_deadline` (one stream, each wait bounded by an absolute deadline, the stream closed
however it ends) serves the single-choice path here and the gRPC servicer's streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

from cluster.engine import EngineChunk
from cluster.errors import DeadlineExceeded, ModelyardError

T = TypeVar("T")
Indexed = tuple[int, EngineChunk]
_Item = tuple[int, EngineChunk | Exception | None]


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s


def _expired(timeout_s: float | None) -> DeadlineExceeded:
    return DeadlineExceeded(f"The request did not finish within {timeout_s:g} seconds.")


def stalled(stall_s: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"The engine made no progress on this request for {stall_s:g} seconds; it was aborted.",
        code="engine_stalled",
    )


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


async def merge_choices(
    streams: Sequence[AsyncIterator[EngineChunk]],
    *,
    timeout_s: float | None = None,
    stall_timeout_s: float | None = None,
) -> AsyncGenerator[Indexed, None]:
    inner = (
        _single(streams[0], timeout_s, stall_timeout_s)
        if len(streams) == 1
        else _many(streams, timeout_s, stall_timeout_s)
    )
    async with aclosing(inner):
        async for item in inner:
            yield item


async def _aclose(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def within_deadline(
    stream: AsyncIterator[T],
    deadline: float | None,
    expired: Callable[[], ModelyardError],
    *,
    stall_s: float | None = None,
) -> AsyncGenerator[T, None]:
    """`stream`'s items, each wait bounded by `deadline` (the running loop's clock; None:
    unbounded) and by `stall_s` seconds (None: unbounded); past the deadline `expired()`
    is raised, past the stall bound `stalled(stall_s)`. `stream` is closed however this
    ends."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            quiet_until = None if stall_s is None else loop.time() + stall_s
            until = _earliest(deadline, quiet_until)
            try:
                async with asyncio.timeout_at(until):
                    item = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if stall_s is not None and until == quiet_until and until != deadline:
                    raise stalled(stall_s) from None
                raise expired() from None
            yield item
    finally:
        await _aclose(stream)


async def _single(
    stream: AsyncIterator[EngineChunk], timeout_s: float | None, stall_s: float | None
) -> AsyncGenerator[Indexed, None]:
    bounded = within_deadline(
        stream, _deadline(timeout_s), lambda: _expired(timeout_s), stall_s=stall_s
    )
    async with aclosing(bounded):
        async for chunk in bounded:
            yield 0, chunk


async def _pump(
    index: int, stream: AsyncIterator[EngineChunk], queue: asyncio.Queue[_Item]
) -> None:
    try:
        async for chunk in stream:
            queue.put_nowait((index, chunk))
    except Exception as exc:
        queue.put_nowait((index, exc))
    else:
        queue.put_nowait((index, None))
    finally:
        await _aclose(stream)


async def _many(
    streams: Sequence[AsyncIterator[EngineChunk]],
    timeout_s: float | None,
    stall_s: float | None,
) -> AsyncGenerator[Indexed, None]:
    loop = asyncio.get_running_loop()
    deadline = _deadline(timeout_s)
    queue: asyncio.Queue[_Item] = asyncio.Queue()
    tasks = [asyncio.create_task(_pump(i, s, queue)) for i, s in enumerate(streams)]
    not_started = set(range(len(streams)))
    held: list[Indexed] = []
    # Open choices -> when each last sent something (the watchdog's clock).
    heard = dict.fromkeys(range(len(streams)), loop.time())
    try:
        while heard:
            quiet_until = None if stall_s is None else min(heard.values()) + stall_s
            until = _earliest(deadline, quiet_until)
            try:
                async with asyncio.timeout_at(until):
                    index, item = await queue.get()
            except TimeoutError:
                if stall_s is not None and until == quiet_until and until != deadline:
                    raise stalled(stall_s) from None
                raise _expired(timeout_s) from None
            if isinstance(item, Exception):
                raise item
            not_started.discard(index)
            if item is None:
                heard.pop(index, None)
            else:
                heard[index] = loop.time()
                held.append((index, item))
            if not not_started:
                for ready in held:
                    yield ready
                held.clear()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
