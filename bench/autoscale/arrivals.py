"""Arrivals to replay: the Azure LLM inference trace CSV or the Mooncake JSONL format.

- Azure 2023 (`TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps like
  `2023-11-16 18:17:03.9799600`): times relative to the first row.
- Mooncake (one JSON object a line with `timestamp` in ms, `input_length`,
  `output_length`): `hash_ids` are ignored here (autoscaling needs no prefixes).

`scale(arrivals, x, seed)` multiplies the arrival rate and keeps the timeline: each
request is replayed floor(x) times, plus once more with probability x - floor(x); every
copy after the first arrives at a uniformly drawn time within `jitter_s` (60 s) around
the original (never before the trace's start), so the load's shape minute by minute is
kept while its level is multiplied. More users send independently: copies of one request
arriving in the same second would multiply the trace's second-level bursts x-fold, which
more traffic does not do.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cluster.errors import ConfigError


@dataclass(frozen=True, slots=True, order=True)
class Arrival:
    at_s: float
    prompt_tokens: int
    output_tokens: int


def _azure_time(text: str) -> datetime:
    head, _, frac = text.strip().partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")


def load_azure_csv(path: Path) -> list[Arrival]:
    rows: list[tuple[datetime, int, int]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        need = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
        if not need <= set(reader.fieldnames or ()):
            raise ConfigError(f"{path}: expected the columns {', '.join(sorted(need))}")
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(
                    (
                        _azure_time(row["TIMESTAMP"]),
                        int(row["ContextTokens"]),
                        int(row["GeneratedTokens"]),
                    )
                )
            except ValueError:
                raise ConfigError(f"{path}:{line}: not a timestamp and two token counts") from None
    if not rows:
        raise ConfigError(f"{path}: no requests")
    start = min(r[0] for r in rows)
    return sorted(Arrival((t - start).total_seconds(), max(1, p), max(1, o)) for t, p, o in rows)


def load_mooncake_jsonl(path: Path) -> list[Arrival]:
    out = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append(
                    Arrival(
                        float(row["timestamp"]) / 1000.0,
                        max(1, int(row["input_length"])),
                        max(1, int(row["output_length"])),
                    )
                )
            except (ValueError, KeyError, TypeError):
                raise ConfigError(
                    f"{path}:{line_no}: expected timestamp, input_length, output_length"
                ) from None
    if not out:
        raise ConfigError(f"{path}: no requests")
    start = min(a.at_s for a in out)
    return sorted(Arrival(a.at_s - start, a.prompt_tokens, a.output_tokens) for a in out)


def load_arrivals(path: Path | str) -> list[Arrival]:
    """Azure CSV (`.csv`) or Mooncake JSONL (anything else), sorted by arrival."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return load_azure_csv(path) if path.suffix == ".csv" else load_mooncake_jsonl(path)


def scale(
    arrivals: list[Arrival], factor: float, seed: int = 0, jitter_s: float = 60.0
) -> list[Arrival]:
    """The arrival rate times `factor` (module docstring)."""
    if factor <= 0:
        raise ConfigError("--scale must be positive")
    rng = random.Random(seed)  # nosec B311
    whole = math.floor(factor)
    frac = factor - whole
    out = []
    for a in arrivals:
        copies = whole + (1 if rng.random() < frac else 0)
        for i in range(copies):
            at = a.at_s if i == 0 else max(0.0, a.at_s + rng.uniform(-jitter_s, jitter_s) / 2)
            out.append(Arrival(at, a.prompt_tokens, a.output_tokens))
    out.sort(key=lambda a: a.at_s)
    return out
