"""Mooncake-format traces: one JSON object per line.

    {"timestamp": ms, "input_length": tokens, "output_length": tokens,
     "hash_ids": [one id per `block_tokens`-token block of the prompt; equal ids = equal
                  content, and an id stands for its whole prefix]}

`hash_ids` covers the partial last block too; engines cache only full blocks, so
`TraceRequest.full_blocks(T)` keeps the first `input_length // T` ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TraceRequest:
    index: int
    arrival_s: float
    input_length: int
    output_length: int
    hash_ids: tuple[int, ...]

    def full_blocks(self, block_tokens: int) -> tuple[int, ...]:
        return self.hash_ids[: self.input_length // block_tokens]


def _parse(line: str, index: int, source: str) -> TraceRequest:
    where = f"{source}:{index + 1}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not JSON: {err.msg}") from None
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: expected an object")
    try:
        timestamp = float(row["timestamp"])
        input_length = int(row["input_length"])
        output_length = int(row["output_length"])
        hash_ids = tuple(int(h) for h in row["hash_ids"])
    except KeyError as err:
        raise ConfigError(f"{where}: missing field {err.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: timestamp, lengths and hash_ids must be numbers") from None
    if input_length < 1 or output_length < 0 or timestamp < 0:
        raise ConfigError(f"{where}: lengths and timestamp must be non-negative (input >= 1)")
    return TraceRequest(index, timestamp / 1000.0, input_length, max(1, output_length), hash_ids)


def iter_trace(path: Path | str, limit: int | None = None) -> Iterator[TraceRequest]:
    source = str(path)
    try:
        with Path(path).open(encoding="utf-8") as handle:
            count = 0
            for line in handle:
                if limit is not None and count >= limit:
                    return
                if not line.strip():
                    continue
                yield _parse(line, count, source)
                count += 1
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror}", param="--trace") from None


def load_trace(path: Path | str, limit: int | None = None) -> list[TraceRequest]:
    """The first `limit` requests (all when None), sorted by arrival (stable)."""
    rows = list(iter_trace(path, limit))
    if not rows:
        raise ConfigError(f"{path}: the trace holds no requests", param="--trace")
    return sorted(rows, key=lambda r: r.arrival_s)
