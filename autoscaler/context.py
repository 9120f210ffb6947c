"""What a policy sees (`PolicyContext`), what it keeps between calls (`PolicyState`), and
what it answers (`Decision`).

Everything here is plain data: a policy is a pure function
`(settings, context, state) -> Decision` and its state round-trips through a JSON-able
dict, which is how Ray Serve keeps it between control-loop ticks (`policy_state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

Sample = tuple[float, float]  # (time s, demand in replicas)


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Signals of one model deployment at one instant.

    - `ready`: replicas serving; `starting`: replicas requested but not ready yet (they
      count as capacity: no cascade).
    - `ongoing`: requests in the system for this model — the gateway's pending requests
      plus every replica's waiting and running ones.
    - `waiting`: requests not yet running (gateway pending + engine queues).
    - `kv_usage`: mean KV-cache usage of the ready replicas in [0, 1].
    - `prompt_tokens_per_s`: prompt tokens arriving at the gateway per second (recent).
    - `recent_ttft_s`: mean time to first token of the ready replicas' recent requests.
    """

    now: float
    ready: int
    starting: int
    ongoing: float
    waiting: float = 0.0
    kv_usage: float = 0.0
    prompt_tokens_per_s: float = 0.0
    recent_ttft_s: float = 0.0

    @property
    def capacity(self) -> int:
        """Replicas counted as capacity: ready plus still starting."""
        return self.ready + self.starting


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers; `to_dict`/`from_dict` for Serve's `policy_state`.

    - `samples`: (time, demand in replicas) pairs of the last stable window, oldest first
      (`autoscaler.policy_demand.load`).
    - `means`: (time, stable-window mean load) pairs of the last hold window (its trend
      leads, its peak holds replicas: `autoscaler.policy`).
    - `last_up`/`last_down`: when the replica count last went up / down.
    - `last_busy`: the last time a request was in the system.
    - `panic_until`: no scale-down before this time (set on entering panic).
    - `launches`: when each replica still starting was requested (oldest first).
    - `startup_s`: measured start-up time (moving average), None until measured.
    - `last_ready`: ready replicas at the previous call.
    - `first_seen`: the time of the first call (windows are trusted once they are full).
    - `saturated_since`: since when the saturation guard's condition has held.
    - `calibration`, `calibrated_at`: the load model's correction factor and when the
      guard last set it (`autoscaler.calibration`).
    """

    samples: tuple[Sample, ...] = ()
    means: tuple[Sample, ...] = ()
    last_up: float | None = None
    last_down: float | None = None
    last_busy: float | None = None
    panic_until: float = float("-inf")
    launches: tuple[float, ...] = ()
    startup_s: float | None = None
    last_ready: int = 0
    first_seen: float | None = None
    saturated_since: float | None = None
    calibration: float = 1.0
    calibrated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": [list(s) for s in self.samples],
            "means": [list(s) for s in self.means],
            "last_up": self.last_up,
            "last_down": self.last_down,
            "last_busy": self.last_busy,
            "panic_until": None if self.panic_until == float("-inf") else self.panic_until,
            "launches": list(self.launches),
            "startup_s": self.startup_s,
            "last_ready": self.last_ready,
            "first_seen": self.first_seen,
            "saturated_since": self.saturated_since,
            "calibration": self.calibration,
            "calibrated_at": self.calibrated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyState:
        if "samples" not in data:
            return cls()
        panic = data.get("panic_until")
        return cls(
            samples=tuple((float(t), float(v)) for t, v in data["samples"]),
            means=tuple((float(t), float(v)) for t, v in data.get("means", ())),
            last_up=data.get("last_up"),
            last_down=data.get("last_down"),
            last_busy=data.get("last_busy"),
            panic_until=float("-inf") if panic is None else float(panic),
            launches=tuple(float(t) for t in data.get("launches", ())),
            startup_s=data.get("startup_s"),
            last_ready=int(data.get("last_ready", 0)),
            first_seen=data.get("first_seen"),
            saturated_since=data.get("saturated_since"),
            calibration=float(data.get("calibration", 1.0)),
            calibrated_at=data.get("calibrated_at"),
        )

    def but(self, **changes: Any) -> PolicyState:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer: replicas wanted, the new state, and why (for logs/metrics)."""

    replicas: int
    state: PolicyState
    reasons: tuple[str, ...] = field(default=())
