"""Memory of the cluster's processes over time: the gateway's and each model replica's RSS.

The Serve replica actors are found in Ray's actor table (the GCS, read through
`ray._private.state.actors`, which needs no dashboard): each live actor whose class is
`ServeReplica:<app>:<deployment>` is a replica of that deployment, and the table carries its
worker's pid. The table is read again at every sample, so a replica Serve restarts shows up
as a new series (a new pid). RSS is read with psutil.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psutil

REPLICA_CLASS_PREFIX = "ServeReplica:"


@dataclass(frozen=True, slots=True)
class Replica:
    deployment: str
    pid: int

    @property
    def label(self) -> str:
        return f"{self.deployment} (pid {self.pid})"


@dataclass(frozen=True, slots=True)
class RssSample:
    t: float  # seconds since the run started
    deployment: str
    pid: int
    rss_bytes: int


def replicas_in(actors: dict[str, dict[str, Any]], app: str) -> list[Replica]:
    """The live Serve replicas of `app` in an actor table (`ray._private.state.actors()`)."""
    found = []
    for info in actors.values():
        name = str(info.get("ActorClassName", ""))
        if info.get("State") != "ALIVE" or not name.startswith(REPLICA_CLASS_PREFIX):
            continue
        app_name, _, deployment = name[len(REPLICA_CLASS_PREFIX) :].partition(":")
        pid = int(info.get("Pid") or 0)
        if app_name == app and pid:
            found.append(Replica(deployment, pid))
    return sorted(found, key=lambda r: (r.deployment, r.pid))


def live_replicas(app: str) -> list[Replica]:
    from ray._private import state

    actors: dict[str, dict[str, Any]] = state.actors()
    return replicas_in(actors, app)


class RssSampler:
    """`sample()` reads the RSS of every live replica of `app`; times in seconds since
    `started` (epoch seconds, the load's start)."""

    def __init__(self, app: str, started: float) -> None:
        self._app = app
        self._started = started
        self.samples: list[RssSample] = []

    def sample(self) -> list[RssSample]:
        now = time.time() - self._started
        taken = []
        for replica in live_replicas(self._app):
            try:
                rss = psutil.Process(replica.pid).memory_info().rss
            except psutil.Error:
                continue  # it died between the table read and now
            taken.append(RssSample(now, replica.deployment, replica.pid, rss))
        self.samples.extend(taken)
        return taken
